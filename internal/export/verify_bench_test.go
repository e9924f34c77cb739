package export

import (
	"bytes"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

func BenchmarkVerifyStream(b *testing.B) {
	l := newMemLog(b)
	l.fill(b, 1000, 100)
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	var buf bytes.Buffer
	fr := frontier{}
	for i, it := range l.items {
		var ev Event
		var err error
		var snap = fr.snapshot()
		if i > 0 {
			snap = nil
		}
		if it.Checkpoint != nil {
			ev, err = m.Checkpoint(*it.Checkpoint, snap)
		} else {
			ev, err = m.Entry(it.Entry, it.Data, snap)
		}
		if err != nil {
			b.Fatal(err)
		}
		buf.Write(ev.JSON)
		buf.WriteByte('\n')
	}
	_, v := testKeys(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := VerifyStream(bytes.NewReader(buf.Bytes()), v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkMapEntry(b *testing.B) {
	e := sampleEntries("request.completed")[0]
	e.Seq = 12345
	data, _ := auditMarshalForBench(e)
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	var size int
	for b.Loop() {
		ev, err := m.Entry(e, data, nil)
		if err != nil {
			b.Fatal(err)
		}
		size = len(ev.JSON)
	}
	b.ReportMetric(float64(size), "bytes/event")
}

func auditMarshalForBench(e *audit.Entry) ([]byte, error) { return audit.Marshal(e) }

// BenchmarkExportPipeline exports a real SQLite log of b.N request
// entries to two file sinks through LogSource and the engine: the
// exporter's whole cost per entry (read, parse, hash, map, write), for
// both sinks.
func BenchmarkExportPipeline(b *testing.B) {
	dir := b.TempDir()
	st, origin, size := benchLog(b, dir, b.N)
	var tgs []Target
	for _, name := range []string{"a", "b"} {
		fs, err := NewFileSink(FileConfig{Path: filepath.Join(dir, name+".jsonl"), Fsync: "never"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		tg := target(dir, name, fs)
		tg.BatchMax, tg.BatchWait = 500, 200*time.Millisecond // the defaults
		tgs = append(tgs, tg)
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	exportAll(b, st, origin, size, tgs)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(cpu.Microseconds())/float64(size), "cpu-µs/entry")
}
