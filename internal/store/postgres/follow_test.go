package postgres

import (
	"context"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
)

// TestFollowTwoReplicas (issue 14): with two replicas appending 5k
// entries each concurrently, a follower on one replica's Log and one over
// a separate connection (polling) yield all 10k exactly once, in sequence
// order, and agree; after that replica stops and a new one starts, a
// follower from a given sequence number yields exactly the same entries.
func TestFollowTwoReplicas(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const perReplica = 5000
	want := map[string]bool{}
	for _, r := range c.replicas {
		for i := range perReplica {
			want[fmt.Sprintf("f-%s-%d", r.name, i)] = true
		}
	}
	reader := openStore(t, c.schema)
	type result struct {
		got []*audit.Entry
		err error
	}
	done := make(chan result, 2)
	for _, it := range []iter.Seq2[*audit.Entry, error]{
		c.replicas[0].log.Follow(ctx, 0, audit.FollowOptions{}),
		audit.Follow(ctx, reader, 0, audit.FollowOptions{Poll: 20 * time.Millisecond}),
	} {
		go func() {
			got, err := storetest.FollowUntil(it, 0, want, func(e *audit.Entry) string { return e.RequestID })
			done <- result{got, err}
		}()
	}
	c.load(perReplica, 8, "f")
	a, b := <-done, <-done
	for _, r := range []result{a, b} {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	if len(a.got) != len(b.got) {
		t.Fatalf("followers yielded %d and %d entries", len(a.got), len(b.got))
	}
	for i := range a.got {
		if a.got[i].ID != b.got[i].ID {
			t.Fatalf("seq %d: followers disagree (%s, %s)", i, a.got[i].ID, b.got[i].ID)
		}
	}

	// Restart: the followed replica stops, a new one starts; resume.
	c.stop(c.replicas[0])
	r := c.start("r-restarted")
	defer c.stop(r) // before its store's cleanup closes the store
	const from = 5000
	rest := map[string]bool{}
	for _, e := range a.got[from:] {
		rest[e.ID] = true
	}
	again, err := storetest.FollowUntil(r.log.Follow(ctx, from, audit.FollowOptions{}), from, rest, func(e *audit.Entry) string { return e.ID })
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range again {
		if e.ID != a.got[from+i].ID {
			t.Fatalf("after restart seq %d is %s, was %s", e.Seq, e.ID, a.got[from+i].ID)
		}
	}
}
