package audit_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// TestFollow: a follower reads what is committed from its start in order,
// then is woken by new commits (no poll: Poll is an hour), and ends with
// ctx's error.
func TestFollow(t *testing.T) {
	e := newEnv(t, nil)
	appendN(t, e.log, 10) // after gateway.started (seq 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan *audit.Entry, 100)
	errc := make(chan error, 1)
	go func() {
		for en, err := range e.log.Follow(ctx, 3, audit.FollowOptions{Poll: time.Hour}) {
			if err != nil {
				errc <- err
				return
			}
			got <- en
		}
	}()
	want := int64(3)
	next := func() *audit.Entry {
		t.Helper()
		select {
		case en := <-got:
			if en.Seq != want {
				t.Fatalf("follower got seq %d, want %d", en.Seq, want)
			}
			want++
			return en
		case err := <-errc:
			t.Fatalf("follower ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("follower stuck before seq %d", want)
		}
		return nil
	}
	for range 8 { // 3..10
		next()
	}
	for i := range 5 {
		if _, err := e.log.Append(ctx, request(100+i)); err != nil {
			t.Fatal(err)
		}
		if en := next(); en.RequestID != fmt.Sprintf("req-%d", 100+i) {
			t.Fatalf("woken with %s, want req-%d", en.RequestID, 100+i)
		}
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("follower ended with %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follower did not end when its context was cancelled")
	}
}

// TestFollowStore: a follower of the store alone (another process's
// view) finds new entries by polling; with Signed it stops at the store's
// latest checkpoint, while Log.Follow knows the head signed after every
// batch and yields everything acknowledged.
func TestFollowStore(t *testing.T) {
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 1 << 20; c.CheckpointInterval = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	appendN(t, e.log, 4)
	stored, err := e.st.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := func(seq func(func(*audit.Entry, error) bool)) (n int64) {
		for en, err := range seq {
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatal(err)
				}
				break
			}
			if en.Seq != n {
				t.Fatalf("follower yielded seq %d, want %d", en.Seq, n)
			}
			n++
		}
		return n
	}
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	n := count(audit.Follow(sctx, e.st, 0, audit.FollowOptions{Signed: true, Poll: 10 * time.Millisecond}))
	scancel()
	if n != stored.Size || n != 1 {
		t.Fatalf("signed store follower yielded %d entries, want %d (the store's checkpoint: gateway.started)", n, stored.Size)
	}
	sctx, scancel = context.WithTimeout(ctx, 300*time.Millisecond)
	n = count(e.log.Follow(sctx, 0, audit.FollowOptions{Signed: true, Poll: 10 * time.Millisecond}))
	scancel()
	if n != 5 {
		t.Fatalf("signed log follower yielded %d entries, want all 5 acknowledged", n)
	}
	for en, err := range audit.Follow(ctx, e.st, 0, audit.FollowOptions{Poll: 10 * time.Millisecond}) {
		if err != nil {
			t.Fatal(err)
		}
		if en.Seq == 4 {
			// Caught up with the store (gateway.started + 4): append
			// behind the follower's back; polling must find it.
			go e.log.Append(ctx, request(99))
		}
		if en.Seq == 5 {
			if en.RequestID != "req-99" {
				t.Fatalf("seq 5 is %s", en.RequestID)
			}
			break
		}
	}
	for _, err := range audit.Follow(ctx, e.st, -1, audit.FollowOptions{}) {
		if err == nil {
			t.Fatal("Follow from -1 yielded an entry")
		}
		break
	}
}

// TestWaitCheckpoint: an acknowledged entry is covered by a signed
// checkpoint at once (every batch is signed before it is acknowledged);
// with that switched off (to measure its cost), WaitCheckpoint waits for
// the next checkpoint and gives up with its context.
func TestWaitCheckpoint(t *testing.T) {
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 1 << 20; c.CheckpointInterval = time.Hour })
	ctx := context.Background()
	for i := range 5 {
		ref, err := e.log.Append(ctx, request(i))
		if err != nil {
			t.Fatal(err)
		}
		if c := e.log.Latest(); c.Size <= ref.Seq {
			t.Fatalf("entry %d acknowledged in an unsigned tail (latest checkpoint %d)", ref.Seq, c.Size)
		}
		short, cancel := context.WithTimeout(ctx, time.Millisecond)
		c, err := e.log.WaitCheckpoint(short, ref.Seq)
		cancel()
		if err != nil || c.Size <= ref.Seq {
			t.Fatalf("WaitCheckpoint(%d) = %d, %v", ref.Seq, c.Size, err)
		}
		if _, err := audit.OpenCheckpoint(c.Note, e.ver); err != nil {
			t.Fatal(err)
		}
		file, err := audit.ReadExternal(e.cfg.CheckpointFile)
		if err != nil || string(file) != string(c.Note) {
			t.Fatalf("the head file does not hold the head: %v", err)
		}
	}

	defer audit.SetSignEveryBatch(false)()
	ref, err := e.log.Append(ctx, request(1))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if c, err := e.log.WaitCheckpoint(short, ref.Seq); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitCheckpoint of an unsigned entry = %d, %v; want deadline exceeded", c.Size, err)
	}
	done := make(chan audit.Checkpoint, 1)
	go func() {
		c, err := e.log.WaitCheckpoint(ctx, ref.Seq)
		if err != nil {
			t.Error(err)
		}
		done <- c
	}()
	e.close(t) // Close signs a final checkpoint
	select {
	case c := <-done:
		if c.Size <= ref.Seq {
			t.Fatalf("checkpoint %d does not cover %d", c.Size, ref.Seq)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("WaitCheckpoint not woken by the checkpoint")
	}
}

// TestAggregate counts by dimensions over a time range, from the log.
func TestAggregate(t *testing.T) {
	// Entries follow gateway.started in time, as in a real log (TimeSkew).
	t0 := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 1 })
	ctx := context.Background()
	add := func(min int, kind, who, action, rule, outcome string) {
		t.Helper()
		en := &audit.Entry{Kind: kind, Time: t0.Add(time.Duration(min) * time.Minute), RequestID: "r",
			Principal: &identity.Principal{Issuer: "i", Subject: who, Kind: "user"}, Outcome: outcome}
		if action != "" {
			en.Decision = &audit.Decision{Action: action, Rule: rule}
		}
		if _, err := e.log.Append(ctx, en); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		add(i*60, audit.KindRequestAdmitted, []string{"alice", "bob"}[i%2], "allow", "r1", "")
		add(i*60, audit.KindRequestCompleted, []string{"alice", "bob"}[i%2], "allow", "r1", []string{"ok", "ok", "upstream_error"}[i%3])
		if i%5 == 0 {
			add(i*60, audit.KindRequestDenied, "mallory", "deny", "no-mallory", "")
		}
	}
	// Hours 10..19.
	q := audit.AggregateQuery{From: t0.Add(10 * time.Hour), To: t0.Add(20 * time.Hour), By: []string{audit.ByKind, audit.ByOutcome}}
	a, err := e.log.Aggregate(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]int64{
		{"request.admitted", ""}: 10, {"request.completed", "ok"}: 7, {"request.completed", "upstream_error"}: 3, // i%3 == 2: 11, 14, 17
		{"request.denied", ""}: 2,
	}
	if a.Total != 22 || len(a.Groups) != len(want) {
		t.Fatalf("aggregate = %+v", a)
	}
	for _, g := range a.Groups {
		if want[[2]string{g.Kind, g.Outcome}] != g.Count {
			t.Errorf("group %+v, want count %d", g, want[[2]string{g.Kind, g.Outcome}])
		}
		if g.Principal != "" || g.Decision != "" {
			t.Errorf("ungrouped dimensions filled: %+v", g)
		}
	}
	if a.Groups[0].Count < a.Groups[len(a.Groups)-1].Count {
		t.Error("groups not sorted by count")
	}
	if a.Checkpoint.Size == 0 || a.Scanned[1] > a.Checkpoint.Size {
		t.Errorf("scanned %v beyond checkpoint %d", a.Scanned, a.Checkpoint.Size)
	}
	a, err = e.log.Aggregate(ctx, audit.AggregateQuery{From: t0, To: t0.Add(30 * time.Hour), By: []string{audit.ByPrincipal, audit.ByDecision, audit.ByRule},
		Kind: audit.KindRequestDenied})
	if err != nil {
		t.Fatal(err)
	}
	if a.Total != 6 || len(a.Groups) != 1 || a.Groups[0] != (audit.Group{Principal: "mallory", Decision: "deny", Rule: "no-mallory", Count: 6}) {
		t.Fatalf("denied by principal = %+v", a)
	}
	// Everything: gateway.started is in it too.
	a, err = e.log.Aggregate(ctx, audit.AggregateQuery{By: []string{audit.ByCategory}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Total != a.Checkpoint.Size {
		t.Fatalf("unbounded aggregate counted %d of %d", a.Total, a.Checkpoint.Size)
	}
	for _, bad := range []audit.AggregateQuery{{By: []string{"colour"}}, {From: t0, To: t0}} {
		if _, err := e.log.Aggregate(ctx, bad); err == nil {
			t.Errorf("Aggregate(%+v) accepted", bad)
		}
	}
}
