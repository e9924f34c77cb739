package export

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
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
	cfg := audit.Config{CheckpointEvery: 1000, CheckpointInterval: time.Hour}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "warden-audit")
	if err != nil {
		b.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), cfg.Path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	l, err := audit.Open(context.Background(), st, cfg, s, v, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += 8 {
				if _, err := l.Append(ctx, sampleRequest(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
	size, _ := st.Size(ctx)
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
	x, err := New(NewLogSource(st, LogSourceOptions{Poll: time.Millisecond}), Options{Origin: v.Name(), Logger: quietLogger()}, tgs...)
	if err != nil {
		b.Fatal(err)
	}
	xctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- x.Run(xctx) }()
	for {
		caught := true
		for _, s := range x.Status() {
			if s.Cursor < size {
				caught = false
			}
		}
		if caught {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(cpu.Microseconds())/float64(size), "cpu-µs/entry")
	stop()
	<-done
}
