package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// searchEntries is the log size BenchmarkSearch searches (1M);
// WARDEN_BENCH_SEARCH_ENTRIES overrides it for a quick run.
func searchEntries() int { return benchEntries("WARDEN_BENCH_SEARCH_ENTRIES") }

// benchEntries is the log size of a benchmark over a big log: 1M, or the
// positive number in the environment variable env (for a quick run).
func benchEntries(env string) int {
	if v, err := strconv.Atoi(os.Getenv(env)); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}

// appendParallel appends entry(i) for i in [0, n) through l from writers
// goroutines (group commit, as under the gateway's load); the first
// error fails b. It lives here, not in a shared file, because
// bench/search-compare.sh builds a base revision with only this file
// copied in.
func appendParallel(b *testing.B, l *audit.Log, n, writers int, entry func(i int) *audit.Entry) {
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				if _, err := l.Append(context.Background(), entry(i)); err != nil {
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
}

// BenchmarkSearch searches a log of searchEntries() request entries
// (built and indexed once, untimed; admissions carry parameters with a
// word of 1000 and an e-mail address of 97, half the completions two
// mask rules, one entry a principal and one a mask rule of its own) the way the console and `warden search` do: newest first, a
// page of results. Each op is one Store.Search after the index caught
// up; ns/op is its latency and cpu-µs/op the process CPU time (getrusage).
//
//	go test ./internal/store/sqlite -run '^$' -bench BenchmarkSearch -benchtime 20x
func BenchmarkSearch(b *testing.B) {
	n := searchEntries()
	dir := b.TempDir()
	l, st := openLog(b, dir)
	defer st.Close()
	kinds := []string{audit.KindRequestAdmitted, audit.KindRequestCompleted, audit.KindRequestDenied}
	appendParallel(b, l, n, 64, func(i int) *audit.Entry {
		e := &audit.Entry{
			Kind:      kinds[i%len(kinds)],
			RequestID: fmt.Sprintf("r-%d", i),
			Principal: &identity.Principal{Issuer: "https://idp", Subject: fmt.Sprintf("user-%d", i%97)},
			Route:     []string{"chat", "embeddings", "fine-tune", "admin"}[i%4],
			Model:     []string{"gpt-4o", "llama-3-70b", "mistral-7b"}[i%3],
		}
		if i == 1000 {
			e.Principal.Subject = "zoe"
		}
		if i%6 == 1 { // half the completions: masked
			e.Masking = []audit.MaskAction{{Rule: "email", Count: 1}, {Rule: "iban", Count: 1}}
		}
		if i == 2000 {
			e.Masking = []audit.MaskAction{{Rule: "ssn", Count: 1}}
		}
		switch e.Kind {
		case audit.KindRequestCompleted:
			e.Outcome, e.Status = audit.OutcomeOK, 200
		case audit.KindRequestDenied:
			e.Decision = &audit.Decision{Action: "deny", Rule: fmt.Sprintf("rule-%d", i%5), PolicyVersion: "v1", Reason: "model not allowed for this group"}
		default:
			e.Decision = &audit.Decision{Action: "allow", Rule: "chat-default", PolicyVersion: "v1", Reason: "default allow"}
			e.Params = map[string]any{"max_tokens": 256, "note": fmt.Sprintf("word%d quarterly", i%1000),
				"user": fmt.Sprintf("user-%d@example.com", i%97)}
		}
		return e
	})
	ctx := context.Background()
	if _, err := st.Search(ctx, audit.Query{Limit: 1}); err != nil { // index caught up
		b.Fatal(err)
	}
	hour := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name string
		q    audit.Query
	}{
		{"latest", audit.Query{}},
		{"text-word", audit.Query{Text: "word123"}},
		{"text-email", audit.Query{Text: "user-5@example.com"}},
		{"principal", audit.Query{Principal: "user-5"}},
		{"principal-rare", audit.Query{Principal: "zoe"}},
		{"principal-absent", audit.Query{Principal: "nobody"}},
		{"route-kind", audit.Query{Route: "admin", Kind: audit.KindRequestDenied}},
		{"request-id", audit.Query{RequestID: fmt.Sprintf("r-%d", n/2)}},
		{"model-hour", audit.Query{Model: "mistral-7b", From: hour}},
		{"action-text", audit.Query{Action: "deny", Text: "allowed"}},
		{"principal-text", audit.Query{Principal: "user-7", Text: "word7"}},
		{"mask-rule", audit.Query{MaskRule: "email"}},
		{"mask-rule-rare", audit.Query{MaskRule: "ssn"}},
		{"mask-rule-absent", audit.Query{MaskRule: "passport"}},
		{"mask-rule-principal", audit.Query{MaskRule: "iban", Principal: "user-5"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			q := tc.q
			q.Desc, q.Limit = true, 50
			var found int
			cpu0 := searchCPUTime()
			for b.Loop() {
				recs, err := st.Search(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				found = len(recs)
			}
			b.ReportMetric(float64((searchCPUTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(found), "results")
		})
	}
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

func searchCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
