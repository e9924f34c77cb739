package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// BenchmarkOpenStore is a writable Open and Close of a store of
// WARDEN_BENCH_OPEN_ENTRIES entries (default 100,000) in batches of 64,
// every batch's head signed and every 16th batch's (1,024 entries) kept
// in the history, as a gateway with checkpoint_every 1024 writes it. The
// store is built once, in WARDEN_BENCH_OPEN_DIR if set (and reused from
// there, so that two builds of the package open the same files), its
// index caught up before the timing. Open's cost is the frame file's
// verifying scan (every frame's CRC), the checkpoints' catch-up, the
// head, the WAL's sync and the index's open (decision 047).
func BenchmarkOpenStore(b *testing.B) {
	ctx := context.Background()
	n := int64(100_000)
	if v := os.Getenv("WARDEN_BENCH_OPEN_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			b.Fatal(err)
		}
	}
	dir := os.Getenv("WARDEN_BENCH_OPEN_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	path := filepath.Join(dir, "audit.db")
	if _, err := os.Stat(FramesPath(path)); err != nil {
		buildOpenStore(b, dir, n)
	}
	st, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.idx.CatchUp(ctx); err != nil {
		b.Fatal(err)
	}
	size := st.fr.End()
	st.Close()
	b.SetBytes(size)
	b.ResetTimer()
	cpu := procCPU()
	for range b.N {
		st, err := Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
	b.ReportMetric(float64((procCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// buildOpenStore writes BenchmarkOpenStore's store of n entries in dir.
func buildOpenStore(b *testing.B, dir string, n int64) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(dir, "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	signer, _, err := audit.LoadOrCreateKeys(filepath.Join(dir, "keys", audit.SignerFile), "bench-open")
	if err != nil {
		b.Fatal(err)
	}
	var hs []tlog.Hash
	for from, k := int64(0), 0; from < n; from, k = from+64, k+1 {
		batch := flushBatch(b, signer, &hs, from, min(from+64, n))
		batch.HeadHistory = k%16 == 15
		if err := st.AppendNoFlush(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if k%256 == 255 {
			if err := st.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := st.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}
