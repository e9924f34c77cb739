package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// aggregateEntries is the log size BenchmarkAggregate counts over
// (issue 14: aggregates over 1M entries answer in under 1 s on SQLite).
// WARDEN_BENCH_AGGREGATE_ENTRIES overrides it for a quick run.
func aggregateEntries() int { return benchEntries("WARDEN_BENCH_AGGREGATE_ENTRIES") }

// buildAggregateLog appends n request entries (a realistic mix of kinds,
// principals, routes, models, decisions and outcomes) through the Log, as
// the gateway would, into a directory removed when b ends.
func buildAggregateLog(b *testing.B, n int) string {
	dir := b.TempDir()
	l, st := openLog(b, dir)
	defer st.Close()
	kinds := []string{audit.KindRequestAdmitted, audit.KindRequestCompleted, audit.KindRequestDenied}
	outcomes := []string{audit.OutcomeOK, audit.OutcomeOK, audit.OutcomeOK, audit.OutcomeUpstreamError, audit.OutcomeTruncated}
	appendParallel(b, l, n, 256, func(i int) *audit.Entry {
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
		return e
	})
	// The gateway's indexer keeps up in the background; here, index
	// everything before the log closes (a search catches the index up), as
	// a gateway that has run a while has.
	if _, err := st.Search(context.Background(), audit.Query{Limit: 1}); err != nil {
		b.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkAggregate counts a log of 1M entries (built and indexed once,
// untimed) as the admin counts endpoint and the console do: the whole log
// grouped by kind and outcome, a day's window grouped by principal, one
// kind grouped by rule, and groupings by two to four dimensions besides
// the kind (whole log, a day, a window that cuts chunks, a kind filter).
// Each op is one count; ns/op is its latency.
//
//   - cold: the first count of a freshly opened Log on the existing store
//     (the store and Log opened untimed for every op; no in-process cache;
//     the OS page cache may be warm). Whole chunks come from the index's
//     persisted counts (audit.CountIndex), the rest is read and decoded.
//
//   - warm: the same Log counting again after one untimed count, so whole
//     chunks come from its in-memory cache or the index.
//
//   - recount: audit.AggregateStore, which reads and decodes every entry
//     in the range (the cold path before the persisted counts; verifiers
//     recount this way): the same-run baseline.
//
//     go test ./internal/store/sqlite -run '^$' -bench BenchmarkAggregate -benchtime 3x
func BenchmarkAggregate(b *testing.B) {
	n := aggregateEntries()
	dir := buildAggregateLog(b, n)
	ctx := context.Background()
	// Every op of cold opens its own Log; warm and recount share this one,
	// opened after them.
	var l *audit.Log
	var st *sqlite.Store
	defer func() {
		if l != nil {
			l.Close(ctx)
			st.Close()
		}
	}()
	last := int64(n)
	now := time.Now()
	// A window that cuts the log in the middle of chunks: from the time of
	// the entry at a third of the log to that of the entry at two thirds.
	mid := func(seq int64) time.Time {
		rst, err := sqlite.OpenReadOnly(ctx, filepath.Join(dir, "audit.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer rst.Close()
		recs, err := rst.ReadRecords(ctx, seq, seq+1)
		if err != nil {
			b.Fatal(err)
		}
		e, err := audit.ParseEntry(seq, recs[0].Data)
		if err != nil {
			b.Fatal(err)
		}
		return e.Time
	}
	from, to := mid(int64(n)/3+1234), mid(2*int64(n)/3+567)
	for _, tc := range []struct {
		name string
		q    audit.AggregateQuery
	}{
		{"all/by-kind-outcome", audit.AggregateQuery{By: []string{audit.ByKind, audit.ByOutcome}}},
		{"last-day/by-principal", audit.AggregateQuery{From: now.Add(-24 * time.Hour), To: now, By: []string{audit.ByPrincipal}}},
		{"denied/by-rule", audit.AggregateQuery{Kind: audit.KindRequestDenied, By: []string{audit.ByRule}}},
		// Two and more dimensions besides the kind (issue 14: any grouping
		// the API accepts).
		{"all/by-principal-route", audit.AggregateQuery{By: []string{audit.ByPrincipal, audit.ByRoute}}},
		{"last-day/by-principal-route", audit.AggregateQuery{From: now.Add(-24 * time.Hour), To: now, By: []string{audit.ByPrincipal, audit.ByRoute}}},
		{"mid-third/by-principal-model", audit.AggregateQuery{From: from, To: to, By: []string{audit.ByPrincipal, audit.ByModel}}},
		{"completed/by-outcome-status-route", audit.AggregateQuery{Kind: audit.KindRequestCompleted, By: []string{audit.ByOutcome, audit.ByStatus, audit.ByRoute}}},
		{"all/by-category-decision-rule-principal", audit.AggregateQuery{By: []string{audit.ByCategory, audit.ByDecision, audit.ByRule, audit.ByPrincipal}}},
	} {
		check := func(b *testing.B, agg audit.Aggregate, err error) {
			if err != nil {
				b.Fatal(err)
			}
			if agg.Total == 0 {
				b.Fatal("counted nothing")
			}
		}
		b.Run("cold/"+tc.name, func(b *testing.B) {
			if l != nil {
				l.Close(ctx)
				st.Close()
				l = nil
			}
			// Each op: a restarted gateway's first count (the store and
			// Log opened, and closed after, untimed).
			for b.Loop() {
				b.StopTimer()
				cl, cst := openLog(b, dir)
				b.StartTimer()
				agg, err := cl.Aggregate(ctx, tc.q)
				b.StopTimer()
				check(b, agg, err)
				if err := cl.Close(ctx); err != nil {
					b.Fatal(err)
				}
				cst.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(last), "entries")
		})
		if l == nil {
			l, st = openLog(b, dir)
		}
		b.Run("warm/"+tc.name, func(b *testing.B) {
			if _, err := l.Aggregate(ctx, tc.q); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				agg, err := l.Aggregate(ctx, tc.q)
				check(b, agg, err)
			}
			b.ReportMetric(float64(last), "entries")
		})
		b.Run("recount/"+tc.name, func(b *testing.B) {
			for b.Loop() {
				agg, err := audit.AggregateStore(ctx, st, tc.q)
				check(b, agg, err)
			}
			b.ReportMetric(float64(last), "entries")
		})
	}
}
