package audit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// TestAggregateCache: the log's counts, served partly from its cache of
// whole chunks, equal a fresh count of the store for windows that cut
// chunks anywhere, asked in any order and again.
func TestAggregateCache(t *testing.T) {
	defer audit.SetAggregateChunk(5)()
	t0 := time.Now().UTC().Truncate(time.Hour).Add(time.Hour)
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 50; c.CheckpointInterval = 20 * time.Millisecond })
	ctx := context.Background()
	const n = 60
	for i := range n {
		en := &audit.Entry{Kind: []string{audit.KindRequestAdmitted, audit.KindRequestCompleted, audit.KindRequestDenied}[i%3],
			Time: t0.Add(time.Duration(i) * time.Minute), RequestID: fmt.Sprintf("r%d", i), Route: []string{"chat", "embed"}[i%2],
			Principal: &identity.Principal{Issuer: "i", Subject: fmt.Sprintf("u%d", i%5), Kind: "user"}, Outcome: []string{"", "ok", ""}[i%3]}
		if _, err := e.log.Append(ctx, en); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.log.WaitCheckpoint(ctx, n); err != nil {
		t.Fatal(err)
	}
	// The log counts up to its per-batch head; the store alone up to its
	// history (checkpoint_interval): compare once the history caught up.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := e.st.LatestCheckpoint(ctx); err == nil && c.Size == e.log.Latest().Size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store's checkpoint history did not catch up with the head")
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][]string{nil, {audit.ByKind}, {audit.ByPrincipal, audit.ByOutcome}, {audit.ByRoute}}
	for i := range 200 {
		q := audit.AggregateQuery{By: shapes[rng.IntN(len(shapes))]}
		if rng.IntN(4) > 0 {
			a, b := rng.IntN(n+20)-10, rng.IntN(n+20)-10
			if a > b {
				a, b = b, a
			}
			q.From, q.To = t0.Add(time.Duration(a)*time.Minute), t0.Add(time.Duration(b+1)*time.Minute)
		}
		if rng.IntN(3) == 0 {
			q.Kind = audit.KindRequestCompleted
		}
		got, err := e.log.Aggregate(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := audit.AggregateStore(ctx, e.st, q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != want.Total || !reflect.DeepEqual(got.Groups, want.Groups) || got.Scanned != want.Scanned {
			t.Fatalf("query %d %+v: log (cached) %d %+v, store %d %+v", i, q, got.Total, got.Groups, want.Total, want.Groups)
		}
	}
}
