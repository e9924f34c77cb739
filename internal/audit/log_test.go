package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// env is a data dir with keys, a SQLite store and an open Log.
type env struct {
	dir    string
	cfg    audit.Config
	signer note.Signer
	ver    note.Verifier
	st     *sqlite.Store
	log    *audit.Log
}

func newEnv(t testing.TB, mod func(*audit.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	if mod != nil {
		mod(&cfg)
	}
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "test-audit")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, cfg: cfg, signer: s, ver: v}
	if err := e.open(t); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.close(t) })
	return e
}

func (e *env) open(t testing.TB) error {
	t.Helper()
	st, err := sqlite.Open(context.Background(), e.cfg.Path)
	if err != nil {
		return err
	}
	l, err := audit.Open(context.Background(), st, e.cfg, e.signer, e.ver, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		st.Close()
		return err
	}
	e.st, e.log = st, l
	return nil
}

func (e *env) close(t testing.TB) {
	t.Helper()
	if e.log != nil {
		if err := e.log.Close(context.Background()); err != nil {
			t.Errorf("Log.Close: %v", err)
		}
		e.log = nil
	}
	if e.st != nil {
		e.st.Close()
		e.st = nil
	}
}

func (e *env) reopen(t testing.TB) error {
	e.close(t)
	return e.open(t)
}

// request is a request entry for tests. It is a terminal entry, not an
// admission: a reopened log would otherwise close the admissions with
// request.abandoned entries and shift every size the tests expect
// (admission returns one).
func request(i int) *audit.Entry {
	return &audit.Entry{
		Kind:      audit.KindRequestCompleted,
		RequestID: fmt.Sprintf("req-%d", i),
		Principal: &identity.Principal{Issuer: "https://idp.example", Subject: "alice", Kind: "user"},
		Route:     "chat",
		Method:    "POST",
		Path:      "/v1/chat/completions",
		Model:     "llama-3",
		Params:    map[string]any{"temperature": 0.2, "n": i},
		Decision:  &audit.Decision{Action: "allow", Rule: "default", PolicyVersion: "abc"},
	}
}

func appendN(t testing.TB, l *audit.Log, n int) []audit.Ref {
	t.Helper()
	refs := make([]audit.Ref, n)
	for i := range refs {
		r, err := l.Append(context.Background(), request(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		refs[i] = r
	}
	return refs
}

func TestAppendCloseReopen(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	refs := appendN(t, e.log, 10)
	// Seq 0 is gateway.started.
	for i, r := range refs {
		if r.Seq != int64(i+1) || r.ID == "" {
			t.Fatalf("ref %d = %+v, want seq %d", i, r, i+1)
		}
	}
	got, data, err := e.log.Entry(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got.RequestID != "req-2" || got.Seq != 3 || got.V != 1 || got.Time.IsZero() {
		t.Fatalf("entry 3 = %+v", got)
	}
	if again, _ := audit.Marshal(got); string(again) != string(data) {
		t.Fatalf("entry bytes do not round-trip")
	}
	if err := e.reopen(t); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	rep, err := e.log.StartReport()
	if err != nil || rep.Size != 12 || rep.UnsignedTail != 0 {
		t.Fatalf("start report = %+v, %v; want 12 entries (start, 10, stop), none unsigned", rep, err)
	}
	first, _, _ := e.log.Entry(ctx, 0)
	stop, _, _ := e.log.Entry(ctx, 11)
	start2, _, _ := e.log.Entry(ctx, 12)
	if first.Kind != audit.KindGatewayStarted || stop.Kind != audit.KindGatewayStopped || start2.Kind != audit.KindGatewayStarted {
		t.Fatalf("lifecycle entries: %s, %s, %s", first.Kind, stop.Kind, start2.Kind)
	}
	if e.log.Latest().Size != 13 {
		t.Fatalf("latest checkpoint size %d, want 13 (signed right after start)", e.log.Latest().Size)
	}
}

func TestGroupCommit(t *testing.T) {
	e := newEnv(t, nil)
	before := e.log.Stats()
	const writers, each = 64, 8
	var mu sync.Mutex
	var refs []audit.Ref
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := e.log.Append(context.Background(), request(i))
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				refs = append(refs, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	st := e.log.Stats()
	appends, batches := st.Appends-before.Appends, st.Batches-before.Batches
	if appends != writers*each {
		t.Fatalf("appends = %d, want %d", appends, writers*each)
	}
	if batches >= appends {
		t.Fatalf("%d appends took %d transactions; group commit should share them", appends, batches)
	}
	t.Logf("%d appends in %d transactions", appends, batches)
	sort.Slice(refs, func(i, j int) bool { return refs[i].Seq < refs[j].Seq })
	ids := map[string]bool{}
	for i, r := range refs {
		if r.Seq != int64(i+1) {
			t.Fatalf("refs not gap-free: position %d has seq %d", i, r.Seq)
		}
		if ids[r.ID] {
			t.Fatalf("duplicate id %s", r.ID)
		}
		ids[r.ID] = true
	}
	if err := e.reopen(t); err != nil {
		t.Fatalf("reopen after concurrent appends: %v", err)
	}
}

func TestProofs(t *testing.T) {
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 7 })
	ctx := context.Background()
	appendN(t, e.log, 40)
	cps, err := e.log.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) < 5 {
		t.Fatalf("%d checkpoints, want one every 7 entries", len(cps))
	}
	// Every batch is signed (Latest); the store keeps one every 7.
	latest := e.log.Latest()
	if n, _ := e.st.Size(ctx); latest.Size != n || latest.Size < cps[len(cps)-1].Size {
		t.Fatalf("Latest %d, store size %d, last stored %d", latest.Size, n, cps[len(cps)-1].Size)
	}
	for seq := int64(0); seq < latest.Size; seq++ {
		p, err := e.log.ProveEntry(ctx, seq, latest.Size)
		if err != nil {
			t.Fatal(err)
		}
		_, data, err := e.log.Entry(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.CheckEntryProof(p, latest, seq, data); err != nil {
			t.Fatalf("entry %d: %v", seq, err)
		}
		bad := append([]byte(nil), data...)
		bad[len(bad)-2] ^= 1
		if err := audit.CheckEntryProof(p, latest, seq, bad); !errors.Is(err, audit.ErrProof) {
			t.Fatalf("entry %d: altered bytes: err = %v, want ErrProof", seq, err)
		}
	}
	for i := 1; i < len(cps); i++ {
		p, err := e.log.ProveConsistency(ctx, cps[i-1].Size, cps[i].Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.CheckConsistencyProof(p, cps[i-1], cps[i]); err != nil {
			t.Fatalf("checkpoints %d..%d: %v", cps[i-1].Size, cps[i].Size, err)
		}
		forged := cps[i-1]
		forged.Hash[0] ^= 1
		if err := audit.CheckConsistencyProof(p, forged, cps[i]); !errors.Is(err, audit.ErrProof) {
			t.Fatalf("forged older checkpoint: err = %v, want ErrProof", err)
		}
	}
	if _, err := e.log.ProveEntry(ctx, latest.Size, latest.Size); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("proof out of range: err = %v", err)
	}
}

func TestCheckpointInterval(t *testing.T) {
	e := newEnv(t, func(c *audit.Config) { c.CheckpointInterval = 20 * time.Millisecond })
	appendN(t, e.log, 3)
	deadline := time.Now().Add(30 * time.Second)
	for e.log.Latest().Size != 4 {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of size 4 after the interval; latest %d", e.log.Latest().Size)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStoreDown: when the store is unavailable, Append fails (the gateway
// answers 503) and the log recovers when a store is back.
func TestStoreDown(t *testing.T) {
	e := newEnv(t, nil)
	appendN(t, e.log, 2)
	e.st.Close()
	if _, err := e.log.Append(context.Background(), request(9)); err == nil {
		t.Fatal("Append on a closed store succeeded")
	}
	if _, err := e.log.Append(context.Background(), request(10)); err == nil {
		t.Fatal("second Append on a closed store succeeded")
	}
	if e.log.Stats().Failures < 2 {
		t.Fatalf("failures = %d", e.log.Stats().Failures)
	}
	e.log.Close(context.Background()) // cannot record the stop: store is down
	e.log, e.st = nil, nil
	if err := e.open(t); err != nil {
		t.Fatalf("reopen after store outage: %v", err)
	}
	if rep, _ := e.log.StartReport(); rep.Size != 3 {
		t.Fatalf("after outage: %d entries, want 3 (start + 2; failed appends left nothing)", rep.Size)
	}
}

func TestOpenUnwritable(t *testing.T) {
	dir := t.TempDir()
	if _, err := sqlite.Open(context.Background(), filepath.Join(dir, "no", "such", "\x00bad")); err == nil {
		t.Fatal("opening an impossible path succeeded")
	}
}

func (e *env) log0time() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// TestStoreUnwritable makes the SQLite files immutable under a running
// log (chattr +i, which stops writes even for root and even through open
// descriptors): Append fails, so the gateway answers 503; once writable
// again, appends succeed and the log still verifies.
func TestStoreUnwritable(t *testing.T) {
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Skip("chattr not available")
	}
	e := newEnv(t, nil)
	appendN(t, e.log, 3)
	files := []string{e.cfg.Path, e.cfg.Path + "-wal", sqlite.FramesPath(e.cfg.Path)}
	chattr := func(flag string) error {
		return exec.Command("chattr", append([]string{flag}, files...)...).Run()
	}
	if err := chattr("+i"); err != nil {
		t.Skipf("chattr +i not permitted here: %v", err)
	}
	defer chattr("-i")
	for i := 0; i < 3; i++ {
		if _, err := e.log.Append(context.Background(), request(100+i)); err == nil {
			t.Fatal("Append on an immutable store succeeded")
		}
	}
	if err := chattr("-i"); err != nil {
		t.Fatal(err)
	}
	// A failed write of the frame file fails the store closed: what
	// reached the file is unknown until it is reopened (and verified).
	if _, err := e.log.Append(context.Background(), request(200)); err == nil {
		t.Fatal("Append succeeded on the store whose write failed, before a reopen")
	}
	// Its Close cannot record gateway.stopped either.
	if err := e.log.Close(context.Background()); err == nil {
		t.Fatal("Close of a log whose store failed closed reported no error")
	}
	e.log = nil
	if err := e.reopen(t); err != nil {
		t.Fatalf("reopen after the outage: %v", err)
	}
	// The failed appends left nothing: the first four records are the
	// ones before the outage.
	recs, err := e.st.ReadRecords(context.Background(), 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs[1:] {
		en, err := audit.ParseEntry(r.Seq, r.Data)
		if err != nil || en.RequestID != fmt.Sprintf("req-%d", i) {
			t.Fatalf("record %d after the outage: %v, %v", r.Seq, en, err)
		}
	}
	appendN(t, e.log, 2)
}

// TestFlushPipeline: on SQLite the writer commits batches and a second
// goroutine flushes them (decision 026). Concurrent appends each get
// their own seq, every answered entry is in the store and covered by
// the signed head, one flush may cover several commits but never fewer
// than one, and the log verifies.
func TestFlushPipeline(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	before := e.log.Stats()
	const writers, each = 32, 40
	seqs := make(chan int64, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ref, err := e.log.Append(ctx, request(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				// Answered means durable and visible: the store shows it
				// and the newest head covers it.
				if n, err := e.st.Size(ctx); err != nil || n <= ref.Seq {
					t.Errorf("entry %d answered but the store's size is %d (%v)", ref.Seq, n, err)
				}
				if c := e.log.Latest(); c.Size <= ref.Seq {
					t.Errorf("entry %d answered but the newest head has size %d", ref.Seq, c.Size)
				}
				seqs <- ref.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d answered twice", s)
		}
		seen[s] = true
	}
	st := e.log.Stats()
	batches, flushes := st.Batches-before.Batches, st.Flushes-before.Flushes
	if flushes < 1 || flushes > batches {
		t.Fatalf("%d flushes for %d batches", flushes, batches)
	}
	t.Logf("%d appends in %d batches and %d flushes", writers*each, batches, flushes)
	if _, err := audit.Verify(ctx, e.st, e.ver, audit.VerifyOptions{SingleWriter: true}); err != nil {
		t.Fatal(err)
	}
}
