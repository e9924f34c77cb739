package export

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		at   time.Time
		n    int
		want time.Duration
	}
	for _, tc := range []struct {
		name        string
		rate, burst float64
		steps       []step
	}{
		{"a full bucket lets a burst through", 1000, 1000, []step{{at(0), 1000, 0}}},
		{"beyond the burst waits for the debt", 1000, 1000, []step{{at(0), 1000, 0}, {at(0), 500, 500 * time.Millisecond}}},
		{"the debt is waited once", 1000, 1000, []step{{at(0), 1500, 500 * time.Millisecond}, {at(500), 0, 0}, {at(500), 100, 100 * time.Millisecond}}},
		{"refill is capped at the burst", 100, 200, []step{{at(0), 200, 0}, {at(60000), 300, time.Second}}},
		{"following below the rate never waits", 1000, 1000, []step{{at(0), 400, 0}, {at(500), 400, 0}, {at(1000), 400, 0}, {at(1500), 400, 0}}},
		{"following at half the limit with one batch of burst", 14000, 500, []step{{at(0), 500, 0}, {at(71), 500, 0}, {at(142), 500, 0}, {at(213), 500, 0}}},
		{"no limit", math.Inf(1), math.Inf(1), []step{{at(0), 1 << 30, 0}, {at(0), 1 << 30, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bucket
			for i, s := range tc.steps {
				if got := b.take(s.at, tc.rate, tc.burst, s.n); got != s.want {
					t.Fatalf("step %d: wait %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

func TestGrowthRate(t *testing.T) {
	var g growthRate
	t0 := time.Unix(1000, 0)
	g.sample(100, t0)
	if g.get() != 0 {
		t.Fatalf("rate after one sample %v", g.get())
	}
	g.sample(1100, t0.Add(time.Second)) // 1000/s, averaged with 0
	g.sample(2100, t0.Add(2*time.Second))
	if got := g.get(); got != 750 {
		t.Fatalf("rate %v, want 750", got)
	}
	g.sample(50, t0.Add(3*time.Second)) // a smaller size (another store) is not a rate
	g.sample(50, t0.Add(3*time.Second)) // nor is no time
	if got := g.get(); got != 750 {
		t.Fatalf("rate %v after odd samples, want 750", got)
	}
}

func TestCatchupLimit(t *testing.T) {
	for _, tc := range []struct {
		min, factor, growth, want float64
	}{
		{0, 0, 0, DefaultCatchupMinRate},                         // defaults, idle log
		{0, 0, 5000, DefaultCatchupFactor * 5000},                // defaults, busy log
		{100, 3, 50, 150},                                        // factor wins
		{500, 3, 50, 500},                                        // floor wins
		{-1, 0, 5000, math.Inf(1)},                               // no limit
		{100, 0.5, 1000, DefaultCatchupFactor * 1000},            // a factor below 1 would never catch up
		{DefaultCatchupMinRate, 2, 1e6, 2e6},                     // follows any log
		{DefaultCatchupMinRate, 1, 3000, 3000},                   // factor 1: keeps pace
		{1, 10, 0, 1},                                            // a tiny floor
		{0, 0, DefaultCatchupMinRate, 2 * DefaultCatchupMinRate}, // floor below factor × growth
	} {
		tg := Target{CatchupMinRate: tc.min, CatchupFactor: tc.factor}
		tg.setDefaults()
		r := &runner{t: tg, x: &Exporter{}}
		r.x.growth.bits.Store(math.Float64bits(tc.growth))
		if got := r.catchupLimit(); got != tc.want {
			t.Errorf("min %v factor %v growth %v: limit %v, want %v", tc.min, tc.factor, tc.growth, got, tc.want)
		}
	}
}

// TestExportCatchupThrottled: a sink far behind is throttled (and still
// gets everything, in order); without a limit it is not.
func TestExportCatchupThrottled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		minRate   float64
		throttled bool
	}{{"limited", 200, true}, {"unlimited", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			l := newMemLog(t)
			l.fill(t, 300, 50)
			s := &recordSink{}
			tg := target(t.TempDir(), "rec", s)
			tg.CatchupMinRate, tg.CatchupFactor = tc.minRate, 1
			h := startExporter(t, l, tg)
			waitFor(t, "every entry", func() bool { return len(s.events()) == 300+6 })
			checkComplete(t, l, s.events())
			waited := testutil.ToFloat64(h.x.metrics.throttled.WithLabelValues("rec"))
			if (waited > 0) != tc.throttled {
				t.Fatalf("throttled for %v s", waited)
			}
		})
	}
}
