package hist

import (
	"math"
	"testing"
)

func TestIndexRoundTrip(t *testing.T) {
	// Every value must land in a bucket whose highest value is >= it and
	// whose previous bucket's highest value is < it.
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<20 + 12345, 1<<40 - 1} {
		i := index(v)
		if i < 0 || i >= numBucket {
			t.Fatalf("index(%d) = %d out of range", v, i)
		}
		if hi := highest(i); uint64(hi) < v {
			t.Errorf("highest(index(%d)) = %d < value", v, hi)
		}
		if i > 0 && uint64(highest(i-1)) >= v {
			t.Errorf("highest(index(%d)-1) = %d >= value", v, highest(i-1))
		}
	}
}

func TestHugeValuesKept(t *testing.T) {
	h := New()
	h.Record(math.MaxInt64)
	h.Record(1 << 41)
	if index(math.MaxInt64) != numBucket-1 || h.Count() != 2 || h.Max() != math.MaxInt64 || h.Quantile(1) != math.MaxInt64 {
		t.Errorf("huge values: count %d max %d q1 %d", h.Count(), h.Max(), h.Quantile(1))
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values func(h *Histogram)
		q      float64
		want   int64
	}{
		{"exact small", func(h *Histogram) {
			for v := int64(1); v <= 100; v++ {
				h.Record(v)
			}
		}, 0.5, 50},
		{"exact small p99", func(h *Histogram) {
			for v := int64(1); v <= 100; v++ {
				h.Record(v)
			}
		}, 0.99, 99},
		{"uniform p50", uniform(1, 1_000_000), 0.5, 500_000},
		{"uniform p90", uniform(1, 1_000_000), 0.9, 900_000},
		{"uniform p99", uniform(1, 1_000_000), 0.99, 990_000},
		{"uniform p99.9", uniform(1, 1_000_000), 0.999, 999_000},
		{"uniform max", uniform(1, 1_000_000), 1, 1_000_000},
		{"outlier tail", func(h *Histogram) {
			for i := 0; i < 999; i++ {
				h.Record(1_000)
			}
			h.Record(5_000_000_000)
		}, 0.999, 1_000},
		{"outlier max", func(h *Histogram) {
			for i := 0; i < 999; i++ {
				h.Record(1_000)
			}
			h.Record(5_000_000_000)
		}, 1, 5_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New()
			tt.values(h)
			got := h.Quantile(tt.q)
			if rel := math.Abs(float64(got-tt.want)) / float64(tt.want); rel > 1.0/128 {
				t.Errorf("Quantile(%v) = %d, want %d (±0.8%%), off by %.3f%%", tt.q, got, tt.want, rel*100)
			}
		})
	}
}

func uniform(lo, hi int64) func(*Histogram) {
	return func(h *Histogram) {
		for v := lo; v <= hi; v++ {
			h.Record(v)
		}
	}
}

func TestMergeEqualsRecordingAll(t *testing.T) {
	all, a, b := New(), New(), New()
	for v := int64(0); v < 200_000; v += 7 {
		all.Record(v * 13)
		if v%2 == 0 {
			a.Record(v * 13)
		} else {
			b.Record(v * 13)
		}
	}
	a.Merge(b)
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Fatalf("merged summary differs: count %d/%d min %d/%d max %d/%d", a.Count(), all.Count(), a.Min(), all.Min(), a.Max(), all.Max())
	}
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 0.999} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("q%v: merged %d, all %d", q, a.Quantile(q), all.Quantile(q))
		}
	}
}

func TestEmptyAndNegative(t *testing.T) {
	h := New()
	if h.Quantile(0.99) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	h.Record(-5)
	if h.Count() != 1 || h.Max() != 0 {
		t.Fatalf("negative value: count %d max %d, want 1, 0", h.Count(), h.Max())
	}
}

func BenchmarkRecord(b *testing.B) {
	b.ReportAllocs()
	h := New()
	for i := 0; b.Loop(); i++ {
		h.Record(int64(i) * 977)
	}
}
