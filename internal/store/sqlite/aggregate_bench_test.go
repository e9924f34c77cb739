package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// aggregateEntries is the log size BenchmarkAggregate counts over
// (issue 14: aggregates over 1M entries answer in under 1 s on SQLite).
// WARDEN_BENCH_AGGREGATE_ENTRIES overrides it for a quick run.
func aggregateEntries() int {
	if v, err := strconv.Atoi(os.Getenv("WARDEN_BENCH_AGGREGATE_ENTRIES")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}

// buildAggregateLog appends n request entries (a realistic mix of kinds,
// principals, routes, models, decisions and outcomes) through the Log, as
// the gateway would, into a directory removed when b ends.
func buildAggregateLog(b *testing.B, n int) string {
	dir := b.TempDir()
	l, st := openLog(b, dir)
	defer st.Close()
	kinds := []string{audit.KindRequestAdmitted, audit.KindRequestCompleted, audit.KindRequestDenied}
	outcomes := []string{audit.OutcomeOK, audit.OutcomeOK, audit.OutcomeOK, audit.OutcomeUpstreamError, audit.OutcomeTruncated}
	var wg sync.WaitGroup
	errc := make(chan error, 256)
	for w := range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 256 {
				e := &audit.Entry{
					Kind:      kinds[i%len(kinds)],
					RequestID: fmt.Sprintf("r-%d", i),
					Principal: &identity.Principal{Issuer: "https://idp", Subject: fmt.Sprintf("user-%d", i%97)},
					Route:     []string{"chat", "embeddings", "fine-tune", "admin"}[i%4],
					Model:     []string{"gpt-4o", "llama-3-70b", "mistral-7b"}[i%3],
				}
				switch e.Kind {
				case audit.KindRequestCompleted:
					e.Outcome, e.Status = outcomes[i%len(outcomes)], 200
				case audit.KindRequestDenied:
					e.Decision = &audit.Decision{Action: "deny", Rule: fmt.Sprintf("rule-%d", i%5), PolicyVersion: "v1"}
				default:
					e.Decision = &audit.Decision{Action: "allow", Rule: "chat-default", PolicyVersion: "v1"}
				}
				if _, err := l.Append(context.Background(), e); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkAggregate counts a log of 1M entries (built once, untimed) as
// the admin counts endpoint and the report do: the whole log grouped by
// kind and outcome, a day's window grouped by principal, and one kind
// grouped by rule. Each op is one count; ns/op is its latency.
//
//   - cold: audit.AggregateStore, which reads and decodes every entry in
//     the range (what the first count after a start costs);
//
//   - warm: Log.Aggregate after one untimed count of the same query, so
//     whole chunks come from the log's cache and only the chunks at the
//     window's edges (and the newest, partial one) are read.
//
//     go test ./internal/store/sqlite -run '^$' -bench BenchmarkAggregate -benchtime 3x
func BenchmarkAggregate(b *testing.B) {
	n := aggregateEntries()
	dir := buildAggregateLog(b, n)
	l, st := openLog(b, dir)
	defer st.Close()
	defer l.Close(context.Background())
	last := l.Latest().Size
	if last < int64(n) {
		b.Fatalf("log holds %d entries, want %d", last, n)
	}
	ctx := context.Background()
	now := time.Now()
	for _, tc := range []struct {
		name string
		q    audit.AggregateQuery
	}{
		{"all/by-kind-outcome", audit.AggregateQuery{By: []string{audit.ByKind, audit.ByOutcome}}},
		{"last-day/by-principal", audit.AggregateQuery{From: now.Add(-24 * time.Hour), To: now, By: []string{audit.ByPrincipal}}},
		{"denied/by-rule", audit.AggregateQuery{Kind: audit.KindRequestDenied, By: []string{audit.ByRule}}},
	} {
		count := func(b *testing.B, f func() (audit.Aggregate, error)) {
			for b.Loop() {
				agg, err := f()
				if err != nil {
					b.Fatal(err)
				}
				if agg.Total == 0 {
					b.Fatal("counted nothing")
				}
			}
			b.ReportMetric(float64(last), "entries")
		}
		b.Run("cold/"+tc.name, func(b *testing.B) {
			count(b, func() (audit.Aggregate, error) { return audit.AggregateStore(ctx, st, tc.q) })
		})
		b.Run("warm/"+tc.name, func(b *testing.B) {
			if _, err := l.Aggregate(ctx, tc.q); err != nil {
				b.Fatal(err)
			}
			count(b, func() (audit.Aggregate, error) { return l.Aggregate(ctx, tc.q) })
		})
	}
}
