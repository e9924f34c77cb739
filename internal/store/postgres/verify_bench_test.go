package postgres

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// BenchmarkVerify measures audit.Verify (what `warden verify` and start-up
// run) against a PostgreSQL store of 50,000 entries with a signed
// checkpoint at the end, in entries/s.
//
//	WARDEN_TEST_POSTGRES=... go test -run '^$' -bench BenchmarkVerify ./internal/store/postgres/
func BenchmarkVerify(b *testing.B) {
	const n = 50000
	ctx := context.Background()
	st := openStore(b, newSchema(b), WithLogger(quiet))
	signer, verifier, err := audit.LoadOrCreateKeys(filepath.Join(b.TempDir(), "k"), "bench-verify")
	if err != nil {
		b.Fatal(err)
	}
	for from := 0; from < n; from += 1000 {
		es := make([]*audit.Entry, 1000)
		for i := range es {
			es[i] = testEntry(from+i, "v")
		}
		appendDirect(b, st, es)
	}
	th, err := tlog.TreeHash(n, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) }))
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
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		rep, err := audit.Verify(ctx, st, verifier, audit.VerifyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Size != n || rep.UnsignedTail != 0 {
			b.Fatalf("verified %+v", rep)
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "entries/s")
}
