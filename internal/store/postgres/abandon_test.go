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
	rd := openStore(t, c.schema) // the auditor's own connection
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

	// open waits until nothing is queued and want requests are open
	// (want < 0: any number) and returns them.
	open := func(want int) []audit.OpenRequest {
		t.Helper()
		var got []audit.OpenRequest
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			n, err := rd.Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pend, err := rd.Unsequenced(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if got, err = audit.OpenRequests(ctx, rd, 0, n); err != nil {
				t.Fatal(err)
			}
			if len(pend) == 0 && (len(got) == want || want < 0) {
				return got
			}
		}
		t.Fatalf("open requests %+v, want %d", got, want)
		return nil
	}
	open(3) // a-2, b-1, gone-1

	// r0 restarts (a crash or not: its own open admissions are closed).
	// r1's young b-1 may be in flight: left open. The stale gone-1 is
	// closed only if r0 took the integrator's lock (r1 may hold it).
	c.stop(r0)
	c.start("r0")
	left := map[string]bool{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left = map[string]bool{}
		for _, r := range open(-1) {
			left[r.RequestID] = true
		}
		if !left["a-2"] || time.Now().After(deadline) {
			break
		}
	}
	if left["a-2"] || !left["b-1"] {
		t.Fatalf("after r0's restart open %v: want a-2 closed (r0's own), b-1 open (r1's, in flight)", left)
	}
	// Everyone stops; one replica starts alone and leads: the stale
	// admission of the vanished r9 is closed, r1's young one is not.
	for _, r := range c.replicas {
		c.stop(r)
	}
	c.start("r0")
	if got := open(1); got[0].RequestID != "b-1" {
		t.Fatalf("left open %+v, want only r1's b-1", got)
	}
	// r1 comes back: b-1 is its own.
	c.start("r1")
	open(0)
	// Exactly one terminal entry per admission, each abandoned entry
	// naming the admission it closes.
	n, _ := rd.Size(ctx)
	recs, err := rd.ReadRecords(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	closed := map[string][]string{}
	for _, r := range recs {
		e, err := audit.ParseEntry(r.Seq, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == audit.KindRequestAbandoned {
			closed[e.RequestID] = append(closed[e.RequestID], e.Details["admitted_instance"].(string))
		}
	}
	if len(closed) != 3 || len(closed["a-2"]) != 1 || closed["a-2"][0] != "r0" || len(closed["gone-1"]) != 1 || closed["gone-1"][0] != "r9" ||
		len(closed["b-1"]) != 1 || closed["b-1"][0] != "r1" {
		t.Fatalf("abandoned %v, want a-2 (r0), gone-1 (r9), b-1 (r1) once each", closed)
	}
}
