package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
)

// BenchmarkStoreAppend measures what the log's writer goroutines spend in
// the store per entry: AppendNoFlush of one batch (its transaction: size
// check, multi-row inserts of records and tree hashes, the signed head,
// the commit and its WAL frames, the autocheckpoint inside the commit)
// then Flush (fdatasync of the WAL), batches of a fixed size prepared
// beforehand (entries, hashes and signatures are the Log's work, not the
// store's). The benchmark's goroutine is locked to its thread and
// cpu-µs/entry is that thread's CPU time (getrusage RUSAGE_THREAD, user +
// system): counted, not sampled as in a profile, and without the search
// indexer's work, which runs on other threads; user-µs/entry is its user
// part (the system part, pwrite and fdatasync, is what other processes'
// I/O on the machine moves most). modernc's SQLite runs on
// the calling goroutine, so the thread's time is the store's time, but
// for goroutines the store starts (on main: database/sql's and the
// driver's context watchers); proc-cpu-µs/entry is the whole process's,
// which counts those and also the search indexer and the GC.
//
// wal-frames/commit is the WAL's growth in frames per commit until the
// first checkpoint restarts it (SQLite writes each frame with two
// pwrites).
//
// bench/store-append-compare.sh runs it against a base revision,
// interleaved (decision 033).
func BenchmarkStoreAppend(b *testing.B) {
	for _, batch := range []int{1, 8, 64, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchStoreAppend(b, batch) })
	}
}

func benchStoreAppend(b *testing.B, batch int) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := Open(ctx, filepath.Join(dir, "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	signer, _, err := audit.LoadOrCreateKeys(filepath.Join(dir, "keys", audit.SignerFile), "store-bench")
	if err != nil {
		b.Fatal(err)
	}
	// One warm-up batch, then the measured ones: b.N entries in all.
	batches := storetest.SignedBatches(b, signer, batch, batch+b.N)
	if err := st.Append(ctx, batches[0]); err != nil {
		b.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var frames, commits int64
	counting := true
	walSize := func() int64 {
		if fi, err := statWAL(st); err == nil {
			return fi
		}
		return 0
	}
	prev := walSize()
	cpu0, user0, proc0 := threadCPU(), threadUser(), procCPU()
	b.ResetTimer()
	for _, bt := range batches[1:] {
		if err := st.AppendNoFlush(ctx, bt); err != nil {
			b.Fatal(err)
		}
		if err := st.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		// The WAL restarts after a checkpoint (same file, written from
		// its start): count the growth of its first cycle only.
		if n := walSize(); counting && n > prev {
			frames += (n - prev) / (4096 + 24)
			commits++
			prev = n
		} else {
			counting = false
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((threadCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/entry")
	b.ReportMetric(float64((threadUser()-user0).Nanoseconds())/1e3/float64(b.N), "user-µs/entry")
	b.ReportMetric(float64((procCPU()-proc0).Nanoseconds())/1e3/float64(b.N), "proc-cpu-µs/entry")
	if commits > 0 {
		b.ReportMetric(float64(frames)/float64(commits), "wal-frames/commit")
	}
}

func statWAL(st *Store) (int64, error) {
	fi, err := os.Stat(st.Path() + "-wal")
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// procCPU is the process's CPU time (user + system): the thread's, plus
// what the store starts on other goroutines (database/sql's and the
// driver's context watchers on main), the garbage collector, and the
// search indexer fed by each Flush.
func procCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadUser is the calling thread's user CPU time: the part of
// cpu-µs/entry spent outside the kernel (pwrite, fcntl and fdatasync are
// system time, which other processes' I/O on the machine moves most).
func threadUser() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano())
}

// threadCPU is the calling thread's CPU time (user + system).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
