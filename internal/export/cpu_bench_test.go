package export

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// cpuTimer measures the process's user+system CPU time (GC workers
// included) over a benchmark: on the shared test machine wall time per
// op mostly measures the other jobs, CPU time much less so.
type cpuTimer struct{ ru0 syscall.Rusage }

func startCPU() *cpuTimer {
	t := &cpuTimer{}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &t.ru0)
	return t
}

// report adds cpu-ns/<unit> for n units.
func (t *cpuTimer) report(b *testing.B, n int, unit string) {
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	ns := ru1.Utime.Nano() + ru1.Stime.Nano() - t.ru0.Utime.Nano() - t.ru0.Stime.Nano()
	b.ReportMetric(float64(ns)/float64(n), "cpu-ns/"+unit)
}

// BenchmarkExportEntryCPU is the exporter's per-entry work on a typical
// request.completed entry, as the engine does it for the entries it
// reads: decode the stored bytes, hash the leaf, map to OCSF and encode.
// Kept to exported names that existed before decision 020, so the same
// file measures the baseline (see bench/export-compare.sh).
func BenchmarkExportEntryCPU(b *testing.B) {
	e, data := benchEntry(b)
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	b.ReportAllocs()
	t := startCPU()
	for b.Loop() {
		d, err := audit.DecodeEntry(e.Seq, data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Entry(d, data, nil); err != nil {
			b.Fatal(err)
		}
	}
	t.report(b, b.N, "entry")
}

// BenchmarkMapEntryCPU is the mapping and encoding alone.
func BenchmarkMapEntryCPU(b *testing.B) {
	e, data := benchEntry(b)
	d, err := audit.DecodeEntry(e.Seq, data)
	if err != nil {
		b.Fatal(err)
	}
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	b.ReportAllocs()
	t := startCPU()
	for b.Loop() {
		if _, err := m.Entry(d, data, nil); err != nil {
			b.Fatal(err)
		}
	}
	t.report(b, b.N, "entry")
}

// benchMapFed maps an entry as the commit feed delivers it (the entry
// as appended, with its bytes). The default is what the exporter did
// before decision 031 — settle it with Entry.Recorded, then map —; a
// file of later revisions (fedmap_bench_test.go) sets the current path.
var benchMapFed = func(m *Mapper, e *audit.Entry, data []byte) (Event, error) {
	r, ok := e.Recorded()
	if !ok {
		var err error
		if r, err = audit.DecodeEntry(e.Seq, data); err != nil {
			return Event{}, err
		}
	}
	return m.Entry(r, data, nil)
}

// BenchmarkMapFedEntryCPU is the exporter's per-entry work on a typical
// request.completed entry fed at commit (the gateway's usual case): from
// the entry as appended to the encoded event.
func BenchmarkMapFedEntryCPU(b *testing.B) {
	e, data := benchEntry(b)
	e.Params = map[string]any{"temperature": 0.2, "stream": true, "max_tokens": 512} // Go types, as appended
	var err error
	if data, err = audit.Marshal(e); err != nil {
		b.Fatal(err)
	}
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	b.ReportAllocs()
	t := startCPU()
	for b.Loop() {
		if _, err := benchMapFed(&m, e, data); err != nil {
			b.Fatal(err)
		}
	}
	t.report(b, b.N, "entry")
}

// BenchmarkExportFileNATS is the harness's warden-full+export stage in
// miniature: a real SQLite log of b.N request entries (checkpoint every
// 1000) exported through LogSource to a file sink (fsync per batch) and
// a NATS JetStream sink (publish acks), as the gateway process does it.
// It reports the exporter's CPU per entry for both sinks together (the
// NATS server's own CPU is not counted, as in the harness's proxy CPU).
// Run with a fixed -benchtime (e.g. 8000x); needs NATS at
// nats://127.0.0.1:4222.
func BenchmarkExportFileNATS(b *testing.B) {
	url, stream, subject := benchJetStream(b)

	dir := b.TempDir()
	st, origin, size := benchLog(b, dir, b.N)

	tgs := fileNATSTargets(b, dir, url, stream, subject)
	b.ResetTimer()
	t := startCPU()
	exportAll(b, st, origin, size, tgs)
	b.StopTimer()
	t.report(b, int(size), "entry")
}

// benchFeed, when set (feed_bench_test.go: not in revisions before the
// log fed the exporter), connects the log's commits to the source as
// cmd/warden does.
var benchFeed func(l *audit.Log, src *LogSource)

// BenchmarkFollowFileNATS is the gateway's case: the exporter (file and
// NATS sinks, default batching and catch-up limit) follows a SQLite log
// while 8 writers append b.N request entries. Sub-benchmark "append"
// appends without an exporter; the export's CPU per entry while
// following is export minus append (both cpu-ns/entry, the whole
// process). It also reports lag-ms: from the log's close (its final
// checkpoint) until both sinks have delivered everything. Run with a
// fixed -benchtime (e.g. 8000x); needs NATS at nats://127.0.0.1:4222.
func BenchmarkFollowFileNATS(b *testing.B) {
	for _, withExport := range []bool{false, true} {
		name := "append"
		if withExport {
			name = "export"
		}
		b.Run(name, func(b *testing.B) {
			url, stream, subject := benchJetStream(b)
			dir := b.TempDir()
			l, st, origin := openBenchLog(b, dir, audit.Config{})
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			var x *Exporter
			done := make(chan error, 1)
			if withExport {
				tgs := fileNATSTargets(b, dir, url, stream, subject)
				src := NewLogSource(st, LogSourceOptions{Poll: 100 * time.Millisecond}) // as cmd/warden
				if benchFeed != nil {
					benchFeed(l, src)
				}
				var err error
				if x, err = New(src, Options{Origin: origin, Logger: quietLogger()}, tgs...); err != nil {
					b.Fatal(err)
				}
				go func() { done <- x.Run(ctx) }()
			}
			b.ResetTimer()
			t := startCPU()
			appendRequests(b, l, b.N)
			if err := l.Close(ctx); err != nil {
				b.Fatal(err)
			}
			closed := time.Now()
			size, err := st.Size(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for x != nil {
				caught := true
				for _, s := range x.Status() {
					caught = caught && s.Cursor >= size
				}
				if caught {
					break
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			t.report(b, b.N, "entry")
			if x != nil {
				b.ReportMetric(float64(time.Since(closed).Milliseconds()), "lag-ms")
				stop()
				<-done
			}
		})
	}
}

// openBenchLog opens a SQLite audit log under dir with cfg (the
// gateway's default checkpoint_every of 1000 when cfg leaves it zero)
// and returns it, its store (closed when b ends) and its origin.
func openBenchLog(b *testing.B, dir string, cfg audit.Config) (*audit.Log, *sqlite.Store, string) {
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = 1000
	}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "warden-audit")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	l, err := audit.Open(ctx, st, cfg, s, v, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	return l, st, v.Name()
}

// appendRequests appends n request entries to l with 8 writers.
func appendRequests(b *testing.B, l *audit.Log, n int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := l.Append(ctx, sampleRequest(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// exportAll runs an exporter of st's log to tgs until every target's
// cursor reached size, without the catch-up limit (the log is complete
// before the exporter starts: the limit would only add sleep; set by
// name, as the base revision of bench/export-compare.sh has no such
// field).
func exportAll(b *testing.B, st *sqlite.Store, origin string, size int64, tgs []Target) {
	for i := range tgs {
		if f := reflect.ValueOf(&tgs[i]).Elem().FieldByName("CatchupMinRate"); f.IsValid() {
			f.SetFloat(-1)
		}
	}
	x, err := New(NewLogSource(st, LogSourceOptions{Poll: time.Millisecond}), Options{Origin: origin, Logger: quietLogger()}, tgs...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	for caught := false; !caught; {
		time.Sleep(time.Millisecond)
		caught = true
		for _, s := range x.Status() {
			if s.Cursor < size {
				caught = false
			}
		}
	}
	stop()
	<-done
}

// benchLog writes a SQLite audit log of n request entries under dir
// (checkpoint every 1000, none by time, 8 writers) and returns its store
// (closed when b ends), origin and size.
func benchLog(b *testing.B, dir string, n int) (*sqlite.Store, string, int64) {
	ctx := context.Background()
	l, st, origin := openBenchLog(b, dir, audit.Config{CheckpointInterval: time.Hour})
	appendRequests(b, l, n)
	if err := l.Close(ctx); err != nil {
		b.Fatal(err)
	}
	size, err := st.Size(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return st, origin, size
}

// benchEntry is a typical request.completed entry at seq 12345, its
// canonical bytes and the entry as decoded from them.
func benchEntry(b *testing.B) (*audit.Entry, []byte) {
	e := sampleEntries(audit.KindRequestCompleted)[0]
	e.Seq = 12345
	data, err := audit.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	return e, data
}

// benchJetStream names a stream and subject unique to this benchmark on
// the NATS server at $WARDEN_TEST_NATS, default nats://127.0.0.1:4222
// (skipping b without one), and deletes the stream when b ends. The sink
// under test creates it.
func benchJetStream(b *testing.B) (url, stream, subject string) {
	url = "nats://127.0.0.1:4222"
	if u := os.Getenv("WARDEN_TEST_NATS"); u != "" {
		url = u
	}
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second))
	if err != nil {
		b.Skipf("no NATS server at %s: %v", url, err)
	}
	js, _ := jetstream.New(nc)
	id := time.Now().UnixNano()
	stream, subject = fmt.Sprintf("WARDEN_BENCH_%d", id), fmt.Sprintf("wardenbench.%d", id)
	b.Cleanup(func() {
		js.DeleteStream(context.Background(), stream)
		nc.Close()
	})
	return url, stream, subject
}

// fileNATSTargets is the harness's export stage: a file sink under dir
// and a NATS sink on stream/subject, with the default batching (500
// events, 200 ms).
func fileNATSTargets(b *testing.B, dir, url, stream, subject string) []Target {
	fs, err := NewFileSink(FileConfig{Path: filepath.Join(dir, "file.jsonl")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ns, err := NewNATSSink(NATSConfig{URL: url, Subject: subject + ".{kind}", Stream: stream})
	if err != nil {
		b.Fatal(err)
	}
	tgs := []Target{target(dir, "file", fs), target(dir, "nats", ns)}
	for i := range tgs {
		tgs[i].BatchMax, tgs[i].BatchWait = 500, 200*time.Millisecond
	}
	return tgs
}

// memReader is a LogReader over records and checkpoints held in memory,
// for BenchmarkExportFedFileNATS: the exporter's following case without
// a store's own CPU.
type memReader struct {
	mu     sync.Mutex
	recs   []audit.Record
	hashes []tlog.Hash // stored hashes, by tlog's storage index
	cps    []audit.Checkpoint
	signed int // checkpoints visible
	size   int // records visible
}

func (r *memReader) Size(ctx context.Context) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(r.size), nil
}

func (r *memReader) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(r.hashes)) {
			return nil, fmt.Errorf("memReader: hash %d not stored", x)
		}
		out[i] = r.hashes[x]
	}
	return out, nil
}

func (r *memReader) ReadRecords(ctx context.Context, from, to int64) ([]audit.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]audit.Record, 0, to-from)
	for _, rec := range r.recs[from:to] {
		out = append(out, audit.Record{Seq: rec.Seq, Data: rec.Data})
	}
	return out, nil
}

func (r *memReader) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Checkpoint(nil), r.cps[:r.signed]...), nil
}

func (r *memReader) LatestCheckpoint(ctx context.Context) (audit.Checkpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.signed == 0 {
		return audit.Checkpoint{}, audit.ErrNotFound
	}
	return r.cps[r.signed-1], nil
}

// memHashes is the stored hashes of a log being built, for tlog.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = m[x]
	}
	return out, nil
}

// BenchmarkExportFedFileNATS is the gateway's following case without
// the log's own cost: b.N request entries (the four kinds of
// sampleRequest, as appended: Go values in params) are fed to the
// source as audit.Log.OnCommit does, 1000 at a time with a checkpoint
// after each thousand, the next thousand once both sinks (file, NATS;
// default batching) are at most 4000 entries behind (the sinks stay
// busy; the source's cache holds 8192). cpu-ns/entry is the
// whole process's CPU from the first feed to the last delivery: the
// exporter's in-process cost per entry (the NATS server's is its own).
// Run with a fixed -benchtime (e.g. 8000x); needs NATS.
func BenchmarkExportFedFileNATS(b *testing.B) {
	url, stream, subject := benchJetStream(b)
	dir := b.TempDir()
	const every = 1000
	n := (b.N + every - 1) / every * every
	r := &memReader{}
	var hs memHashes
	for i := range n {
		e := sampleRequest(i)
		e.Seq = int64(i)
		e.ID = fmt.Sprintf("0193a1b2-0000-7000-8000-%012d", i)
		if len(e.Params) > 0 {
			e.Params = map[string]any{"temperature": 0.2, "stream": true, "max_tokens": 512}
		}
		data, err := audit.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		h, err := tlog.StoredHashes(int64(i), data, hs)
		if err != nil {
			b.Fatal(err)
		}
		hs = append(hs, h...)
		r.recs = append(r.recs, audit.Record{Seq: int64(i), Data: data, Entry: e})
		if (i+1)%every == 0 {
			th, err := tlog.TreeHash(int64(i+1), hs)
			if err != nil {
				b.Fatal(err)
			}
			r.cps = append(r.cps, audit.Checkpoint{Size: int64(i + 1), Hash: th, Time: time.Now(),
				Note: []byte(fmt.Sprintf("warden-audit\n%d\n\n— warden-audit sig\n", i+1))})
		}
	}
	r.hashes = hs
	src := NewLogSource(r, LogSourceOptions{Poll: 2 * time.Millisecond})
	tgs := fileNATSTargets(b, dir, url, stream, subject)
	x, err := New(src, Options{Origin: "warden-audit", Logger: quietLogger()}, tgs...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	b.ResetTimer()
	t := startCPU()
	for c := range n / every {
		end := (c + 1) * every
		src.Feed(r.recs[c*every : end])
		r.mu.Lock()
		r.size, r.signed = end, c+1
		r.mu.Unlock()
		// Keep the sinks busy (at most 4000 entries ahead, within the
		// cache), and wait for everything at the end.
		want := int64(end - 4*every)
		if end == n {
			want = int64(n)
		}
		for caught := false; !caught; {
			time.Sleep(200 * time.Microsecond)
			caught = true
			for _, s := range x.Status() {
				caught = caught && s.Cursor >= want
			}
		}
	}
	b.StopTimer()
	t.report(b, n, "entry")
	stop()
	<-done
}
