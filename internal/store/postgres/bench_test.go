package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// BenchmarkAppend measures durable admissions per second through
// audit.Log.Append with 1, 16 and 256 concurrent writers. For postgres an
// append is durable once its pending row is committed (synchronous_commit
// on); "sequenced/s" is how fast the integrator turned them into log
// entries (time until the queue drained). sqlite, measured in the same
// run on the same machine, is the baseline.
//
//	WARDEN_TEST_POSTGRES=... go test -run '^$' -bench BenchmarkAppend -benchtime 2s ./internal/store/postgres/
func BenchmarkAppend(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, writers := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("%s/writers=%d", backend, writers), func(b *testing.B) {
				benchAppend(b, backend, writers)
			})
		}
	}
}

// quiet discards logs, so benchmark output stays readable.
var quiet = slog.New(slog.DiscardHandler)

func benchAppend(b *testing.B, backend string, writers int) {
	ctx := context.Background()
	signer, verifier, err := audit.LoadOrCreateKeys(filepath.Join(b.TempDir(), "k"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	cfg := audit.Config{Store: backend, CheckpointEvery: 1000, CheckpointInterval: time.Second}
	var st audit.Store
	var pg *Store
	switch backend {
	case "sqlite":
		s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "audit.db"))
		if err != nil {
			b.Fatal(err)
		}
		st = s
	case "postgres":
		cfg.DSN = testDSN(b)
		pg = openStore(b, newSchema(b), WithMaxConns(8), WithLogger(quiet))
		st = pg
	}
	defer st.Close()
	l, err := audit.Open(ctx, st, cfg, signer, verifier, audit.WithInstance("bench"), audit.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(ctx)

	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	b.ResetTimer()
	m := startCPU(cfg.DSN)
	start := time.Now()
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				e := &audit.Entry{
					Kind:      audit.KindRequestAdmitted,
					RequestID: "bench",
					Principal: &identity.Principal{Issuer: "https://idp", Subject: "alice"},
					Route:     "chat", Method: "POST", Path: "/v1/chat/completions", Model: "llama-3",
					Params:   map[string]any{"temperature": 0.2, "max_tokens": 256},
					Decision: &audit.Decision{Action: "allow", Rule: "default", PolicyVersion: "abc"},
				}
				if _, err := l.Append(ctx, e); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	if pg != nil {
		for {
			n, err := pg.PendingCount(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sequenced/s")
	}
	m.report(b, b.N)
}
