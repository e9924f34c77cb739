package audit_test

import (
	"context"
	"crypto/sha256"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// pacedEntry is request(k), and for odd k with the four masking actions
// of a completion in the bench harness (its upstream's answer holds an
// email, a phone, a card number and an IBAN): the search index writes
// each entry's mask rules (decision 039).
func pacedEntry(k int) *audit.Entry {
	e := request(k)
	if k%2 == 1 {
		e.Masking = []audit.MaskAction{{Rule: "email", Count: 1}, {Rule: "phone", Count: 1}, {Rule: "card", Count: 1}, {Rule: "iban", Count: 1}}
	}
	return e
}

// BenchmarkIndexerPaced appends b.N entries at a fixed rate (open loop:
// 3000 appends/s, two entries per request of a gateway at 1500 req/s)
// from 64 goroutines, each doing some CPU work of its own before each
// append (a stand-in for a request's handling), so the search indexer's
// bursts compete with them for the 2 cores as under the harness's open
// loop. It reports the added latency of appends from their scheduled
// time (p50, p99: CPU queueing shows there) and the process CPU per
// append. Made to be traced and read with bench/tools/tracewait
// (decision 035):
//
//	go test ./internal/audit -run '^$' -bench 'BenchmarkIndexerPaced$' -benchtime 12000x -trace /tmp/paced.trace
//	cd bench/tools/tracewait && go run . /tmp/paced.trace
func BenchmarkIndexerPaced(b *testing.B) {
	const (
		rate    = 3000
		workers = 64
	)
	e := newEnv(b, nil)
	work := make([]byte, 64<<10)
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	b.ResetTimer()
	t0 := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < b.N; k += workers {
				at := t0.Add(time.Duration(k) * time.Second / rate)
				time.Sleep(time.Until(at))
				sha256.Sum256(work)
				if _, err := e.log.Append(context.Background(), pacedEntry(k)); err != nil {
					b.Error(err)
					return
				}
				lat[k] = time.Since(at)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/append")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1e3, "p99-ms")
}
