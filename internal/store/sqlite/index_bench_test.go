package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// indexBenchEntries returns n decoded records as the gateway writes them:
// a request id of 32 random hex digits shared by an admission and its
// completion (apierr.NewRequestID: random, so the request-id lookup's
// inserts land all over it, decision 035), admissions with parameters
// and an allow decision with a reason,
// completions with outcome, status and (every fourth) masking actions,
// some denials, and an approval now and then.
func indexBenchEntries(n int) []audit.Record {
	t0 := time.Now().Add(-time.Hour)
	recs := make([]audit.Record, n)
	for i := range recs {
		e := &audit.Entry{Time: t0.Add(time.Duration(i) * time.Millisecond), ID: fmt.Sprintf("e-%d", i),
			RequestID: benchRequestID(i / 2), Principal: &identity.Principal{Issuer: "https://idp", Subject: fmt.Sprintf("user-%d", i%97)},
			Route: []string{"chat", "embeddings", "fine-tune", "admin"}[i%4], Model: []string{"gpt-4o", "llama-3-70b", "mistral-7b"}[i%3]}
		switch {
		case i%50 == 49:
			e.Kind, e.ApprovalID = audit.KindApprovalRequested, fmt.Sprintf("ap-%d", i)
		case i%2 == 0 && i%10 == 8:
			e.Kind = audit.KindRequestDenied
			e.Decision = &audit.Decision{Action: "deny", Rule: fmt.Sprintf("rule-%d", i%5), PolicyVersion: "v1", Reason: "model not allowed for this group"}
		case i%2 == 0:
			e.Kind = audit.KindRequestAdmitted
			e.Decision = &audit.Decision{Action: "allow", Rule: "chat-default", PolicyVersion: "v1", Reason: "default allow"}
			e.Params = map[string]any{"max_tokens": 256, "temperature": 0.7, "stream": i%4 == 0}
		default:
			e.Kind, e.Outcome, e.Status = audit.KindRequestCompleted, audit.OutcomeOK, 200
			if i%4 == 1 {
				e.Masking = []audit.MaskAction{{Rule: "email", Entity: "EMAIL", Location: "response", Count: 2}, {Rule: "iban", Count: 1}}
			}
		}
		recs[i] = audit.Record{Seq: int64(i), Entry: e}
	}
	return recs
}

// indexHarnessEntries returns n decoded records shaped like those the
// bench harness's warden-full stage makes (bench/runner chatRequest
// through policy-mask.yaml.tmpl and the default masking profile): every
// request from one principal on one route and model, an admission whose
// only text is its body facts (model and stream: the rule that allows it
// has no reason, and the request names no n or max_tokens) and a
// completion with no text but four masking actions (the upstream's
// bench-pii answer holds an email, a phone, a card number and an IBAN).
// Against indexBenchEntries: shorter text (4 tokens per request against
// ~9), four times the mask-rule rows (4 per request against 1), one
// value per count-block column.
func indexHarnessEntries(n int) []audit.Record {
	t0 := time.Now().Add(-time.Hour)
	p := &identity.Principal{Issuer: "https://idp.bench.local", Subject: "bench-user"}
	masks := []audit.MaskAction{
		{Rule: "email", Entity: "EMAIL", Location: "response:choices.0.message.content", Count: 1},
		{Rule: "phone", Entity: "PHONE", Location: "response:choices.0.message.content", Count: 1},
		{Rule: "card", Entity: "CARD", Location: "response:choices.0.message.content", Count: 1},
		{Rule: "iban", Entity: "IBAN", Location: "response:choices.0.message.content", Count: 1},
	}
	recs := make([]audit.Record, n)
	for i := range recs {
		e := &audit.Entry{Time: t0.Add(time.Duration(i) * 100 * time.Microsecond), ID: fmt.Sprintf("e-%d", i),
			RequestID: benchRequestID(i / 2), Principal: p, Route: "openai", Model: "bench-pii"}
		if i%2 == 0 {
			e.Kind = audit.KindRequestAdmitted
			e.Decision = &audit.Decision{Action: "allow", Rule: "ml-users", PolicyVersion: "v1"}
			e.Params = map[string]any{"model": "bench-pii", "stream": false}
		} else {
			e.Kind, e.Outcome, e.Status = audit.KindRequestCompleted, audit.OutcomeOK, 200
			e.Masking = masks
		}
		recs[i] = audit.Record{Seq: int64(i), Entry: e}
	}
	return recs
}

// benchRequestID is request i's id: 32 hex digits, pseudo-random (the
// same in every run) like the gateway's.
func benchRequestID(i int) string {
	mix := func(x uint64) uint64 { // splitmix64
		x += 0x9e3779b97f4a7c15
		x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
		x = (x ^ x>>27) * 0x94d049bb133111eb
		return x ^ x>>31
	}
	return fmt.Sprintf("%016x%016x", mix(uint64(i)), mix(uint64(i)+1<<40))
}

// BenchmarkIndexWrite indexes b.N entries into a fresh index file in
// batches of 2048 (what audit.Indexer writes under load;
// WARDEN_BENCH_INDEX_BATCH sets another size, decision 046), and reports the
// process CPU time per entry (cpu-µs/entry, getrusage): the indexer's
// cost per audited entry, which decision 018 measured at about a third of
// the gateway's CPU under audit load. thread-cpu-µs/entry is the writing
// thread's alone (RUSAGE_THREAD, the goroutine locked to it: modernc's
// SQLite runs on the calling goroutine), without the GC's background
// workers: the steadier figure on a shared machine (decision 035).
//
// Two workloads (decision 039): mix (indexBenchEntries: many principals,
// routes, models, denials, approvals, longer text) and harness
// (indexHarnessEntries: the bench harness's warden-full requests).
//
//	go test ./internal/store/sqlite -run '^$' -bench BenchmarkIndexWrite -benchtime 100000x
func BenchmarkIndexWrite(b *testing.B) {
	b.Run("mix", func(b *testing.B) { benchIndexWrite(b, indexBenchEntries(b.N)) })
	b.Run("harness", func(b *testing.B) { benchIndexWrite(b, indexHarnessEntries(b.N)) })
}

func benchIndexWrite(b *testing.B, recs []audit.Record) {
	ctx := context.Background()
	ix, err := openIndexRW(ctx, filepath.Join(b.TempDir(), "audit-index.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer ix.close()
	batch := benchIndexBatch(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	runtime.GC()
	cpu0, th0 := indexCPUTime(), threadCPU()
	b.ResetTimer()
	for i := 0; i < len(recs); i += batch {
		if err := ix.WriteIndex(ctx, recs[i:min(i+batch, len(recs))]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((indexCPUTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/entry")
	b.ReportMetric(float64((threadCPU()-th0).Nanoseconds())/1e3/float64(b.N), "thread-cpu-µs/entry")
}

// benchIndexBatch is the number of entries per WriteIndex call of
// BenchmarkIndexWrite: WARDEN_BENCH_INDEX_BATCH, default 2048.
func benchIndexBatch(b *testing.B) int {
	v := os.Getenv("WARDEN_BENCH_INDEX_BATCH")
	if v == "" {
		return 2048
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("WARDEN_BENCH_INDEX_BATCH=%q: want a positive number", v)
	}
	return n
}

func indexCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
