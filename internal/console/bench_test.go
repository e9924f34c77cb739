package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// benchEntries is the size of the benchmark log: WARDEN_BENCH_CONSOLE_N,
// default 1,000,000.
func benchEntries() int64 {
	if n, err := strconv.ParseInt(os.Getenv("WARDEN_BENCH_CONSOLE_N"), 10, 64); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// buildSearchLog writes n entries of synthetic traffic straight into a
// SQLite store in batches (hashes included, one checkpoint at the end)
// and rebuilds its search index: what a gateway would have written.
func buildSearchLog(b *testing.B, dir string, n int64) {
	ctx := context.Background()
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	signer, _, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "console-bench")
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	users := []*identity.Principal{{Subject: "alice", Groups: []string{"ml-users"}}, {Subject: "bob", Groups: []string{"ml-approvers"}}}
	t0 := time.Now().Add(-7 * 24 * time.Hour)
	const batch = 10_000
	for from := int64(0); from < n; from += batch {
		bt := audit.Batch{HashStart: tlog.StoredHashCount(from)}
		for i := from; i < min(from+batch, n); i++ {
			e := &audit.Entry{V: audit.SchemaVersion, ID: fmt.Sprintf("e-%09d", i), Kind: audit.KindRequestAdmitted,
				Time: t0.Add(time.Duration(i) * time.Second / 2), RequestID: fmt.Sprintf("req-%d", i), Principal: users[i%2],
				Route: "openai", Model: "small", Decision: &audit.Decision{Action: "allow", Rule: "chat"}}
			if i%50 == 8 { // even: alice
				e.Kind, e.Decision = audit.KindRequestDenied, &audit.Decision{Action: "deny", Rule: "chat-unapproved-model"}
			}
			data, err := audit.Marshal(e)
			if err != nil {
				b.Fatal(err)
			}
			e.Seq = i
			hs, err := tlog.StoredHashesForRecordHash(i, tlog.RecordHash(data), hr)
			if err != nil {
				b.Fatal(err)
			}
			hashes = append(hashes, hs...)
			bt.Records = append(bt.Records, audit.Record{Seq: i, Data: data, Entry: e})
			bt.Hashes = append(bt.Hashes, hs...)
		}
		if err := st.Append(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	th, err := tlog.TreeHash(n, hr)
	if err != nil {
		b.Fatal(err)
	}
	cp, err := audit.SignCheckpoint(signer, n, th, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := st.PutCheckpoint(ctx, cp); err != nil {
		b.Fatal(err)
	}
	if _, err := st.RebuildIndex(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSearchFirstPage1M: the evidence search's first page (alice's
// denied calls, newest first) over a log of WARDEN_BENCH_CONSOLE_N
// entries, measured in the handler (server time, no network). The
// acceptance bar is 300 ms.
//
//	go test -run '^$' -bench SearchFirstPage -benchtime 20x ./internal/console
func BenchmarkSearchFirstPage1M(b *testing.B) {
	n := benchEntries()
	dir := b.TempDir()
	start := time.Now()
	buildSearchLog(b, dir, n)
	b.Logf("built and indexed %d entries in %s", n, time.Since(start).Round(time.Second))
	ctx := context.Background()
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	signer, verifier, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "console-bench")
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	l, err := audit.Open(ctx, st, cfg, signer, verifier, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(ctx)
	con, err := console.New(console.Options{Config: console.Config{Issuer: "http://idp.invalid", PublicURL: "http://warden.invalid"},
		Roles: console.Roles{Auditor: []string{"auditors"}}, Audit: l, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	cookie := console.SessionForTest(con, &identity.Principal{Subject: "dan", Groups: []string{"auditors"}})
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: "warden_console", Value: cookie})
		rec := httptest.NewRecorder()
		con.ServeHTTP(rec, req)
		return rec
	}
	if rec := get("/ui/search?principal=alice&kind=request.denied"); rec.Code != 200 || strings.Count(rec.Body.String(), `href="/ui/entry/`) != 50 {
		b.Fatalf("first page: %d, %d rows", rec.Code, strings.Count(rec.Body.String(), `href="/ui/entry/`))
	}
	b.ResetTimer()
	for b.Loop() {
		get("/ui/search?principal=alice&kind=request.denied")
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
}
