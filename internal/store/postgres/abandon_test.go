package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// TestAbandonReplicas: on a log shared by replicas, a start closes the
// admissions its own instance left open and those of any instance older
// than abandon_after, and leaves another live replica's young admission
// alone (it may be in flight); the next start looks at it again.
func TestAbandonReplicas(t *testing.T) {
	c := newCluster(t, 2)
	// Replicas started in the test register their store's cleanup after
	// the cluster's: stop them first.
	defer func() {
		for _, r := range c.replicas {
			c.stop(r)
		}
	}()
	r0, r1 := c.replicas[0], c.replicas[1]
	ctx := context.Background()
	add := func(l *audit.Log, e *audit.Entry) {
		t.Helper()
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	add(r0.log, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "a-1"})
	add(r0.log, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "a-2"})
	add(r0.log, &audit.Entry{Kind: audit.KindRequestCompleted, RequestID: "a-1", Outcome: audit.OutcomeOK})
	add(r1.log, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "b-1"})
	// A replica that crashed long ago and never came back.
	add(r1.log, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "gone-1", Instance: "r9", Time: time.Now().Add(-2 * time.Hour)})

	open := func(want int) []audit.OpenRequest {
		t.Helper()
		var got []audit.OpenRequest
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			n, err := r1.st.Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pend, err := r1.st.Unsequenced(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if got, err = audit.OpenRequests(ctx, r1.st, 0, n); err != nil {
				t.Fatal(err)
			}
			if len(pend) == 0 && len(got) == want {
				return got
			}
		}
		t.Fatalf("open requests %+v, want %d", got, want)
		return nil
	}
	open(3) // a-2, b-1, gone-1

	// r0 restarts (a crash or not: its own open admissions are closed).
	c.stop(r0)
	c.start("r0")
	left := open(1)
	if left[0].RequestID != "b-1" || left[0].Instance != "r1" {
		t.Fatalf("left open %+v, want only r1's b-1 (in flight on a live replica)", left)
	}
	// The abandoned entries name the admission they close.
	n, _ := r1.st.Size(ctx)
	recs, err := r1.st.ReadRecords(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	closed := map[string]string{}
	for _, r := range recs {
		e, err := audit.ParseEntry(r.Seq, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == audit.KindRequestAbandoned {
			closed[e.RequestID] = e.Details["admitted_instance"].(string)
			if e.Instance != "r0" {
				t.Errorf("abandoned entry written by %q, want the starting r0", e.Instance)
			}
		}
	}
	if len(closed) != 2 || closed["a-2"] != "r0" || closed["gone-1"] != "r9" {
		t.Fatalf("abandoned %v, want a-2 (r0's own) and gone-1 (r9's, older than abandon_after)", closed)
	}
	// r1 restarts: now b-1 is its own.
	c.stop(r1)
	r1 = c.start("r1")
	open(0)
}
