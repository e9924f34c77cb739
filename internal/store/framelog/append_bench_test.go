package framelog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
)

// BenchmarkFrameLogAppend is BenchmarkStoreAppend
// (internal/store/sqlite/append_bench_test.go) for a frame log: per batch,
// AppendBatch (the conversion from the Log's audit.Batch, the encoding,
// both CRCs, one pwrite) then Sync (fdatasync), of batches of 1, 8, 16, 32,
// 64 and 256 gateway-like entries (~450 bytes) with their hashes and
// signed heads built beforehand by the same code (copied: the sqlite
// package's helpers are unexported test code), a history checkpoint every
// 1000 entries. The goroutine is locked to its thread; cpu-µs/entry is
// that thread's CPU (getrusage RUSAGE_THREAD, user + system, fdatasync
// included), user-µs/entry its user part, proc-cpu-µs/entry the process's
// (with the grow goroutine's, when preallocating); bytes/entry is the
// frames' growth per entry.
//
// bench/framelog-compare.sh runs it interleaved with BenchmarkStoreAppend
// (decision 038).
func BenchmarkFrameLogAppend(b *testing.B) {
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchFrameLogAppend(b, batch, false) })
	}
}

var benchBatches = []int{1, 8, 16, 32, 64, 256}

// BenchmarkFrameLogAppendPrealloc is BenchmarkFrameLogAppend with the
// real preallocating writer (Preallocate, decisions 044 and 045: zeros
// written ahead by the grow goroutine, the durable mark kept by it) of
// DefaultChunk, or FRAMELOG_BENCH_CHUNK bytes.
func BenchmarkFrameLogAppendPrealloc(b *testing.B) {
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchFrameLogAppend(b, batch, true) })
	}
}

func benchFrameLogAppend(b *testing.B, batch int, prealloc bool) {
	dir := b.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := Create(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	signer, _, err := audit.LoadOrCreateKeys(filepath.Join(dir, "keys", audit.SignerFile), "store-bench")
	if err != nil {
		b.Fatal(err)
	}
	// One warm-up batch, then the measured ones: b.N entries in all.
	batches := storetest.SignedBatches(b, signer, batch, batch+b.N)
	var fb Batch
	appendOne := func(bt *audit.Batch) {
		// What the wiring would do per batch: the Log's batch as a frame.
		fb.FirstSeq, fb.HashStart, fb.Hashes, fb.Head, fb.HeadHistory = bt.Records[0].Seq, bt.HashStart, bt.Hashes, nil, bt.HeadHistory
		fb.Records = fb.Records[:0]
		for _, r := range bt.Records {
			fb.Records = append(fb.Records, r.Data)
		}
		if bt.Head != nil {
			fb.Head = bt.Head.Note
		}
		if err := l.AppendBatch(&fb); err != nil {
			b.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	if prealloc {
		chunk := int64(DefaultChunk)
		if v, err := strconv.ParseInt(os.Getenv("FRAMELOG_BENCH_CHUNK"), 10, 64); err == nil && v > 0 {
			chunk = v
		}
		if err := l.Preallocate(chunk, func(err error) { b.Error(err) }); err != nil {
			b.Fatal(err)
		}
	}
	appendOne(&batches[0])
	size0 := l.end
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, user0, proc0 := threadCPU(), threadUser(), procCPU()
	b.ResetTimer()
	for i := range batches[1:] {
		appendOne(&batches[1+i])
	}
	b.StopTimer()
	b.ReportMetric(float64((threadCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/entry")
	b.ReportMetric(float64((threadUser()-user0).Nanoseconds())/1e3/float64(b.N), "user-µs/entry")
	b.ReportMetric(float64((procCPU()-proc0).Nanoseconds())/1e3/float64(b.N), "proc-cpu-µs/entry")
	b.ReportMetric(float64(l.end-size0)/float64(b.N), "bytes/entry")
}

// procCPU, threadUser and threadCPU are copies of the sqlite package's
// benchmark helpers, so both benchmarks measure the same way; the
// batches come from storetest.SignedBatches, as there.

func procCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func threadUser() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano())
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchLog writes a synced log of 64-entry frames of at least size
// bytes and returns its path, the frames' end and their count.
func benchLog(b *testing.B, size int64) (path string, end int64, frames int) {
	path = filepath.Join(b.TempDir(), "a.log")
	l, err := Create(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c := newChain(b, 0)
	for l.end < size {
		if err := l.AppendBatch(c.next(b, 64)); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
	return path, l.end, l.Frames()
}

// BenchmarkOpen is Open's verifying scan of a 64 MiB log of 64-entry
// frames (from the page cache: the CRCs and the index, not the disk).
// "heads" is OpenVisit with the visitor the sqlite store passes (the
// history heads, a third of the frames here, read with BatchHead and
// copied): its cost over "plain" is what reading them at Open adds.
func BenchmarkOpen(b *testing.B) {
	path, size, frames := benchLog(b, 64<<20)
	for _, bc := range []struct {
		name  string
		visit bool
	}{{"plain", false}, {"heads", true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				var visit Visitor
				var heads [][]byte
				if bc.visit {
					visit = func(_ int, p []byte) error {
						if !HeadHistory(p) {
							return nil
						}
						_, head, _, err := BatchHead(p)
						heads = append(heads, bytes.Clone(head))
						return err
					}
				}
				l, _, err := OpenVisit(path, visit)
				if err != nil || l.Frames() != frames {
					b.Fatalf("Open: %v", err)
				}
				l.Close()
			}
		})
	}
}

// BenchmarkOpenPreallocated is Open of a log of 1 MiB of frames followed
// by the most zeros Preallocate leaves ahead of them (6 MiB, decision
// 045): Open reads the zeros backwards to find where the frames end, so
// this is what that scan adds to a start-up. Measured 2026-12-01 (shared
// 2-core machine): 4–9 ms per Open, the same as with the byte loop
// replaced by page-wise bytes.Equal (not kept: the page cache read, not
// the compare, is the cost).
func BenchmarkOpenPreallocated(b *testing.B) {
	path, _, frames := benchLog(b, 1<<20)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 6<<20)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.ResetTimer()
	for range b.N {
		l, _, err := Open(path)
		if err != nil || l.Frames() != frames {
			b.Fatalf("Open: %v", err)
		}
		l.Close()
	}
}
