package audit_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

func admission(i int) *audit.Entry {
	e := request(i)
	e.Kind = audit.KindRequestAdmitted
	return e
}

func terminal(i int, outcome string) *audit.Entry {
	e := request(i)
	e.Kind = audit.KindRequestCompleted
	e.Outcome = outcome
	return e
}

// TestAbandonAtStart: admissions a (simulated) crash left without a
// terminal entry get request.abandoned at the next start, carrying what
// the admission said; the start after that abandons nothing more, and
// the whole log has no open request.
func TestAbandonAtStart(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for i := range 6 {
		if _, err := e.log.Append(ctx, admission(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range []int{0, 2, 4} {
		if _, err := e.log.Append(ctx, terminal(i, audit.OutcomeOK)); err != nil {
			t.Fatal(err)
		}
	}
	size, _ := e.st.Size(ctx)
	open, err := audit.OpenRequests(ctx, e.st, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 3 || open[0].RequestID != "req-1" || open[1].RequestID != "req-3" || open[2].RequestID != "req-5" {
		t.Fatalf("open requests before restart = %+v", open)
	}
	if err := e.reopen(t); err != nil {
		t.Fatal(err)
	}
	abandoned, err := e.log.Search(ctx, audit.Query{Kind: audit.KindRequestAbandoned})
	if err != nil {
		t.Fatal(err)
	}
	if len(abandoned) != 3 {
		t.Fatalf("%d request.abandoned entries, want 3", len(abandoned))
	}
	for i, a := range abandoned {
		if a.RequestID != open[i].RequestID || a.Route != "chat" || a.Principal == nil || a.Principal.Subject != "alice" ||
			a.Details["admitted_id"] != open[i].ID || a.Details["admitted_seq"] != json.Number(itoa(open[i].Seq)) {
			t.Errorf("abandoned entry %d = %+v, for admission %+v", i, a, open[i])
		}
	}
	started, err := e.log.Search(ctx, audit.Query{Kind: audit.KindGatewayStarted, Desc: true, Limit: 1})
	if err != nil || len(started) != 1 {
		t.Fatal(started, err)
	}
	if started[0].Seq < abandoned[2].Seq || started[0].Details["abandoned"] != json.Number("3") {
		t.Fatalf("gateway.started %+v does not follow and count the abandoned entries", started[0])
	}
	// A clean stop and start: nothing more to abandon.
	if err := e.reopen(t); err != nil {
		t.Fatal(err)
	}
	if again, _ := e.log.Search(ctx, audit.Query{Kind: audit.KindRequestAbandoned}); len(again) != 3 {
		t.Fatalf("second restart wrote more abandoned entries: %d", len(again))
	}
	e.close(t)
	if err := e.open(t); err != nil {
		t.Fatal(err)
	}
	n, _ := e.st.Size(ctx)
	if open, err := audit.OpenRequests(ctx, e.st, 0, n); err != nil || len(open) != 0 {
		t.Fatalf("open requests after recovery: %+v, %v", open, err)
	}
	if _, err := audit.Verify(ctx, e.st, e.ver, audit.VerifyOptions{SingleWriter: true}); err != nil {
		t.Fatalf("log with abandoned entries does not verify: %v", err)
	}
}

// TestOpenRequestsPairing: terminal entries close admissions of the same
// (instance, request id) oldest first; a reused request id is counted
// per admission; an abandoned entry closes the crashed instance's one.
func TestOpenRequestsPairing(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	add := func(en *audit.Entry, inst string) {
		t.Helper()
		en.Instance = inst
		if _, err := e.log.Append(ctx, en); err != nil {
			t.Fatal(err)
		}
	}
	add(admission(1), "gw-a")
	add(admission(1), "gw-a") // the client reused its request id
	add(admission(1), "gw-b")
	add(terminal(1, audit.OutcomeOK), "gw-a")
	ab := terminal(1, "")
	ab.Kind = audit.KindRequestAbandoned
	ab.Details = map[string]any{"admitted_instance": "gw-b"}
	add(ab, "gw-c")
	add(terminal(7, audit.OutcomeOK), "gw-a") // its admission is before the scanned range
	n, _ := e.st.Size(ctx)
	open, err := audit.OpenRequests(ctx, e.st, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Instance != "gw-a" || open[0].Seq != 2 {
		t.Fatalf("open = %+v, want the second gw-a admission (seq 2)", open)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
