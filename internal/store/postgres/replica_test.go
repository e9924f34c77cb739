package postgres

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// replica is one gateway instance: its own store (pool, leader and
// listener connections) and Log over the shared schema.
type replica struct {
	name string
	st   *Store
	log  *audit.Log
}

type cluster struct {
	t        *testing.T
	schema   string
	signer   note.Signer
	verifier note.Verifier
	cfg      audit.Config
	replicas []*replica
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	s, v, err := audit.LoadOrCreateKeys(filepath.Join(t.TempDir(), "audit.signer"), "test-replicas")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, schema: newSchema(t), signer: s, verifier: v}
	c.cfg = audit.Config{Store: "postgres", DSN: testDSN(t), CheckpointEvery: 64, CheckpointInterval: 200 * time.Millisecond, BatchMax: 128, WriteTimeout: 10 * time.Second}
	for i := range n {
		c.start(fmt.Sprintf("r%d", i))
	}
	t.Cleanup(func() {
		for _, r := range c.replicas {
			c.stop(r)
		}
	})
	return c
}

func (c *cluster) start(name string) *replica {
	c.t.Helper()
	st := openStore(c.t, c.schema)
	l, err := audit.Open(context.Background(), st, c.cfg, c.signer, c.verifier, audit.WithInstance(name))
	if err != nil {
		c.t.Fatalf("audit.Open %s: %v", name, err)
	}
	r := &replica{name: name, st: st, log: l}
	c.replicas = append(c.replicas, r)
	return r
}

// stop closes r's Log and store (idempotent).
func (c *cluster) stop(r *replica) {
	if r.log == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.log.Close(ctx); err != nil {
		c.t.Errorf("Log.Close %s: %v", r.name, err)
	}
	r.st.Close()
	r.log = nil
}

// leader waits until exactly one running replica leads and returns it.
func (c *cluster) leader() *replica {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var leaders []*replica
		for _, r := range c.replicas {
			if r.log != nil && r.st.Leading() {
				leaders = append(leaders, r)
			}
		}
		// Two stores can briefly both believe they lead after a lost
		// connection (until the old one's next Lead); Append fences that,
		// so wait for the views to settle.
		if len(leaders) == 1 {
			return leaders[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no replica became the integrator")
	return nil
}

// load appends n entries from each running replica, from writers
// goroutines per replica, and returns the IDs each replica got back.
func (c *cluster) load(n, writers int, tag string) map[string][]string {
	c.t.Helper()
	var mu sync.Mutex
	ids := map[string][]string{}
	var wg sync.WaitGroup
	errc := make(chan error, len(c.replicas)*writers)
	for _, r := range c.replicas {
		if r.log == nil {
			continue
		}
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += writers {
					e := &audit.Entry{
						Kind:      audit.KindRequestAdmitted,
						RequestID: fmt.Sprintf("%s-%s-%d", tag, r.name, i),
						Principal: &identity.Principal{Issuer: "https://idp", Subject: "svc-" + r.name},
						Route:     "chat",
						Params:    map[string]any{"replica": r.name, "tag": tag},
					}
					ref, err := r.log.Append(context.Background(), e)
					if err != nil {
						errc <- fmt.Errorf("%s append %d: %w", r.name, i, err)
						return
					}
					mu.Lock()
					ids[r.name] = append(ids[r.name], ref.ID)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		c.t.Fatal(err)
	}
	return ids
}

// verify checks the whole log offline with a fresh store: every hash and
// checkpoint holds, seqs are gap-free, every ID in want appears exactly
// once. It returns the decoded entries.
func (c *cluster) verify(want map[string][]string) []*audit.Entry {
	c.t.Helper()
	ctx := context.Background()
	st := openStore(c.t, c.schema)
	rep, err := audit.Verify(ctx, st, c.verifier, audit.VerifyOptions{})
	if err != nil {
		c.t.Fatalf("audit.Verify: %v", err)
	}
	if rep.Checkpoints == 0 {
		c.t.Fatal("no checkpoint was signed")
	}
	recs, err := st.ReadRecords(ctx, 0, rep.Size)
	if err != nil {
		c.t.Fatal(err)
	}
	seen := map[string]int{}
	var entries []*audit.Entry
	for i, r := range recs {
		if r.Seq != int64(i) {
			c.t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		e, err := audit.ParseEntry(r.Seq, r.Data)
		if err != nil {
			c.t.Fatal(err)
		}
		seen[e.ID]++
		entries = append(entries, e)
	}
	for id, n := range seen {
		if n != 1 {
			c.t.Fatalf("entry %s appears %d times", id, n)
		}
	}
	for name, ids := range want {
		for _, id := range ids {
			if seen[id] != 1 {
				c.t.Fatalf("replica %s: entry %s appears %d times, want once", name, id, seen[id])
			}
		}
	}
	c.t.Logf("verified %d entries, %d checkpoints", rep.Size, rep.Checkpoints)
	return entries
}

func TestReplicasShareOneLog(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	lead := c.leader()
	ids := c.load(60, 8, "a")
	// A replica can learn the seq of what it admitted.
	for _, r := range c.replicas {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		last := ids[r.name][len(ids[r.name])-1]
		seq, err := r.st.WaitSeq(ctx, last)
		cancel()
		if err != nil {
			t.Fatalf("%s: WaitSeq: %v", r.name, err)
		}
		if got, _, err := r.log.Entry(context.Background(), seq); err != nil || got.ID != last {
			t.Fatalf("%s: entry at seq %d is %v, %v; want ID %s", r.name, seq, got, err, last)
		}
	}
	if l := c.leader(); l != lead {
		t.Fatalf("leadership moved from %s to %s without a failure", lead.name, l.name)
	}
	for _, r := range c.replicas {
		c.stop(r)
	}
	entries := c.verify(ids)
	perInstance := map[string]map[string]int{}
	for _, e := range entries {
		if perInstance[e.Instance] == nil {
			perInstance[e.Instance] = map[string]int{}
		}
		perInstance[e.Instance][e.Kind]++
	}
	for _, r := range c.replicas {
		got := perInstance[r.name]
		if got[audit.KindRequestAdmitted] != 60 || got[audit.KindGatewayStarted] != 1 || got[audit.KindGatewayStopped] != 1 {
			t.Errorf("replica %s wrote %v; want 60 admitted, 1 started, 1 stopped", r.name, got)
		}
	}
}

func TestLeaderFailover(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fail func(t *testing.T, c *cluster, lead *replica)
	}{
		{"leader closed", func(t *testing.T, c *cluster, lead *replica) { c.stop(lead) }},
		{"leader connection killed", func(t *testing.T, c *cluster, lead *replica) {
			// The database side ends the leader's session, as a network
			// partition or a crashed host would: PostgreSQL drops the lock.
			pid := lead.st.leaderPID()
			if pid == 0 {
				t.Fatal("leader has no lock connection")
			}
			admin := rawConn(t, c.schema)
			var ok bool
			if err := admin.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
				t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, ok, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3)
			lead := c.leader()
			want := c.load(30, 4, "before")
			tc.fail(t, c, lead)
			// Appends keep working during the handover.
			during := c.load(30, 4, "during")
			next := c.leader()
			if tc.name == "leader closed" && next == lead {
				t.Fatalf("closed leader %s still leads", lead.name)
			}
			after := c.load(30, 4, "after")
			for _, m := range []map[string][]string{during, after} {
				for k, v := range m {
					want[k] = append(want[k], v...)
				}
			}
			for _, r := range c.replicas {
				c.stop(r)
			}
			c.verify(want)
		})
	}
}

func TestStaleIntegratorIsFenced(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	a := openStore(t, schema)
	b := openStore(t, schema)
	ctx := context.Background()
	if ok, err := a.Lead(ctx); err != nil || !ok {
		t.Fatalf("a.Lead = %v, %v; want true", ok, err)
	}
	if ok, err := b.Lead(ctx); err != nil || ok {
		t.Fatalf("b.Lead while a leads = %v, %v; want false", ok, err)
	}
	// b was not elected: its Append must not fork the log a integrates.
	st := []*audit.Entry{testEntry(0, "b")}
	if err := appendErr(b, st); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("Append by a non-leader while another leads: err = %v, want ErrConflict", err)
	}
	appendDirect(t, a, []*audit.Entry{testEntry(0, "a")})
	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Lead(ctx); err != nil || !ok {
		t.Fatalf("b.Lead after a resigned = %v, %v; want true", ok, err)
	}
	// a resigned: b's lock now fences a out.
	if err := appendErr(a, []*audit.Entry{testEntry(1, "a")}); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("Append by the resigned leader: err = %v, want ErrConflict", err)
	}
	appendDirect(t, b, []*audit.Entry{testEntry(1, "b")})
	if n, _ := b.Size(ctx); n != 2 {
		t.Fatalf("size = %d, want 2", n)
	}
}

// appendErr appends entries at the store's size and returns the error.
func appendErr(st *Store, es []*audit.Entry) error {
	ctx := context.Background()
	from, err := st.Size(ctx)
	if err != nil {
		return err
	}
	return st.Append(ctx, tlogBatch(st, from, es))
}
