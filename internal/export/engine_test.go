package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wardenhq/warden/internal/audit"
)

// recordSink keeps what it accepted, in order; it can fail, settle part
// of a batch, reject chosen events or block.
type recordSink struct {
	mu       sync.Mutex
	got      []Event
	sends    int
	failRate float64            // probability that a Send fails after settling a random prefix
	reject   func(Event) string // non-empty: refuse the event for good with this reason
	block    chan struct{}      // when set, Send waits for it to be closed (or ctx)
	rnd      *rand.Rand
}

func (s *recordSink) Send(ctx context.Context, batch []Event) (Ack, error) {
	s.mu.Lock()
	block := s.block
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return Ack{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sends++
	n := len(batch)
	var err error
	if s.failRate > 0 && s.rnd.Float64() < s.failRate {
		n = s.rnd.IntN(len(batch) + 1)
		if n == len(batch) {
			n = 0
		}
		err = errors.New("recordSink: injected failure")
	}
	var ack Ack
	for i, ev := range batch[:n] {
		if s.reject != nil {
			if why := s.reject(ev); why != "" {
				ack.Rejected = append(ack.Rejected, Rejection{Index: i, Reason: why})
				continue
			}
		}
		s.got = append(s.got, ev)
	}
	ack.Settled = n
	return ack, err
}

func (s *recordSink) Close() error { return nil }

func (s *recordSink) events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.got...)
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type harness struct {
	t    *testing.T
	log  *memLog
	dir  string
	reg  *prometheus.Registry
	x    *Exporter
	stop context.CancelFunc
	done chan error
}

func target(dir, name string, s Sink) Target {
	return Target{Name: name, Sink: s, Cursor: NewFileCursor(filepath.Join(dir, name+".cursor")),
		DeadLetter: filepath.Join(dir, name+".dead.jsonl"), BatchMax: 50, BatchWait: 5 * time.Millisecond,
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond}
}

func startExporter(t *testing.T, l *memLog, targets ...Target) *harness {
	t.Helper()
	h := &harness{t: t, log: l, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	x, err := New(l, Options{Origin: "warden-audit", ProductVersion: "test", Logger: quietLogger(), Registerer: h.reg, StatusInterval: 10 * time.Millisecond}, targets...)
	if err != nil {
		t.Fatal(err)
	}
	h.x = x
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() { h.done <- x.Run(ctx) }()
	t.Cleanup(h.shutdown)
	return h
}

func (h *harness) shutdown() {
	if h.stop == nil {
		return
	}
	h.stop()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.stop = nil
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// positions returns the event positions: seq for entries, "cN" for
// checkpoints.
func positions(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		if e.IsCheckpoint() {
			out[i] = fmt.Sprintf("c%d", e.Seq)
		} else {
			out[i] = fmt.Sprint(e.Seq)
		}
	}
	return out
}

// dedupe drops re-sent events (same UID as one seen before).
func dedupe(evs []Event) []Event {
	seen := map[string]bool{}
	var out []Event
	for _, e := range evs {
		if !seen[e.UID] {
			seen[e.UID] = true
			out = append(out, e)
		}
	}
	return out
}

// checkComplete asserts evs hold every entry [0, n) and every checkpoint
// in log order.
func checkComplete(t *testing.T, l *memLog, evs []Event) {
	t.Helper()
	l.mu.Lock()
	want := make([]string, len(l.items))
	for i, it := range l.items {
		if it.Checkpoint != nil {
			want[i] = fmt.Sprintf("c%d", it.Checkpoint.Size)
		} else {
			want[i] = fmt.Sprint(it.Entry.Seq)
		}
	}
	l.mu.Unlock()
	got := positions(evs)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("delivered %d events, want %d in log order\n got: %.300v\nwant: %.300v", len(got), len(want), got, want)
	}
}

func streamOf(evs []Event) []byte {
	var b bytes.Buffer
	for _, e := range evs {
		b.Write(e.JSON)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestExportDeliversEverythingInOrder(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 300, 37)
	dir := t.TempDir()
	s := &recordSink{}
	h := startExporter(t, l, target(dir, "rec", s))
	waitFor(t, "300 entries", func() bool { return len(s.events()) == 300+9 })
	// More entries after the exporter caught up: it follows.
	l.fill(t, 100, 50)
	waitFor(t, "400 entries", func() bool { return len(s.events()) == 400+9+2 })
	checkComplete(t, l, s.events())
	_, v := testKeys(t)
	rep, err := VerifyStream(bytes.NewReader(streamOf(s.events())), v)
	if err != nil {
		t.Fatalf("VerifyStream: %v", err)
	}
	if rep.Bound != 400 || rep.UnboundTail != 0 || rep.Duplicates != 0 || rep.Events != 400 {
		t.Fatalf("report %+v", rep)
	}
	h.shutdown()
	next, _ := NewFileCursor(filepath.Join(dir, "rec.cursor")).Load(context.Background())
	if next != 400 {
		t.Fatalf("cursor %d, want 400", next)
	}
	if got := testutil.ToFloat64(h.x.metrics.delivered.WithLabelValues("rec")); got != 411 {
		t.Fatalf("delivered counter %v", got)
	}
}

// TestExportFlakySink: a sink that fails half its sends after settling a
// random prefix still receives everything, once, in order.
func TestExportFlakySink(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 500, 64)
	s := &recordSink{failRate: 0.5, rnd: rand.New(rand.NewPCG(1, 2))}
	h := startExporter(t, l, target(t.TempDir(), "flaky", s))
	waitFor(t, "all events", func() bool { return len(s.events()) >= 500+8 && h.x.Status()[0].Cursor == 500 })
	checkComplete(t, l, s.events())
	if f := testutil.ToFloat64(h.x.metrics.failed.WithLabelValues("flaky")); f == 0 {
		t.Fatal("no failure was counted")
	}
	st := h.x.Status()[0]
	if st.Failed == 0 || st.LastError == "" || st.Cursor != 500 {
		t.Fatalf("status %+v", st)
	}
}

// TestExportDeadLetter: events the receiver refuses for good go to the
// dead-letter file with the reason; export continues past them.
func TestExportDeadLetter(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 100, 25)
	dir := t.TempDir()
	s := &recordSink{reject: func(e Event) string {
		if !e.IsCheckpoint() && e.Seq%10 == 3 {
			return "HEC: invalid event (code 6)"
		}
		return ""
	}}
	h := startExporter(t, l, target(dir, "hec", s))
	waitFor(t, "the rest", func() bool { return len(s.events()) == 100-10+4 })
	// The sink holds a batch's events as soon as Send returns; the dead
	// letters of that batch are written just after, and counted once
	// written.
	waitFor(t, "the last dead letter", func() bool {
		return testutil.ToFloat64(h.x.metrics.deadLettered.WithLabelValues("hec")) >= 10
	})
	b, err := os.ReadFile(filepath.Join(dir, "hec.dead.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d dead letters, want 10", len(lines))
	}
	for i, line := range lines {
		var dl deadLetterLine
		if err := json.Unmarshal([]byte(line), &dl); err != nil {
			t.Fatal(err)
		}
		if dl.Seq != int64(i*10+3) || dl.Reason != "HEC: invalid event (code 6)" || dl.Sink != "hec" || dl.UID != EntryUID("warden-audit", dl.Seq) || !json.Valid(dl.Event) {
			t.Fatalf("dead letter %d: %+v", i, dl)
		}
	}
	if n := testutil.ToFloat64(h.x.metrics.deadLettered.WithLabelValues("hec")); n != 10 {
		t.Fatalf("dead-lettered counter %v", n)
	}
}

// TestExportDeadLetterUnwritable: when the dead-letter file cannot be
// written, the cursor does not move past the refused event.
func TestExportDeadLetterUnwritable(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 20, 10)
	dir := t.TempDir()
	tg := target(dir, "x", &recordSink{reject: func(e Event) string {
		if e.Seq == 5 && !e.IsCheckpoint() {
			return "too large"
		}
		return ""
	}})
	tg.DeadLetter = dir // a directory: cannot be opened for writing
	h := startExporter(t, l, tg)
	waitFor(t, "an error", func() bool { return h.x.Status()[0].LastError != "" })
	time.Sleep(50 * time.Millisecond)
	h.shutdown()
	next, _ := NewFileCursor(filepath.Join(dir, "x.cursor")).Load(context.Background())
	if next > 5 {
		t.Fatalf("cursor moved to %d past the undeliverable entry 5", next)
	}
}

// TestExportResumesFromCursor: a stopped exporter resumes where its
// cursor is; the stream across both runs verifies (re-sent events are
// allowed and checked).
func TestExportResumesFromCursor(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 200, 30)
	dir := t.TempDir()
	s := &recordSink{}
	h := startExporter(t, l, target(dir, "r", s))
	waitFor(t, "some events", func() bool { return len(s.events()) > 50 })
	h.shutdown()
	first := s.events()
	l.fill(t, 100, 40)
	s2 := &recordSink{}
	startExporter(t, l, target(dir, "r", s2))
	waitFor(t, "the rest", func() bool {
		ev := s2.events()
		return len(ev) > 0 && ev[len(ev)-1].IsCheckpoint() && ev[len(ev)-1].Seq == 300
	})
	all := append(first, s2.events()...)
	checkComplete(t, l, dedupe(all))
	_, v := testKeys(t)
	rep, err := VerifyStream(bytes.NewReader(streamOf(all)), v)
	if err != nil {
		t.Fatalf("VerifyStream across a restart: %v", err)
	}
	if rep.Bound != 300 {
		t.Fatalf("report %+v", rep)
	}
}

// TestExportFollowFailure: an error from the log restarts delivery from
// the cursor, with no gap.
func TestExportFollowFailure(t *testing.T) {
	l := newMemLog(t)
	l.failAt = 77
	l.fill(t, 150, 20)
	s := &recordSink{}
	h := startExporter(t, l, target(t.TempDir(), "f", s))
	waitFor(t, "everything", func() bool { return len(dedupe(s.events())) == 150+8 })
	checkComplete(t, l, dedupe(s.events()))
	if h.x.Status()[0].LastError == "" || l.follows < 2 {
		t.Fatalf("the failure was not seen: %+v, follows %d", h.x.Status()[0], l.follows)
	}
}

// TestExportFilter: the filter selects entries; checkpoints always pass.
func TestExportFilter(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 100, 50)
	f, err := CompileFilter(`entry.kind == "request.denied" || (has(entry.decision) && entry.decision.rule == "nope")`)
	if err != nil {
		t.Fatal(err)
	}
	tg := target(t.TempDir(), "denied", &recordSink{})
	tg.Filter = f
	s := tg.Sink.(*recordSink)
	h := startExporter(t, l, tg)
	waitFor(t, "the denied entries", func() bool { return len(s.events()) == 25+2 })
	for _, e := range s.events() {
		if !e.IsCheckpoint() && e.Kind != audit.KindRequestDenied {
			t.Fatalf("filter let %s through", e.Kind)
		}
	}
	waitFor(t, "the cursor", func() bool { return h.x.Status()[0].Cursor == 100 })
	if st := h.x.Status()[0]; st.Filtered != 75 {
		t.Fatalf("status %+v", st)
	}
}

// TestExportSlowSinkDoesNotDelayOthers: one sink blocked, the other gets
// everything; the blocked one shows lag.
func TestExportSlowSinkDoesNotDelayOthers(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 200, 100)
	dir := t.TempDir()
	slow := &recordSink{block: make(chan struct{})}
	fast := &recordSink{}
	h := startExporter(t, l, target(dir, "slow", slow), target(dir, "fast", fast))
	waitFor(t, "the fast sink", func() bool { return len(fast.events()) == 202 })
	waitFor(t, "lag", func() bool {
		st := h.x.Status()[0]
		return st.LagEntries == 200 && st.LagSeconds > 0
	})
	if v := testutil.ToFloat64(h.x.metrics.lagEntries.WithLabelValues("slow")); v != 200 {
		t.Fatalf("lag gauge %v", v)
	}
	close(slow.block)
	waitFor(t, "the slow sink", func() bool { return len(slow.events()) == 202 })
	waitFor(t, "no lag", func() bool { st := h.x.Status()[0]; return st.LagEntries == 0 && st.LagSeconds == 0 })
}

func TestNewRejectsBadTargets(t *testing.T) {
	l := newMemLog(t)
	dir := t.TempDir()
	ok := target(dir, "a", &recordSink{})
	for name, tc := range map[string]struct {
		opts Options
		ts   []Target
	}{
		"no origin":  {Options{}, []Target{ok}},
		"no name":    {Options{Origin: "o"}, []Target{{Sink: &recordSink{}}}},
		"duplicate":  {Options{Origin: "o"}, []Target{ok, ok}},
		"no cursor":  {Options{Origin: "o"}, []Target{{Name: "b", Sink: &recordSink{}, DeadLetter: "x"}}},
		"no deadlet": {Options{Origin: "o"}, []Target{{Name: "b", Sink: &recordSink{}, Cursor: NewFileCursor("c")}}},
	} {
		if _, err := New(l, tc.opts, tc.ts...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFilterCompile(t *testing.T) {
	for _, bad := range []string{``, `entry.kind`, `1 +`, `entry.kind == 3 &&`} {
		if _, err := CompileFilter(bad); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
	f, err := CompileFilter(`entry.decision.action == "deny"`)
	if err != nil {
		t.Fatal(err)
	}
	// A missing key is an error: the entry passes (never silently dropped).
	ok, err := f.Match(&audit.Entry{V: 1, Kind: "gateway.started", Time: t0, ID: "x"}, nil)
	if !ok || err == nil {
		t.Fatalf("Match on a missing key = %v, %v; want true with an error", ok, err)
	}
}

func TestFileCursor(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "sub", "c.cursor")
	c := NewFileCursor(p)
	if n, err := c.Load(ctx); n != 0 || err != nil {
		t.Fatalf("fresh cursor: %d %v", n, err)
	}
	for _, n := range []int64{1, 1000, 1 << 40} {
		if err := c.Save(ctx, n); err != nil {
			t.Fatal(err)
		}
		if got, err := NewFileCursor(p).Load(ctx); got != n || err != nil {
			t.Fatalf("load %d: %d %v", n, got, err)
		}
	}
	for _, bad := range []string{"", "{", `{"next":-1}`, `{"next":"x"}`} {
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := c.Load(ctx); err == nil {
			t.Errorf("corrupt cursor %q loaded", bad)
		}
	}
}

// savesCursor counts the saves of the cursor it wraps.
type savesCursor struct {
	Cursor
	mu    sync.Mutex
	saves []int64
}

func (c *savesCursor) Save(ctx context.Context, next int64) error {
	c.mu.Lock()
	c.saves = append(c.saves, next)
	c.mu.Unlock()
	return c.Cursor.Save(ctx, next)
}

func (c *savesCursor) list() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.saves)
}

// TestCursorInterval: the cursor is saved at most once per
// CursorInterval while batches flow, after every batch when it is
// negative, and always when delivery stops; a new exporter resumes from
// the saved position and delivers everything after it (a re-send of what
// came after the last save is allowed, a gap is not).
func TestCursorInterval(t *testing.T) {
	for _, c := range []struct {
		name      string
		interval  time.Duration
		wantSaves func(saves, batches, secs int) bool
	}{
		// Not one per batch: a batch holding only the checkpoint at the
		// cursor does not move it.
		{"every batch", -1, func(saves, batches, secs int) bool { return saves >= 30 && saves <= batches }},
		{"an hour", time.Hour, func(saves, batches, secs int) bool { return saves == 1 }}, // the final save only
		{"default", 0, func(saves, batches, secs int) bool { return saves >= 1 && saves <= secs+2 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newMemLog(t)
			dir := t.TempDir()
			sink := &recordSink{}
			tg := target(dir, "mem", sink)
			tg.BatchMax, tg.CursorInterval = 10, c.interval
			cur := &savesCursor{Cursor: tg.Cursor}
			tg.Cursor = cur
			start := time.Now()
			h := startExporter(t, l, tg)
			for range 30 { // 30 × 20 entries and a checkpoint, over time
				l.fill(t, 20, 20)
				time.Sleep(50 * time.Millisecond)
			}
			n, _ := l.Size(context.Background())
			waitFor(t, "delivery", func() bool { return h.x.Status()[0].Cursor == n })
			stored := func() int64 {
				saved, _ := NewFileCursor(filepath.Join(dir, "mem.cursor")).Load(context.Background())
				return saved
			}
			switch {
			case c.interval < 0:
				// Saved as each batch settles, so the stored position
				// is the delivered one before the exporter stops.
				if saved := stored(); saved != n {
					t.Fatalf("stored cursor %d while delivering, want %d", saved, n)
				}
			case c.interval == 0:
				// Once nothing more comes, the last position is saved
				// within the interval, before the exporter stops.
				waitFor(t, "the cursor saved while idle", func() bool { return stored() == n })
			}
			h.shutdown()
			secs := int(time.Since(start) / time.Second)
			sink.mu.Lock()
			batches := sink.sends
			sink.mu.Unlock()
			saves := cur.list()
			if len(saves) == 0 || saves[len(saves)-1] != n || !slices.IsSorted(saves) {
				t.Fatalf("saves %v, want ascending and ending at %d", saves, n)
			}
			if !c.wantSaves(len(saves), batches, secs) {
				t.Fatalf("%d saves for %d batches in %d s", len(saves), batches, secs)
			}
			if saved, _ := NewFileCursor(filepath.Join(dir, "mem.cursor")).Load(context.Background()); saved != n {
				t.Fatalf("stored cursor %d after the exporter stopped, want %d", saved, n)
			}
			// A crash before the final save leaves the cursor where it
			// was last saved (here: never, so 0); the next exporter
			// sends those events again, and the union is complete and
			// verifies.
			before := saves[:len(saves)-1]
			crashed := int64(0)
			if len(before) > 0 {
				crashed = before[len(before)-1]
			}
			if err := NewFileCursor(filepath.Join(dir, "mem.cursor")).Save(context.Background(), crashed); err != nil {
				t.Fatal(err)
			}
			s2 := &recordSink{}
			tg2 := target(dir, "mem", s2)
			h2 := startExporter(t, l, tg2)
			waitFor(t, "re-delivery", func() bool { return h2.x.Status()[0].Cursor == n })
			h2.shutdown()
			all := append(sink.events(), s2.events()...)
			checkComplete(t, l, dedupe(all))
			_, v := testKeys(t)
			if _, err := VerifyStream(bytes.NewReader(streamOf(all)), v); err != nil {
				t.Fatalf("VerifyStream across a crash: %v", err)
			}
		})
	}
}
