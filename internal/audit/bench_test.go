package audit_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// BenchmarkAppend measures durable appends (committed + fsynced, group
// commit) through Log.Append with N concurrent writers. Besides appends/s
// it reports the process CPU time per append (cpu-µs/append, from
// getrusage: steadier than wall time on a shared machine), which includes
// the search indexer's work in the background.
//
// signed=batch is today's log: every batch's tree head is signed and
// made durable before the batch is acknowledged. signed=interval is the
// log before that (checkpoints every checkpoint_every entries or
// checkpoint_interval), run in the same process so the ratio of the two
// is the cost of signing every batch.
func BenchmarkAppend(b *testing.B) {
	for _, signed := range []string{"interval", "batch"} {
		for _, writers := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("sqlite/signed=%s/writers=%d", signed, writers), func(b *testing.B) {
				defer audit.SetSignEveryBatch(signed == "batch")()
				benchAppend(b, writers)
			})
		}
	}
}

func benchAppend(b *testing.B, writers int) {
	{
		{
			e := newEnv(b, nil)
			b.ReportAllocs()
			before := e.log.Stats()
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0 := cpuTime()
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := e.log.Append(context.Background(), request(w)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/append")
			st := e.log.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			b.ReportMetric(float64(st.Appends-before.Appends)/float64(max(1, st.Batches-before.Batches)), "entries/txn")
			if f := flushes(st) - flushes(before); f > 0 {
				b.ReportMetric(float64(st.Appends-before.Appends)/float64(f), "entries/flush")
			}
			reportPolicy(b, before, st)
		}
	}
}

// flushes is Stats.Flushes, read by name: bench/audit-append-compare.sh
// runs this file against older revisions too, whose Stats lack it.
func flushes(st audit.Stats) int64 { return statField(st, "Flushes") }

// statField is a field of Stats read by name (0 if this revision's Stats
// lacks it).
func statField(st audit.Stats, name string) int64 {
	if f := reflect.ValueOf(st).FieldByName(name); f.IsValid() {
		return f.Int()
	}
	return 0
}

// reportPolicy reports how often the moderate-rate commit policy
// (decisions 036, 040) was taken between before and after: the share of
// batches cut by gathering, and of flushes done by the writer itself.
func reportPolicy(b *testing.B, before, after audit.Stats) {
	if bt := after.Batches - before.Batches; bt > 0 {
		b.ReportMetric(float64(statField(after, "Gathers")-statField(before, "Gathers"))/float64(bt), "gathered/batch")
	}
	if f := flushes(after) - flushes(before); f > 0 {
		b.ReportMetric(float64(statField(after, "OwnFlushes")-statField(before, "OwnFlushes"))/float64(f), "own/flush")
	}
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bigLog is a 1M-entry SQLite store built once per process: entries are
// written by Store.Append in batches of 10,000 (the same code path as the
// Log, minus the per-append channel hop), then a checkpoint is signed.
var bigLog struct {
	once sync.Once
	dir  string
	path string
	s    note.Signer
	v    note.Verifier
	cp   audit.Checkpoint
	err  error
}

const bigN = 1_000_000

func buildBigLog(b *testing.B) {
	bigLog.once.Do(func() {
		start := time.Now()
		// WARDEN_BENCH_1M_DIR keeps the store between runs (not removed).
		dir := os.Getenv("WARDEN_BENCH_1M_DIR")
		var err error
		if dir == "" {
			if dir, err = os.MkdirTemp("", "warden-audit-1m-"); err != nil {
				bigLog.err = err
				return
			}
			bigLog.dir = dir
		}
		bigLog.path = filepath.Join(dir, "audit.db")
		bigLog.s, bigLog.v, err = audit.LoadOrCreateKeys(filepath.Join(dir, "keys", audit.SignerFile), "bench-audit")
		if err != nil {
			bigLog.err = err
			return
		}
		ctx := context.Background()
		if ro, err := sqlite.OpenReadOnly(ctx, bigLog.path); err == nil {
			cp, err := ro.LatestCheckpoint(ctx)
			ro.Close()
			if err == nil && cp.Size == bigN {
				bigLog.cp = cp
				return
			}
		}
		st, err := sqlite.Open(ctx, bigLog.path)
		if err != nil {
			bigLog.err = err
			return
		}
		defer st.Close()
		tr := newTreeBuilder()
		t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		const batch = 10_000
		for from := int64(0); from < bigN; from += batch {
			bt := audit.Batch{HashStart: tlog.StoredHashCount(from)}
			for i := from; i < from+batch; i++ {
				e := request(int(i))
				e.V, e.ID, e.Time, e.Instance = 1, fmt.Sprintf("bench-%07d", i), t0.Add(time.Duration(i)*time.Millisecond), "bench"
				e.Params = nil // keep the text index small
				data, err := audit.Marshal(e)
				if err != nil {
					bigLog.err = err
					return
				}
				e.Seq = i
				bt.Records = append(bt.Records, audit.Record{Seq: i, Data: data, Entry: e})
				bt.Hashes = append(bt.Hashes, tr.add(data)...)
			}
			if err := st.Append(ctx, bt); err != nil {
				bigLog.err = err
				return
			}
		}
		cp, err := audit.SignCheckpoint(bigLog.s, bigN, tr.root(), time.Now())
		if err == nil {
			err = st.PutCheckpoint(ctx, cp)
		}
		bigLog.cp, bigLog.err = cp, err
		fmt.Fprintf(os.Stderr, "built a %d-entry audit store in %s\n", bigN, time.Since(start).Round(time.Second))
	})
	if bigLog.err != nil {
		b.Fatal(bigLog.err)
	}
}

// treeBuilder computes stored hashes for consecutive records (tlog's
// StoredHashes against an in-memory slice).
type treeBuilder struct{ hashes []tlog.Hash }

func newTreeBuilder() *treeBuilder { return &treeBuilder{} }

func (t *treeBuilder) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = t.hashes[x]
	}
	return out, nil
}

func (t *treeBuilder) add(data []byte) []tlog.Hash {
	n := tlog.StoredHashCount(int64(len(t.hashes)))
	_ = n
	hs, err := tlog.StoredHashes(t.n(), data, t)
	if err != nil {
		panic(err)
	}
	t.hashes = append(t.hashes, hs...)
	return hs
}

// n is the number of records added: the inverse of StoredHashCount.
func (t *treeBuilder) n() int64 {
	lo, hi := int64(0), int64(len(t.hashes))
	for lo < hi {
		m := (lo + hi + 1) / 2
		if tlog.StoredHashCount(m) <= int64(len(t.hashes)) {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

func (t *treeBuilder) root() tlog.Hash {
	h, err := tlog.TreeHash(t.n(), t)
	if err != nil {
		panic(err)
	}
	return h
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("WARDEN_AUDIT_CRASH_CHILD"); dir != "" {
		crashChild(dir) // never returns: the parent kills it
	}
	code := m.Run()
	if bigLog.dir != "" {
		os.RemoveAll(bigLog.dir)
	}
	os.Exit(code)
}

// BenchmarkInclusionProof1M: an inclusion proof for a random entry of a
// 1M-entry log against its checkpoint, read from SQLite, and its check.
func BenchmarkInclusionProof1M(b *testing.B) {
	buildBigLog(b)
	ctx := context.Background()
	st, err := sqlite.OpenReadOnly(ctx, bigLog.path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) })
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq := rand.Int64N(bigN)
		p, err := tlog.ProveRecord(bigN, seq, r)
		if err != nil {
			b.Fatal(err)
		}
		recs, err := st.ReadRecords(ctx, seq, seq+1)
		if err != nil {
			b.Fatal(err)
		}
		if err := audit.CheckEntryProof(p, bigLog.cp, seq, recs[0].Data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify1M: full offline verification of the 1M-entry store.
func BenchmarkVerify1M(b *testing.B) {
	buildBigLog(b)
	ctx := context.Background()
	st, err := sqlite.OpenReadOnly(ctx, bigLog.path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := audit.Verify(ctx, st, bigLog.v, audit.VerifyOptions{SingleWriter: true})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Size != bigN {
			b.Fatalf("verified %d entries", rep.Size)
		}
	}
	b.ReportMetric(float64(bigN)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkAppendPaced is the open loop in-process: simulated requests
// arrive at a fixed rate (requests/s, whatever the log's latency), each
// appending two entries like the gateway — its admission when it
// arrives, its completion pacedUpstream after the admission returned —
// on SQLite with every batch signed. b.N is the number of appends.
//
// Reported: cpu-µs/append (process CPU from getrusage, background
// indexer included), the Append latency p50/p99/max in ms measured from
// the intended send time (the arrival slot for admissions, so a late
// sender cannot hide the log's delay: no coordinated omission), entries
// per transaction and per flush.
func BenchmarkAppendPaced(b *testing.B) {
	for _, rate := range []int{2000, 4000, 8000} {
		b.Run(fmt.Sprintf("sqlite/rate=%d", rate), func(b *testing.B) {
			defer audit.SetSignEveryBatch(true)()
			benchAppendPaced(b, rate)
		})
	}
}

// pacedUpstream is the simulated upstream time between a request's
// admission and its completion.
const pacedUpstream = 2 * time.Millisecond

func benchAppendPaced(b *testing.B, rate int) {
	e := newEnv(b, nil)
	reqs := max(1, b.N/2)
	lat := make([]time.Duration, 2*reqs)
	interval := time.Second / time.Duration(rate)
	before := e.log.Stats()
	var wg sync.WaitGroup
	var failed atomic.Bool
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < reqs; {
		now := time.Now()
		// Launch every request whose slot has come (the pacer may wake
		// late; each request keeps its own intended time).
		for ; i < reqs; i++ {
			due := start.Add(time.Duration(i) * interval)
			if due.After(now) {
				break
			}
			wg.Add(1)
			go func(i int, due time.Time) {
				defer wg.Done()
				if _, err := e.log.Append(context.Background(), request(2*i)); err != nil {
					failed.Store(true)
					return
				}
				done := time.Now()
				lat[2*i] = done.Sub(due)
				time.Sleep(pacedUpstream)
				sent := time.Now()
				if _, err := e.log.Append(context.Background(), request(2*i+1)); err != nil {
					failed.Store(true)
					return
				}
				lat[2*i+1] = time.Since(sent)
			}(i, due)
		}
		if i < reqs {
			time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		}
	}
	wg.Wait()
	b.StopTimer()
	if failed.Load() {
		b.Fatal("an append failed")
	}
	n := 2 * reqs
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/append")
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[n/2]), "p50-ms")
	b.ReportMetric(ms(lat[n*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[n-1]), "max-ms")
	st := e.log.Stats()
	b.ReportMetric(float64(st.Appends-before.Appends)/float64(max(1, st.Batches-before.Batches)), "entries/txn")
	if f := flushes(st) - flushes(before); f > 0 {
		b.ReportMetric(float64(st.Appends-before.Appends)/float64(f), "entries/flush")
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "appends/s")
	reportPolicy(b, before, st)
}

// BenchmarkAppendRequests is the harness's closed loop at 64 connections
// in-process (decision 040): each connection sends one request after
// another; a request appends its admission and waits for it, spends
// `upstream` (the upstream and the gateway's own work, a sleep here),
// then hands its completion to a completion worker without waiting for
// it (as internal/gateway/completion.go does) and sends the next
// request. SQLite, every batch signed, the search indexer running. b.N
// is the number of appends (two per request).
//
// upstream=15ms makes ~3–3.5k requests/s here, the rate warden-full
// reaches at 64 connections in the harness, but bound by latency (a
// faster log means more requests/s and smaller batches); upstream=2ms
// comes closer to saturating the log. work=300us adds ~300 µs of CPU per
// request on the connection's goroutine (SHA-256 of 4 KiB, 100 times),
// so that the two cores, not the sleeps, bound the rate, as the
// gateway's own work does in the harness; its CPU is in cpu-µs/append
// (~150 µs per append, the same for both binaries).
//
// Reported: cpu-µs/append (process CPU), appends/s and requests/s, the
// admission's Append latency p50/p99 in ms, entries per transaction and
// per flush, and how often the moderate-rate policy was taken.
func BenchmarkAppendRequests(b *testing.B) {
	for _, c := range []struct {
		upstream time.Duration
		work     int // SHA-256 of 4 KiB per request, ~3 µs each
	}{{15 * time.Millisecond, 0}, {2 * time.Millisecond, 0}, {2 * time.Millisecond, 100}} {
		name := fmt.Sprintf("sqlite/conns=64/upstream=%s", c.upstream)
		if c.work > 0 {
			name += fmt.Sprintf(",work=%dus", 3*c.work)
		}
		b.Run(name, func(b *testing.B) {
			defer audit.SetSignEveryBatch(true)()
			benchAppendRequests(b, 64, c.upstream, c.work)
		})
	}
}

// requestWork is the simulated gateway's CPU per request: n SHA-256 sums
// of 4 KiB.
func requestWork(n int) {
	var buf [4096]byte
	for i := range n {
		buf[0] = byte(i)
		sum := sha256.Sum256(buf[:])
		buf[1] = sum[0]
	}
}

func benchAppendRequests(b *testing.B, conns int, upstream time.Duration, work int) {
	e := newEnv(b, nil)
	reqs := max(1, b.N/2)
	lat := make([]time.Duration, reqs)
	before := e.log.Stats()
	var failed atomic.Bool
	// Completion workers: an idle one takes the job, else a new one
	// starts; a worker ends when the jobs end (the gateway's idle
	// timeout, without the timer).
	jobs := make(chan int)
	var workers sync.WaitGroup
	complete := func(i int) {
		if _, err := e.log.Append(context.Background(), request(2*i+1)); err != nil {
			failed.Store(true)
		}
	}
	worker := func(i int) {
		defer workers.Done()
		for {
			complete(i)
			var ok bool
			if i, ok = <-jobs; !ok {
				return
			}
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= reqs {
					return
				}
				t0 := time.Now()
				if _, err := e.log.Append(context.Background(), request(2*i)); err != nil {
					failed.Store(true)
					return
				}
				lat[i] = time.Since(t0)
				requestWork(work)
				time.Sleep(upstream)
				select {
				case jobs <- i:
				default:
					workers.Add(1)
					go worker(i)
				}
			}
		}()
	}
	wg.Wait()
	close(jobs)
	workers.Wait()
	b.StopTimer()
	if failed.Load() {
		b.Fatal("an append failed")
	}
	n := 2 * reqs
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/append")
	b.ReportMetric(float64(n)/elapsed, "appends/s")
	b.ReportMetric(float64(reqs)/elapsed, "req/s")
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[reqs/2]), "p50-ms")
	b.ReportMetric(ms(lat[reqs*99/100]), "p99-ms")
	st := e.log.Stats()
	b.ReportMetric(float64(st.Appends-before.Appends)/float64(max(1, st.Batches-before.Batches)), "entries/txn")
	if f := flushes(st) - flushes(before); f > 0 {
		b.ReportMetric(float64(st.Appends-before.Appends)/float64(f), "entries/flush")
	}
	reportPolicy(b, before, st)
}
