package hist

import (
	"math"
	"math/bits"
	"time"
)

const (
	subBits   = 8
	subCount  = 1 << subBits // exact values below this
	halfCount = subCount / 2 // linear buckets per power of two above it
	// maxBits bounds the resolved range to values below 2^40 (18 minutes
	// in nanoseconds); larger values share the top bucket. It keeps a
	// histogram at 34 KiB.
	maxBits   = 40
	numBucket = subCount + (maxBits-subBits)*halfCount
)

// Histogram counts non-negative int64 values in log-linear buckets.
// The zero value is not usable; call New.
type Histogram struct {
	counts []uint64
	total  uint64
	min    int64
	max    int64
	sum    float64
}

// New returns an empty histogram.
func New() *Histogram {
	return &Histogram{counts: make([]uint64, numBucket), min: math.MaxInt64}
}

// index maps v >= 0 to its bucket.
func index(v uint64) int {
	if v < subCount {
		return int(v)
	}
	if v >= 1<<maxBits {
		return numBucket - 1
	}
	exp := bits.Len64(v) - subBits // >= 1
	return subCount + (exp-1)*halfCount + int(v>>uint(exp)) - halfCount
}

// highest returns the largest value that maps to bucket i (for the top
// bucket: the largest value below 2^maxBits).
func highest(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	exp := (i-subCount)/halfCount + 1
	sub := uint64((i-subCount)%halfCount + halfCount)
	hi := ((sub + 1) << uint(exp)) - 1
	if hi > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(hi)
}

// Record adds one value. Negative values are recorded as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[index(uint64(v))]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// RecordDuration adds d in nanoseconds.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Merge adds every value counted in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest recorded value (exact), or 0 when empty.
func (h *Histogram) Max() int64 {
	if h.total == 0 {
		return 0
	}
	return h.max
}

// Min is the smallest recorded value (exact), or 0 when empty.
func (h *Histogram) Min() int64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Mean is the arithmetic mean of the recorded values, or 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q in [0, 1]: the highest value
// equivalent to the bucket that holds the ceil(q*count)-th smallest value,
// capped at Max. It returns 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(1, min(rank, h.total))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == numBucket-1 {
				return h.max // the open-ended top bucket
			}
			return min(max(highest(i), h.min), h.max)
		}
	}
	return h.max
}

// QuantileDuration is Quantile for histograms of nanoseconds.
func (h *Histogram) QuantileDuration(q float64) time.Duration {
	return time.Duration(h.Quantile(q))
}
