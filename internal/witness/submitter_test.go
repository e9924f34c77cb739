package witness_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	log    *testLog
	ws     []*witnesstest.Witness
	st     *memStore
	sub    *witness.Submitter
	logs   *syncBuffer
	file   string
	cancel context.CancelFunc
	done   chan struct{}
}

func newFixture(t *testing.T, n int, pol witness.Policy) *fixture {
	t.Helper()
	f := &fixture{log: newTestLog(t, "warden-audit"), st: &memStore{}, logs: &syncBuffer{}}
	var eps []witness.Endpoint
	for i := 0; i < n; i++ {
		w := witnesstest.New(t, "w"+string(rune('1'+i)), f.log.vkey)
		f.ws = append(f.ws, w)
		eps = append(eps, witness.Endpoint{URL: w.URL, Key: w.Key, Timeout: 2 * time.Second})
	}
	if pol.Poll == 0 {
		pol.Poll = 20 * time.Millisecond
	}
	if pol.Interval == 0 {
		pol.Interval = 200 * time.Millisecond
	}
	f.file = filepath.Join(t.TempDir(), "audit.cosigned")
	pol.CosignedFile = f.file
	sub, err := witness.New(f.log, f.st, f.log.ver, eps, pol,
		witness.WithLogger(slog.New(slog.NewTextHandler(f.logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	f.sub = sub
	return f
}

func (f *fixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	go func() { defer close(f.done); f.sub.Run(ctx) }()
	t.Cleanup(f.stop)
}

func (f *fixture) stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
		f.cancel = nil
	}
}

func (f *fixture) metric(name string, labels ...string) float64 {
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.sub.Collector())
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// TestSubmitterCosignsEveryCheckpoint: two witnesses cosign as the log
// grows; cosignatures are stored and the cosigned file holds the newest
// checkpoint with both cosignatures; metrics say so.
func TestSubmitterCosignsEveryCheckpoint(t *testing.T) {
	f := newFixture(t, 2, witness.Policy{})
	f.log.add(t, 3)
	f.run(t)
	for i := 0; i < 5; i++ {
		cp := f.log.add(t, 10)
		f.sub.Wake()
		waitFor(t, "both witnesses at the new size", func() bool {
			return f.ws[0].Size("warden-audit") == cp.Size && f.ws[1].Size("warden-audit") == cp.Size
		})
	}
	waitFor(t, "the cosigned file at 53 with 2 cosignatures", func() bool {
		b, _ := os.ReadFile(f.file)
		c, err := witness.OpenCosigned(b, f.log.ver, f.sub.Verifiers())
		return err == nil && c.Size == 53 && len(c.Sigs) == 2
	})
	rows, _ := f.st.Cosignatures(context.Background(), "w1", 0, 100)
	if len(rows) < 2 || rows[0].Size != 53 {
		t.Fatalf("stored cosignatures of w1: %d rows, newest %d", len(rows), rows[0].Size)
	}
	for _, r := range rows {
		if _, err := witness.OpenCosigned(r.Note, f.log.ver, f.sub.Verifiers()); err != nil {
			t.Fatalf("stored row %d does not verify: %v", r.Size, err)
		}
	}
	if f.metric("warden_witness_up", "witness", "w2") != 1 || f.metric("warden_witness_cosigned_tree_size", "witness", "w1") != 53 ||
		f.metric("warden_witness_submissions_total", "witness", "w1", "result", "cosigned") < 2 {
		t.Fatal("metrics do not show the cosignatures")
	}
	// Nothing new: no more calls.
	f.stop()
	calls := f.ws[0].Calls
	f.sub.Flush(context.Background())
	if f.ws[0].Calls != calls {
		t.Fatal("a checkpoint already cosigned was submitted again")
	}
}

// TestSubmitterWitnessDown: an unreachable witness is counted, logged and
// retried; the other witness keeps cosigning; when it is back it catches
// up with the newest checkpoint.
func TestSubmitterWitnessDown(t *testing.T) {
	f := newFixture(t, 2, witness.Policy{})
	f.log.add(t, 5)
	f.ws[1].Fail(http.StatusServiceUnavailable)
	f.run(t)
	waitFor(t, "w1 cosigns, w2 counted unreachable", func() bool {
		return f.ws[0].Size("warden-audit") == 5 && f.metric("warden_witness_submissions_total", "witness", "w2", "result", "unreachable") >= 1
	})
	cp := f.log.add(t, 5)
	f.sub.Wake()
	waitFor(t, "w1 at 10", func() bool { return f.ws[0].Size("warden-audit") == cp.Size })
	if f.metric("warden_witness_up", "witness", "w2") != 0 || !strings.Contains(f.logs.String(), "unreachable") {
		t.Fatalf("w2 down is not visible: up=%v logs:\n%s", f.metric("warden_witness_up", "witness", "w2"), f.logs)
	}
	f.ws[1].Fail(0)
	waitFor(t, "w2 back and at 10", func() bool { return f.ws[1].Size("warden-audit") == 10 })
	waitFor(t, "w2 up", func() bool { return f.metric("warden_witness_up", "witness", "w2") == 1 })
}

// TestSubmitterRefusedAfterRollback: the log is rolled back behind what
// the witness cosigned: every submission is refused, counted and logged
// at error level; nothing is stored for the rolled-back checkpoints.
func TestSubmitterRefusedAfterRollback(t *testing.T) {
	f := newFixture(t, 1, witness.Policy{})
	f.log.add(t, 20)
	f.run(t)
	waitFor(t, "cosigned at 20", func() bool { return f.ws[0].Size("warden-audit") == 20 })
	f.stop()
	rows := f.st.count()

	// A new submitter (a restarted gateway) on a rolled-back log whose
	// store lost the cosignatures too.
	f.log.truncate(t, 12)
	f.log.add(t, 3) // size 15 < 20
	f2 := *f
	f2.st = &memStore{}
	ev := &evidenceRec{}
	sub, err := witness.New(f.log, f2.st, f.log.ver, []witness.Endpoint{{URL: f.ws[0].URL, Key: f.ws[0].Key}},
		witness.Policy{Poll: 20 * time.Millisecond, Interval: 100 * time.Millisecond, CosignedFile: "-"},
		witness.WithLogger(slog.New(slog.NewTextHandler(f.logs, nil))), witness.WithEvidence(ev))
	if err != nil {
		t.Fatal(err)
	}
	f2.sub, f2.cancel = sub, nil
	f2.run(t)
	waitFor(t, "refused three times", func() bool {
		return f2.metric("warden_witness_submissions_total", "witness", "w1", "result", "refused") >= 3
	})
	// One witness.refused entry for the streak, not one per refusal.
	waitFor(t, "the refusal recorded", func() bool { return len(ev.entries()) == 1 })
	if e := ev.entries()[0]; e.kind != audit.KindWitnessRefused || e.details["witness"] != "w1" || e.details["result"] != witness.ResultRefused ||
		e.details["size"] != int64(15) || !strings.Contains(e.details["reason"].(string), "20") {
		t.Fatalf("evidence: %+v", e)
	}
	if !strings.Contains(f.logs.String(), "THE WITNESS REFUSED") || f2.st.count() != 0 || f.st.count() != rows {
		t.Fatalf("refusal not visible or something stored:\n%s", f.logs)
	}
	if f.ws[0].Size("warden-audit") != 20 {
		t.Fatal("the witness moved")
	}
}

// TestSubmitterIntervalPolicy: with submit: interval, a new checkpoint
// is not submitted on wake-up, only at the next interval.
func TestSubmitterIntervalPolicy(t *testing.T) {
	f := newFixture(t, 1, witness.Policy{Submit: witness.SubmitInterval, Interval: time.Hour})
	f.log.add(t, 4)
	f.run(t)
	waitFor(t, "the first round", func() bool { return f.ws[0].Size("warden-audit") == 4 })
	f.log.add(t, 4)
	f.sub.Wake()
	time.Sleep(200 * time.Millisecond)
	if got := f.ws[0].Size("warden-audit"); got != 4 {
		t.Fatalf("submitted on wake-up under submit: interval (witness at %d)", got)
	}
	res := f.sub.Flush(context.Background())
	if res[0].Outcome != witness.ResultCosigned || f.ws[0].Size("warden-audit") != 8 {
		t.Fatalf("flush: %+v", res)
	}
}

// TestSubmitterReplicasShareStore: a second submitter on the same store
// (another replica) does not submit what the first already had cosigned.
func TestSubmitterReplicasShareStore(t *testing.T) {
	f := newFixture(t, 1, witness.Policy{})
	f.log.add(t, 7)
	if r := f.sub.Flush(context.Background()); r[0].Outcome != witness.ResultCosigned {
		t.Fatalf("first: %+v", r)
	}
	other, err := witness.New(f.log, f.st, f.log.ver, []witness.Endpoint{{URL: f.ws[0].URL, Key: f.ws[0].Key}}, witness.Policy{CosignedFile: "-"})
	if err != nil {
		t.Fatal(err)
	}
	calls := f.ws[0].Calls
	if r := other.Flush(context.Background()); r[0].Outcome != "" || f.ws[0].Calls != calls {
		t.Fatalf("the second replica submitted again: %+v", r)
	}
	// A newer checkpoint: the second replica learns the witness's size
	// from the store and sends a proof straight away (no 409 round trip).
	f.log.add(t, 3)
	if r := other.Flush(context.Background()); r[0].Outcome != witness.ResultCosigned || f.ws[0].Calls != calls+1 {
		t.Fatalf("second replica, new checkpoint: %+v, %d calls", r, f.ws[0].Calls-calls)
	}
}

// TestSubmitterStoreFailure: a cosignature that cannot be stored is
// logged; the submitter goes on.
func TestSubmitterStoreFailure(t *testing.T) {
	f := newFixture(t, 1, witness.Policy{})
	f.st.fail = errors.New("disk full")
	f.log.add(t, 2)
	if r := f.sub.Flush(context.Background()); r[0].Outcome != witness.ResultCosigned {
		t.Fatalf("%+v", r)
	}
	if !strings.Contains(f.logs.String(), "could not store the cosignature") {
		t.Fatalf("no log line:\n%s", f.logs)
	}
}

// TestCheck is the start-up check: each case prepares a log and witness
// state, then Check must pass or return a *Divergence naming the cause.
func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, f *fixture)
		want    string // "" = passes
	}{
		{
			name:    "fresh log, witness never saw it",
			prepare: func(t *testing.T, f *fixture) { f.log.add(t, 3) },
		},
		{
			name: "clean restart",
			prepare: func(t *testing.T, f *fixture) {
				f.log.add(t, 10)
				f.sub.Flush(context.Background())
			},
		},
		{
			name: "store and cosigned file rolled back, the witness remembers",
			prepare: func(t *testing.T, f *fixture) {
				f.log.add(t, 10)
				f.sub.Flush(context.Background())
				f.log.add(t, 10)
				f.sub.Flush(context.Background())
				f.log.truncate(t, 10)
				f.st.rows = f.st.rows[:1]
				os.Remove(f.file)
			},
			want: "witness w1 has cosigned a tree of size 20 for this log, but the store has only 10 entries",
		},
		{
			name: "history rewritten after it was witnessed",
			prepare: func(t *testing.T, f *fixture) {
				f.log.add(t, 10)
				f.sub.Flush(context.Background())
				f.log.rewrite(t, 4)
				f.log.add(t, 5)
				f.st.rows = nil
				os.Remove(f.file)
			},
			want: "witness w1 refused the store's checkpoint of size 15 as inconsistent with the tree of size 10",
		},
		{
			name: "tail truncated, the store keeps its cosignatures",
			prepare: func(t *testing.T, f *fixture) {
				f.log.add(t, 10)
				f.sub.Flush(context.Background())
				f.log.truncate(t, 8)
				f.ws[0].Fail(http.StatusServiceUnavailable) // the store alone must catch it
			},
			want: "store has 8 entries but checkpoint 10 was cosigned by w1",
		},
		{
			name: "rewritten with the cosigned file left in place",
			prepare: func(t *testing.T, f *fixture) {
				f.log.add(t, 10)
				f.sub.Flush(context.Background())
				f.log.rewrite(t, 2)
				f.st.rows = nil
				f.ws[0].Close()
			},
			want: "the store's tree of size 10 is not the one cosigned by w1",
		},
		{
			name: "checkpoints removed from the store, entries kept",
			prepare: func(t *testing.T, f *fixture) {
				f.log.add(t, 10)
				f.sub.Flush(context.Background())
				f.log.add(t, 5)
				f.sub.Flush(context.Background())
				// The newest checkpoint row is gone: the log's newest
				// checkpoint is 10 again, but all 15 entries are there.
				f.log.mu.Lock()
				f.log.n = 10
				f.log.signLocked(t)
				f.log.n = 15
				f.log.mu.Unlock()
				f.st.rows = nil
				os.Remove(f.file)
			},
			want: "witness w1 has cosigned a tree of size 15 for this log, but the store's newest checkpoint has size 10: checkpoints were removed",
		},
		{
			name: "witness unreachable: only a warning",
			prepare: func(t *testing.T, f *fixture) {
				f.log.add(t, 10)
				f.ws[0].Close()
			},
		},
		{
			name: "witness does not know the log: only a warning",
			prepare: func(t *testing.T, f *fixture) {
				f.log.add(t, 10)
				f.ws[0].Fail(http.StatusNotFound)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1, witness.Policy{})
			tc.prepare(t, f)
			// A restarted gateway: a new submitter on the same store.
			sub, err := witness.New(f.log, f.st, f.log.ver, []witness.Endpoint{{URL: f.ws[0].URL, Key: f.ws[0].Key, Timeout: time.Second}},
				witness.Policy{CosignedFile: f.file}, witness.WithLogger(slog.New(slog.NewTextHandler(f.logs, nil))))
			if err != nil {
				t.Fatal(err)
			}
			err = sub.Check(context.Background(), f.log)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var d *witness.Divergence
			if !errors.As(err, &d) || !strings.Contains(d.Msg, tc.want) {
				t.Fatalf("Check = %v, want a divergence containing %q", err, tc.want)
			}
		})
	}
}

// TestSubmitterWaiter: a Source that can wait for checkpoints wakes the
// submitter on each one; no poll is needed (the poll is an hour here).
func TestSubmitterWaiter(t *testing.T) {
	l := newTestLog(t, "warden-audit")
	w := witnesstest.New(t, "w1", l.vkey)
	sub, err := witness.New(waitingLog{l}, &memStore{}, l.ver, []witness.Endpoint{{URL: w.URL, Key: w.Key}},
		witness.Policy{Poll: time.Hour, CosignedFile: "-"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sub.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := 0; i < 3; i++ {
		cp := l.add(t, 4)
		waitFor(t, "the witness at the new size", func() bool { return w.Size("warden-audit") == cp.Size })
	}
}

// evidenceRec keeps what the submitter records as evidence.
type evidenceRec struct {
	mu  sync.Mutex
	got []evidenceEntry
}

type evidenceEntry struct {
	kind    string
	details map[string]any
}

func (r *evidenceRec) Record(_ context.Context, kind string, details map[string]any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, evidenceEntry{kind, details})
	return nil
}

func (r *evidenceRec) entries() []evidenceEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]evidenceEntry(nil), r.got...)
}

// cancelAfterAnswer cancels a context once a witness's answer has been
// read: the shutdown canceling Run between the witness cosigning and
// the cosignature being stored.
type cancelAfterAnswer struct {
	cancel context.CancelFunc
}

func (c cancelAfterAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = &cancelOnEOF{ReadCloser: resp.Body, cancel: c.cancel}
	}
	return resp, err
}

type cancelOnEOF struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cancel()
	}
	return n, err
}

// ctxStore is memStore refusing writes under an ended context, as
// PostgreSQL does.
type ctxStore struct{ *memStore }

func (s ctxStore) PutCosignature(ctx context.Context, c witness.Cosignature) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.memStore.PutCosignature(ctx, c)
}

// TestCosignatureKeptWhenRoundCanceled: a cosignature the witness gave
// is stored even when the round's context ends right after the answer
// (shutdown cancels Run just after the final checkpoint is signed;
// TestWitnessPostgresReplicas lost the final cosignature that way, and
// the flush did not submit it again since the witness had it).
func TestCosignatureKeptWhenRoundCanceled(t *testing.T) {
	log := newTestLog(t, "warden-audit")
	w := witnesstest.New(t, "w1", log.vkey)
	st := ctxStore{&memStore{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := witness.New(log, st, log.ver, []witness.Endpoint{{URL: w.URL, Key: w.Key, Timeout: 2 * time.Second}},
		witness.Policy{CosignedFile: "-", Poll: 20 * time.Millisecond, Interval: 200 * time.Millisecond},
		witness.WithLogger(slog.New(slog.DiscardHandler)), witness.WithHTTPClient(&http.Client{Transport: cancelAfterAnswer{cancel}}))
	if err != nil {
		t.Fatal(err)
	}
	cp := log.add(t, 5)
	res := sub.Flush(ctx)
	if w.Size("warden-audit") != cp.Size || res[0].Outcome != witness.ResultCosigned {
		t.Fatalf("flush: %+v, witness at %d", res[0], w.Size("warden-audit"))
	}
	if rows, _ := st.Cosignatures(context.Background(), "w1", 0, 1); len(rows) != 1 || rows[0].Size != cp.Size {
		t.Fatalf("stored cosignatures %+v, want the one of size %d the witness gave", rows, cp.Size)
	}
}
