package approvaltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// env is one test's world: a database, a store handle, an audit log, a
// clock and a Service.
type env struct {
	open  Opener
	store approval.Store
	log   *AuditLog
	clock *Clock
	svc   *approval.Service
	cfg   approval.Config
}

func newEnv(t *testing.T, open Opener) *env {
	e := &env{open: open, log: NewAuditLog(t), clock: NewClock()}
	e.cfg = approval.Config{ReviewURLBase: "https://warden.test", PollInterval: 50 * time.Millisecond}
	e.store = open(t)
	e.svc = e.service(e.store)
	return e
}

func (e *env) service(st approval.Store) *approval.Service {
	return approval.New(st, e.log, approval.WithConfig(e.cfg), approval.WithClock(e.clock.Now), approval.WithInstance("test"))
}

// Run runs the suite. newDB creates a fresh empty database and returns
// an Opener for it.
func Run(t *testing.T, newDB func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		{"StoreContract", testStoreContract},
		{"OneTimeAsync", testOneTimeAsync},
		{"OneTimeHold", testOneTimeHold},
		{"OneTimeBoundToBody", testOneTimeBound},
		{"GrantRequestedViaAPI", testGrantAPI},
		{"GrantHoldViaGateway", testGrantHold},
		{"SeparationOfDuties", testSeparation},
		{"Threshold", testThreshold},
		{"OnePerGroup", testOnePerGroup},
		{"DenyWins", testDenyWins},
		{"Cancel", testCancel},
		{"ExpiryOfRequests", testExpiryRequests},
		{"ExpiryOfGrants", testExpiryGrants},
		{"ConcurrentReviews", testConcurrentReviews},
		{"ConcurrentUse", testConcurrentUse},
		{"RestartWhilePending", testRestart},
		{"Replicas", testReplicas},
		{"AuditFailureFailsClosed", testAuditFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newEnv(t, newDB(t)))
		})
	}
}

var bg = context.Background()

// must(f())(t) returns f's value, failing t on f's error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantCode(t *testing.T, err error, code approval.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if c := approval.CodeOf(err); c != code {
		t.Fatalf("got error %v (%s), want %s", err, c, code)
	}
}

func wantKinds(t *testing.T, l *AuditLog, id string, want ...string) {
	t.Helper()
	if got := l.Kinds(t, id); !slices.Equal(got, want) {
		t.Fatalf("audit entries of %s: got %v, want %v", id, got, want)
	}
}

func testStoreContract(t *testing.T, e *env) {
	st := e.store
	now := e.clock.Now()
	mk := func(id, sub string, kind policy.ApprovalKind) *approval.Request {
		r := &approval.Request{ID: id, Kind: kind, State: approval.StatePending, SettingName: "s",
			Requester: identity.Principal{Issuer: "i", Subject: sub}, Justification: "j",
			Setting: *OneTime(policy.ApprovalAsync), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if kind == policy.ApprovalOneTime {
			r.Binding = &approval.Binding{Method: "POST", Path: "/p", BodySHA256: sub}
		}
		return r
	}
	if _, err := st.Get(bg, "nope"); !errors.Is(err, approval.ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
	if _, err := st.Update(bg, "nope", func(*approval.Request) error { return nil }); !errors.Is(err, approval.ErrNotFound) {
		t.Fatalf("Update missing: %v, want ErrNotFound", err)
	}
	a := mk("a", "u1", policy.ApprovalOneTime)
	if err := st.Insert(bg, a, nil); err != nil {
		t.Fatal(err)
	}
	// Same open key: refused, and before() is not run.
	dup := mk("a2", "u1", policy.ApprovalOneTime)
	ran := false
	if err := st.Insert(bg, dup, func() error { ran = true; return nil }); !errors.Is(err, approval.ErrDuplicate) || ran {
		t.Fatalf("duplicate insert: err %v, before ran %v", err, ran)
	}
	// A failing before() stores nothing.
	boom := errors.New("boom")
	if err := st.Insert(bg, mk("b", "u2", policy.ApprovalOneTime), func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("insert with failing hook: %v", err)
	}
	if _, err := st.Get(bg, "b"); !errors.Is(err, approval.ErrNotFound) {
		t.Fatalf("request of a failed insert was stored: %v", err)
	}
	got := must(st.Get(bg, "a"))(t)
	if got.Justification != "j" || got.Binding == nil || got.Binding.BodySHA256 != "u1" || !got.ExpiresAt.Equal(a.ExpiresAt) {
		t.Fatalf("round trip: %+v", got)
	}
	if o := must(st.Open(bg, a.OpenKey()))(t); o.ID != "a" {
		t.Fatalf("Open: %s", o.ID)
	}
	if l := must(st.LatestByBindKey(bg, a.BindKey()))(t); l.ID != "a" {
		t.Fatalf("LatestByBindKey: %s", l.ID)
	}
	// Update: fn error leaves the row unchanged; success bumps Version.
	if _, err := st.Update(bg, "a", func(r *approval.Request) error { r.State = approval.StateDenied; return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	got = must(st.Get(bg, "a"))(t)
	if got.State != approval.StatePending {
		t.Fatalf("failed update changed state to %s", got.State)
	}
	v0 := got.Version
	up := must(st.Update(bg, "a", func(r *approval.Request) error {
		r.State = approval.StateDenied
		r.DecidedAt = now
		return nil
	}))(t)
	if up.Version != v0+1 {
		t.Fatalf("version %d after update of %d", up.Version, v0)
	}
	// Closed: the open key is free again; the bind key still finds it.
	if _, err := st.Open(bg, a.BindKey()); !errors.Is(err, approval.ErrNotFound) {
		t.Fatalf("Open after deny: %v", err)
	}
	if err := st.Insert(bg, mk("a3", "u1", policy.ApprovalOneTime), nil); err != nil {
		t.Fatalf("insert after the open one closed: %v", err)
	}
	e.clock.Advance(time.Millisecond)
	// Grants and Due.
	g := mk("g", "u3", policy.ApprovalGrant)
	g.CreatedAt = now.Add(time.Second)
	g.State, g.ValidFrom, g.ValidUntil = approval.StateApproved, now, now.Add(2*time.Hour)
	if err := st.Insert(bg, g, nil); err != nil {
		t.Fatal(err)
	}
	if gs := must(st.Grants(bg, "i", "u3", now))(t); len(gs) != 1 || gs[0].ID != "g" {
		t.Fatalf("Grants: %v", gs)
	}
	if gs := must(st.Grants(bg, "i", "u3", now.Add(3*time.Hour)))(t); len(gs) != 0 {
		t.Fatalf("Grants after expiry: %d", len(gs))
	}
	if gs := must(st.Grants(bg, "i", "u1", now))(t); len(gs) != 0 {
		t.Fatalf("Grants of another: %d", len(gs))
	}
	if ids := must(st.Due(bg, now.Add(90*time.Minute), 10))(t); !slices.Equal(ids, []string{"a3"}) {
		t.Fatalf("Due at +90m: %v, want [a3]", ids)
	}
	if ids := must(st.Due(bg, now.Add(3*time.Hour), 10))(t); len(ids) != 2 {
		t.Fatalf("Due at +3h: %v, want a3 and g", ids)
	}
	all := must(st.List(bg, approval.Filter{}))(t)
	if len(all) != 3 || all[0].ID != "g" {
		t.Fatalf("List: %d, first %s", len(all), all[0].ID)
	}
	if l := must(st.List(bg, approval.Filter{State: approval.StateDenied}))(t); len(l) != 1 || l[0].ID != "a" {
		t.Fatalf("List denied: %v", l)
	}
	if l := must(st.List(bg, approval.Filter{RequesterSubject: "u1", Limit: 1}))(t); len(l) != 1 || l[0].ID != "a3" {
		t.Fatalf("List by requester, limit 1: %v", l)
	}
}

func testOneTimeAsync(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	call := Call(Alice, "fine-tune", set, "body-1")
	call.Justification = "  quarterly retrain  "
	out := must(e.svc.Check(bg, call))(t)
	if out.Decision != approval.Pending || !out.Created || out.ApprovalID == "" || out.RetryAfter <= 0 {
		t.Fatalf("first call: %+v", out)
	}
	if out.ReviewURL != "https://warden.test/v1/approvals/"+out.ApprovalID {
		t.Fatalf("review URL %q", out.ReviewURL)
	}
	id := out.ApprovalID
	// Identical retries find the same request.
	for range 3 {
		again := must(e.svc.Check(bg, call))(t)
		if again.Decision != approval.Pending || again.ApprovalID != id || again.Created {
			t.Fatalf("retry: %+v, want pending %s", again, id)
		}
	}
	r := must(e.svc.Get(bg, id))(t)
	if r.Justification != "quarterly retrain" || r.Binding.BodySHA256 != "body-1" || r.Requester.Subject != "alice" {
		t.Fatalf("request: %+v", r)
	}
	must(e.svc.Approve(bg, Bob, id, "reviewed the dataset"))(t)
	out = must(e.svc.Check(bg, call))(t)
	if out.Decision != approval.Proceed || out.ApprovalID != id {
		t.Fatalf("after approval: %+v", out)
	}
	r = must(e.svc.Get(bg, id))(t)
	if r.State != approval.StateUsed || r.UsedBy != call.RequestID {
		t.Fatalf("after use: state %s used by %q", r.State, r.UsedBy)
	}
	// Used once: the next identical call needs a new approval.
	out = must(e.svc.Check(bg, call))(t)
	if out.Decision != approval.Pending || out.ApprovalID == id || !out.Created {
		t.Fatalf("second use: %+v", out)
	}
	wantKinds(t, e.log, id, approval.KindRequested, approval.KindReviewed, approval.KindApproved, approval.KindUsed)
	es := e.log.Entries(t, id)
	if es[0].Principal.Subject != "alice" || es[0].Details["justification"] != "quarterly retrain" || es[0].RequestSHA256 != "body-1" {
		t.Fatalf("requested entry: %+v", es[0])
	}
	if es[1].Principal.Subject != "bob" || es[1].Details["reason"] != "reviewed the dataset" {
		t.Fatalf("reviewed entry: %+v", es[1])
	}
	if es[3].RequestID != call.RequestID || es[3].Principal.Subject != "alice" {
		t.Fatalf("used entry: %+v", es[3])
	}
	// Every entry of the approval names the call it was opened for, so
	// the request's entries (the console's request detail) show the
	// review and the approval too, not only the request and the use.
	for i, k := range []string{approval.KindRequested, approval.KindReviewed, approval.KindApproved} {
		if es[i].Kind != k || es[i].RequestID != call.RequestID {
			t.Errorf("%s entry has request id %q, want the bound call's %q", es[i].Kind, es[i].RequestID, call.RequestID)
		}
	}
}

func testOneTimeHold(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalHold)
	call := Call(Alice, "fine-tune", set, "body-h")
	out := must(e.svc.Check(bg, call))(t)
	if out.Decision != approval.Pending {
		t.Fatalf("check: %+v", out)
	}
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	done := make(chan approval.Outcome, 1)
	errc := make(chan error, 1)
	go func() {
		o, err := e.svc.Hold(ctx, call, out.ApprovalID)
		done <- o
		errc <- err
	}()
	must(e.svc.Approve(bg, Bob, out.ApprovalID, "go ahead"))(t)
	held := <-done
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if held.Decision != approval.Proceed || held.ApprovalID != out.ApprovalID {
		t.Fatalf("hold: %+v", held)
	}
	wantKinds(t, e.log, out.ApprovalID, approval.KindRequested, approval.KindReviewed, approval.KindApproved, approval.KindUsed)

	// A denied hold ends Denied with the reason.
	call2 := Call(Alice, "fine-tune", set, "body-h2")
	out2 := must(e.svc.Check(bg, call2))(t)
	go func() {
		o, err := e.svc.Hold(ctx, call2, out2.ApprovalID)
		done <- o
		errc <- err
	}()
	must(e.svc.Deny(bg, Bob, out2.ApprovalID, "not this week"))(t)
	held = <-done
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if held.Decision != approval.Denied || held.Reason != "approval denied: not this week" {
		t.Fatalf("denied hold: %+v", held)
	}
	// Identical retry of a denied call is told it is denied.
	if o := must(e.svc.Check(bg, call2))(t); o.Decision != approval.Denied || o.ApprovalID != out2.ApprovalID {
		t.Fatalf("retry after deny: %+v", o)
	}

	// A hold that times out returns Pending (the caller may retry).
	call3 := Call(Alice, "fine-tune", set, "body-h3")
	out3 := must(e.svc.Check(bg, call3))(t)
	short, cancel3 := context.WithCancel(bg)
	cancel3()
	o := must(e.svc.Hold(short, call3, out3.ApprovalID))(t)
	if o.Decision != approval.Pending || o.ApprovalID != out3.ApprovalID {
		t.Fatalf("hold with done ctx: %+v", o)
	}
}

func testOneTimeBound(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	call := Call(Alice, "fine-tune", set, "body-A")
	id := must(e.svc.Check(bg, call))(t).ApprovalID
	must(e.svc.Approve(bg, Bob, id, "ok"))(t)
	// A different body, path, model or caller does not match the approval.
	for name, c := range map[string]approval.GateRequest{
		"body":    Call(Alice, "fine-tune", set, "body-B"),
		"caller":  Call(Mallory, "fine-tune", set, "body-A"),
		"setting": Call(Alice, "other", set, "body-A"),
	} {
		o := must(e.svc.Check(bg, c))(t)
		if o.Decision != approval.Pending || o.ApprovalID == id || !o.Created {
			t.Fatalf("%s: %+v", name, o)
		}
	}
	c := call
	c.Model = "llama-3-70b"
	if o := must(e.svc.Check(bg, c))(t); o.Decision != approval.Pending || o.ApprovalID == id {
		t.Fatalf("model: %+v", o)
	}
	if r := must(e.svc.Get(bg, id))(t); r.State != approval.StateApproved {
		t.Fatalf("approval was touched by other calls: %s", r.State)
	}
	if o := must(e.svc.Check(bg, call))(t); o.Decision != approval.Proceed || o.ApprovalID != id {
		t.Fatalf("bound call: %+v", o)
	}
	if o := must(e.svc.Check(bg, call))(t); o.Decision == approval.Proceed {
		t.Fatalf("approval used twice: %+v", o)
	}
}

func testGrantAPI(t *testing.T, e *env) {
	set := Grant(policy.ApprovalAsync)
	// Justification is required; scope cannot be widened.
	_, err := e.svc.RequestGrant(bg, Alice, approval.GrantRequest{SettingName: "ft", Setting: set})
	wantCode(t, err, approval.CodeInvalid)
	_, err = e.svc.RequestGrant(bg, Alice, approval.GrantRequest{SettingName: "ft", Setting: set, Justification: "x", Scope: &policy.GrantScope{Routes: []string{"chat"}}})
	wantCode(t, err, approval.CodeInvalid)
	_, err = e.svc.RequestGrant(bg, Alice, approval.GrantRequest{SettingName: "ft", Setting: OneTime(policy.ApprovalAsync), Justification: "x"})
	wantCode(t, err, approval.CodeInvalid)
	r := must(e.svc.RequestGrant(bg, Alice, approval.GrantRequest{SettingName: "ft", Setting: set, Justification: "incident 42",
		Scope: &policy.GrantScope{Paths: []string{"/v1/fine_tuning/jobs"}}, Duration: 30 * time.Minute}))(t)
	_, err = e.svc.RequestGrant(bg, Alice, approval.GrantRequest{SettingName: "ft", Setting: set, Justification: "again"})
	wantCode(t, err, approval.CodeConflict)

	call := Call(Alice, "ft", set, "b1")
	// Pending grant request: the gate reports it rather than opening another.
	if o := must(e.svc.Check(bg, call))(t); o.Decision != approval.Pending || o.ApprovalID != r.ID || o.Created {
		t.Fatalf("before approval: %+v", o)
	}
	if gs := must(e.svc.ActiveGrants(bg, Alice))(t); len(gs) != 0 {
		t.Fatalf("grants before approval: %v", gs)
	}
	g := must(e.svc.Approve(bg, Bob, r.ID, "incident confirmed"))(t)
	if g.State != approval.StateApproved || !g.ValidUntil.Equal(e.clock.Now().Add(30*time.Minute)) {
		t.Fatalf("approved grant: %s until %v", g.State, g.ValidUntil)
	}
	gs := must(e.svc.ActiveGrants(bg, Alice))(t)
	if len(gs) != 1 || gs[0].ID != r.ID || gs[0].Scope != "ft" || !gs[0].Expires.Equal(g.ValidUntil) {
		t.Fatalf("active grants: %+v", gs)
	}
	// The policy input holds only grants covering the call.
	if gs := must(e.svc.ActiveGrantsFor(bg, Alice, "fine-tune", "m", "/v1/fine_tuning/jobs"))(t); len(gs) != 1 || gs[0].ID != r.ID {
		t.Fatalf("grants for a covered call: %+v", gs)
	}
	if gs := must(e.svc.ActiveGrantsFor(bg, Alice, "fine-tune", "m", "/v1/files"))(t); len(gs) != 0 {
		t.Fatalf("grants for an uncovered call: %+v", gs)
	}
	// Any number of calls within scope proceed under the grant.
	for i := range 3 {
		o := must(e.svc.Check(bg, Call(Alice, "ft", set, fmt.Sprint("b", i))))(t)
		if o.Decision != approval.Proceed || o.GrantID != r.ID {
			t.Fatalf("call %d under grant: %+v", i, o)
		}
	}
	// Out of the narrowed scope: not covered.
	c := call
	c.Path = "/v1/fine_tuning/other"
	if o := must(e.svc.Check(bg, c))(t); o.Decision == approval.Proceed {
		t.Fatalf("call outside scope proceeded: %+v", o)
	}
	// Someone else's call is not covered.
	if o := must(e.svc.Check(bg, Call(Mallory, "ft", set, "b1")))(t); o.Decision == approval.Proceed {
		t.Fatalf("other principal proceeded: %+v", o)
	}
	// Revocation: not by a non-reviewer, then by a reviewer; next call is refused.
	_, err = e.svc.Revoke(bg, Mallory, r.ID, "x")
	wantCode(t, err, approval.CodeForbidden)
	must(e.svc.Revoke(bg, Carol, r.ID, "incident closed"))(t)
	if gs := must(e.svc.ActiveGrants(bg, Alice))(t); len(gs) != 0 {
		t.Fatalf("grants after revoke: %v", gs)
	}
	if gs := must(e.svc.ActiveGrantsFor(bg, Alice, "fine-tune", "m", "/v1/fine_tuning/jobs"))(t); len(gs) != 0 {
		t.Fatalf("policy grants after revoke: %v", gs)
	}
	if o := must(e.svc.Check(bg, Call(Alice, "ft", set, "b9")))(t); o.Decision == approval.Proceed {
		t.Fatalf("call after revoke proceeded: %+v", o)
	}
	_, err = e.svc.Revoke(bg, Carol, r.ID, "again")
	wantCode(t, err, approval.CodeConflict)
	wantKinds(t, e.log, r.ID, approval.KindRequested, approval.KindReviewed, approval.KindApproved, approval.KindGrantOn, approval.KindRevoked)
	for _, en := range e.log.Entries(t, r.ID) {
		if en.Kind != approval.KindRequested && en.GrantID != r.ID {
			t.Fatalf("%s entry without grant id", en.Kind)
		}
	}
}

func testGrantHold(t *testing.T, e *env) {
	set := Grant(policy.ApprovalHold)
	call := Call(Alice, "ft", set, "b1")
	// The negative grant cache must not hide a grant that becomes active.
	if gs := must(e.svc.ActiveGrants(bg, Alice))(t); len(gs) != 0 {
		t.Fatal(gs)
	}
	out := must(e.svc.Check(bg, call))(t)
	if out.Decision != approval.Pending || !out.Created {
		t.Fatalf("check: %+v", out)
	}
	r := must(e.svc.Get(bg, out.ApprovalID))(t)
	if r.Justification != approval.DefaultJustification || r.Scope == nil || !slices.Equal(r.Scope.Routes, []string{"fine-tune"}) {
		t.Fatalf("gateway grant request: %+v", r)
	}
	ctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	done := make(chan approval.Outcome, 1)
	go func() {
		o, err := e.svc.Hold(ctx, call, out.ApprovalID)
		if err != nil {
			t.Error(err)
		}
		done <- o
	}()
	must(e.svc.Approve(bg, Bob, out.ApprovalID, "ok for today"))(t)
	if o := <-done; o.Decision != approval.Proceed || o.GrantID != out.ApprovalID {
		t.Fatalf("hold: %+v", o)
	}
	if gs := must(e.svc.ActiveGrants(bg, Alice))(t); len(gs) != 1 {
		t.Fatalf("grants after approval: %v", gs)
	}
	// The holder may give the grant up.
	must(e.svc.Revoke(bg, Alice, out.ApprovalID, "done early"))(t)
	if gs := must(e.svc.ActiveGrants(bg, Alice))(t); len(gs) != 0 {
		t.Fatalf("grants after giving up: %v", gs)
	}
}

func testSeparation(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	set.Reviewers = []string{"ml-leads", "ml-admins"}
	id := must(e.svc.Check(bg, Call(AliceAdmin, "ft", set, "b")))(t).ApprovalID
	// The requester, in every reviewer and admin group, cannot approve or deny.
	_, err := e.svc.Approve(bg, AliceAdmin, id, "I approve myself")
	wantCode(t, err, approval.CodeForbidden)
	_, err = e.svc.Deny(bg, Alice, id, "nah")
	wantCode(t, err, approval.CodeForbidden)
	// Not a reviewer.
	_, err = e.svc.Approve(bg, Mallory, id, "sure")
	wantCode(t, err, approval.CodeForbidden)
	// A reason is required.
	_, err = e.svc.Approve(bg, Bob, id, "  ")
	wantCode(t, err, approval.CodeInvalid)
	// Same subject at another issuer is another person.
	must(e.svc.Approve(bg, BobOtherIssuer, id, "different person"))(t)
	// The three refused reviews are evidence (two self-approvals, one
	// outsider); the request itself only moved with bob's approval.
	wantKinds(t, e.log, id, approval.KindRequested, approval.KindReviewRefused, approval.KindReviewRefused, approval.KindReviewRefused,
		approval.KindReviewed, approval.KindApproved)
	if r := must(e.svc.Get(bg, id))(t); len(r.Reviews) != 1 {
		t.Fatalf("refused reviews were stored: %d", len(r.Reviews))
	}
}

func testThreshold(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	set.MinApprovals = 2
	id := must(e.svc.Check(bg, Call(Alice, "ft", set, "b")))(t).ApprovalID
	if r := must(e.svc.Approve(bg, Bob, id, "one"))(t); r.State != approval.StatePending {
		t.Fatalf("after one approval: %s", r.State)
	}
	_, err := e.svc.Approve(bg, Bob, id, "one again")
	wantCode(t, err, approval.CodeConflict)
	if o := must(e.svc.Check(bg, Call(Alice, "ft", set, "b")))(t); o.Decision != approval.Pending {
		t.Fatalf("one of two approvals let the call through: %+v", o)
	}
	if r := must(e.svc.Approve(bg, Carol, id, "two"))(t); r.State != approval.StateApproved {
		t.Fatalf("after two approvals: %s", r.State)
	}
	_, err = e.svc.Approve(bg, Erin, id, "three")
	wantCode(t, err, approval.CodeConflict)
	wantKinds(t, e.log, id, approval.KindRequested, approval.KindReviewed, approval.KindReviewed, approval.KindApproved)
}

func testOnePerGroup(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	set.Reviewers = []string{"ml-leads", "security"}
	set.MinApprovals = 2
	set.OnePerGroup = true
	id := must(e.svc.Check(bg, Call(Alice, "ft", set, "b")))(t).ApprovalID
	must(e.svc.Approve(bg, Bob, id, "lead 1"))(t)
	if r := must(e.svc.Approve(bg, Carol, id, "lead 2"))(t); r.State != approval.StatePending {
		t.Fatalf("two approvals from one group approved: %s", r.State)
	}
	if r := must(e.svc.Approve(bg, Dave, id, "security"))(t); r.State != approval.StateApproved {
		t.Fatalf("approvals from both groups: %s", r.State)
	}
	// A reviewer in both groups fills whichever group is missing.
	id2 := must(e.svc.Check(bg, Call(Alice, "ft", set, "b2")))(t).ApprovalID
	must(e.svc.Approve(bg, Erin, id2, "both groups"))(t)
	if r := must(e.svc.Approve(bg, Bob, id2, "lead"))(t); r.State != approval.StateApproved {
		t.Fatalf("erin (both) + bob (leads): %s", r.State)
	}
	id3 := must(e.svc.Check(bg, Call(Alice, "ft", set, "b3")))(t).ApprovalID
	must(e.svc.Approve(bg, Erin, id3, "both groups"))(t)
	if r := must(e.svc.Approve(bg, Reviewer("frank", "ml-leads", "security"), id3, "both too"))(t); r.State != approval.StateApproved {
		t.Fatalf("two reviewers in both groups: %s", r.State)
	}
}

func testDenyWins(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	set.MinApprovals = 2
	id := must(e.svc.Check(bg, Call(Alice, "ft", set, "b")))(t).ApprovalID
	must(e.svc.Approve(bg, Bob, id, "fine"))(t)
	r := must(e.svc.Deny(bg, Carol, id, "dataset has PII"))(t)
	if r.State != approval.StateDenied || r.Reason != "dataset has PII" {
		t.Fatalf("after deny: %s %q", r.State, r.Reason)
	}
	_, err := e.svc.Approve(bg, Erin, id, "late approval")
	wantCode(t, err, approval.CodeConflict)
	if o := must(e.svc.Check(bg, Call(Alice, "ft", set, "b")))(t); o.Decision != approval.Denied || o.ApprovalID != id {
		t.Fatalf("call after deny: %+v", o)
	}
	// Once approved, a late deny changes nothing.
	set.MinApprovals = 1
	id2 := must(e.svc.Check(bg, Call(Alice, "ft", set, "b2")))(t).ApprovalID
	must(e.svc.Approve(bg, Bob, id2, "ok"))(t)
	_, err = e.svc.Deny(bg, Carol, id2, "too late")
	wantCode(t, err, approval.CodeConflict)
	wantKinds(t, e.log, id, approval.KindRequested, approval.KindReviewed, approval.KindReviewed, approval.KindDenied)
}

func testCancel(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	id := must(e.svc.Check(bg, Call(Alice, "ft", set, "b")))(t).ApprovalID
	_, err := e.svc.Cancel(bg, Bob, id, "")
	wantCode(t, err, approval.CodeForbidden)
	if r := must(e.svc.Cancel(bg, Alice, id, ""))(t); r.State != approval.StateCancelled {
		t.Fatalf("cancel: %s", r.State)
	}
	_, err = e.svc.Approve(bg, Bob, id, "late")
	wantCode(t, err, approval.CodeConflict)
	// A cancelled request does not block a new identical one.
	if o := must(e.svc.Check(bg, Call(Alice, "ft", set, "b")))(t); o.Decision != approval.Pending || o.ApprovalID == id {
		t.Fatalf("after cancel: %+v", o)
	}
	wantKinds(t, e.log, id, approval.KindRequested, approval.KindCancelled)
}

func testExpiryRequests(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	set.TTL = time.Hour
	a := must(e.svc.Check(bg, Call(Alice, "ft", set, "a")))(t).ApprovalID
	b := must(e.svc.Check(bg, Call(Alice, "ft", set, "b")))(t).ApprovalID
	c := must(e.svc.Check(bg, Call(Alice, "ft", set, "c")))(t).ApprovalID
	must(e.svc.Approve(bg, Bob, c, "ok"))(t) // approved, never used
	e.clock.Advance(61 * time.Minute)
	// Lazily, on read.
	if r := must(e.svc.Get(bg, a))(t); r.State != approval.StateExpired {
		t.Fatalf("read after TTL: %s", r.State)
	}
	// Reviewing an expired request fails, and records the expiry.
	_, err := e.svc.Approve(bg, Bob, b, "too late")
	wantCode(t, err, approval.CodeConflict)
	if r := must(e.store.Get(bg, b))(t); r.State != approval.StateExpired {
		t.Fatalf("b after late review: %s", r.State)
	}
	// The approved-but-unused one is expired by the sweeper.
	if n := must(e.svc.Sweep(bg))(t); n != 1 {
		t.Fatalf("sweep expired %d, want 1", n)
	}
	if r := must(e.store.Get(bg, c))(t); r.State != approval.StateExpired {
		t.Fatalf("c after sweep: %s", r.State)
	}
	if o := must(e.svc.Check(bg, Call(Alice, "ft", set, "c")))(t); o.Decision != approval.Pending || o.ApprovalID == c {
		t.Fatalf("expired approval was used: %+v", o)
	}
	wantKinds(t, e.log, a, approval.KindRequested, approval.KindExpired)
	wantKinds(t, e.log, b, approval.KindRequested, approval.KindExpired)
	wantKinds(t, e.log, c, approval.KindRequested, approval.KindReviewed, approval.KindApproved, approval.KindExpired)
	if n := must(e.svc.Sweep(bg))(t); n != 0 {
		t.Fatalf("second sweep expired %d", n)
	}
}

func testExpiryGrants(t *testing.T, e *env) {
	set := Grant(policy.ApprovalAsync)
	set.GrantDuration = time.Hour
	r := must(e.svc.RequestGrant(bg, Alice, approval.GrantRequest{SettingName: "ft", Setting: set, Justification: "on call"}))(t)
	must(e.svc.Approve(bg, Bob, r.ID, "ok"))(t)
	if o := must(e.svc.Check(bg, Call(Alice, "ft", set, "x")))(t); o.Decision != approval.Proceed {
		t.Fatalf("under grant: %+v", o)
	}
	e.clock.Advance(time.Hour)
	if gs := must(e.svc.ActiveGrants(bg, Alice))(t); len(gs) != 0 {
		t.Fatalf("grants after duration: %v", gs)
	}
	if n := must(e.svc.Sweep(bg))(t); n != 1 {
		t.Fatalf("sweep expired %d, want 1", n)
	}
	if o := must(e.svc.Check(bg, Call(Alice, "ft", set, "x")))(t); o.Decision == approval.Proceed {
		t.Fatalf("expired grant used: %+v", o)
	}
	wantKinds(t, e.log, r.ID, approval.KindRequested, approval.KindReviewed, approval.KindApproved, approval.KindGrantOn, approval.KindGrantOff)
}

func testConcurrentReviews(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	set.MinApprovals = 3
	// Reviews alternate between this service and a second one on its own
	// store handle (another replica).
	other := e.service(e.open(t))
	svcs := []*approval.Service{e.svc, other}
	for round := range 3 {
		id := must(e.svc.Check(bg, Call(Alice, "ft", set, fmt.Sprint("race", round))))(t).ApprovalID
		const n = 12
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := map[approval.Verdict]int{}
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := approval.VerdictApprove
				if i%4 == 3 && round != 2 { // round 2: approvals only
					v = approval.VerdictDeny
				}
				_, err := svcs[i%2].Review(bg, Reviewer(fmt.Sprint("rev", i), "ml-leads"), id, v, "r")
				if err != nil && approval.CodeOf(err) != approval.CodeConflict {
					t.Errorf("review %d: %v", i, err)
				}
				if err == nil {
					mu.Lock()
					ok[v]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		r := must(e.svc.Get(bg, id))(t)
		kinds := e.log.Kinds(t, id)
		count := func(k string) int {
			c := 0
			for _, x := range kinds {
				if x == k {
					c++
				}
			}
			return c
		}
		terminal := count(approval.KindApproved) + count(approval.KindDenied)
		if terminal != 1 {
			t.Fatalf("round %d: %d terminal entries: %v", round, terminal, kinds)
		}
		if count(approval.KindReviewed) != len(r.Reviews) || len(r.Reviews) != ok[approval.VerdictApprove]+ok[approval.VerdictDeny] {
			t.Fatalf("round %d: %d reviewed entries, %d stored reviews, %v accepted", round, count(approval.KindReviewed), len(r.Reviews), ok)
		}
		switch r.State {
		case approval.StateApproved:
			if ok[approval.VerdictApprove] != 3 || count(approval.KindApproved) != 1 || r.Reviews[len(r.Reviews)-1].Verdict != approval.VerdictApprove {
				t.Fatalf("round %d approved with %v", round, ok)
			}
		case approval.StateDenied:
			if ok[approval.VerdictDeny] != 1 || ok[approval.VerdictApprove] > 2 {
				t.Fatalf("round %d denied with %v", round, ok)
			}
		default:
			t.Fatalf("round %d: final state %s", round, r.State)
		}
		if round == 2 && r.State != approval.StateApproved {
			t.Fatalf("approvals only, but %s", r.State)
		}
	}
}

func testConcurrentUse(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	call := Call(Alice, "ft", set, "once")
	id := must(e.svc.Check(bg, call))(t).ApprovalID
	must(e.svc.Approve(bg, Bob, id, "ok"))(t)
	svcs := []*approval.Service{e.svc, e.service(e.open(t))} // two replicas
	const n = 10
	outs := make([]approval.Outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := call
			c.RequestID = fmt.Sprint("req-", i)
			o, err := svcs[i%2].Check(bg, c)
			if err != nil {
				t.Errorf("check %d: %v", i, err)
			}
			outs[i] = o
		}()
	}
	wg.Wait()
	proceed, pendingIDs := 0, map[string]bool{}
	for _, o := range outs {
		switch o.Decision {
		case approval.Proceed:
			proceed++
			if o.ApprovalID != id {
				t.Fatalf("proceeded under %s", o.ApprovalID)
			}
		case approval.Pending:
			pendingIDs[o.ApprovalID] = true
		}
	}
	if proceed != 1 {
		t.Fatalf("%d calls proceeded on one one-time approval", proceed)
	}
	if len(pendingIDs) != 1 {
		t.Fatalf("the other identical calls opened %d requests, want 1", len(pendingIDs))
	}
	wantKinds(t, e.log, id, approval.KindRequested, approval.KindReviewed, approval.KindApproved, approval.KindUsed)
}

func testRestart(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	set.MinApprovals = 2
	call := Call(Alice, "ft", set, "b")
	id := must(e.svc.Check(bg, call))(t).ApprovalID
	must(e.svc.Approve(bg, Bob, id, "first"))(t)
	if c, ok := e.store.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	st := e.open(t)
	svc := e.service(st)
	r := must(svc.Get(bg, id))(t)
	if r.State != approval.StatePending || len(r.Reviews) != 1 {
		t.Fatalf("after restart: %s with %d reviews", r.State, len(r.Reviews))
	}
	if o := must(svc.Check(bg, call))(t); o.Decision != approval.Pending || o.ApprovalID != id {
		t.Fatalf("retry after restart: %+v", o)
	}
	_, err := svc.Approve(bg, Bob, id, "again")
	wantCode(t, err, approval.CodeConflict)
	must(svc.Approve(bg, Carol, id, "second"))(t)
	if o := must(svc.Check(bg, call))(t); o.Decision != approval.Proceed {
		t.Fatalf("after approval: %+v", o)
	}
}

// testReplicas: a call held on replica A is released when approved
// through replica B. If the store is a Watcher, A's poll interval is an
// hour, so only the change feed can wake it.
func testReplicas(t *testing.T, e *env) {
	stB := e.open(t)
	cfgA := e.cfg
	if _, ok := e.store.(approval.Watcher); ok {
		cfgA.PollInterval = time.Hour
	}
	a := approval.New(e.store, e.log, approval.WithConfig(cfgA), approval.WithClock(e.clock.Now), approval.WithInstance("replica-a"))
	b := approval.New(stB, e.log, approval.WithConfig(e.cfg), approval.WithClock(e.clock.Now), approval.WithInstance("replica-b"))
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, s := range []*approval.Service{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(ctx) }()
	}
	set := OneTime(policy.ApprovalHold)
	call := Call(Alice, "ft", set, "replicated")
	out := must(a.Check(bg, call))(t)
	if w, ok := e.store.(interface{ WaitListening(context.Context) error }); ok {
		if err := w.WaitListening(ctx); err != nil {
			t.Fatal(err)
		}
	}
	hctx, hcancel := context.WithTimeout(bg, 60*time.Second)
	defer hcancel()
	done := make(chan approval.Outcome, 1)
	go func() {
		o, err := a.Hold(hctx, call, out.ApprovalID)
		if err != nil {
			t.Error(err)
		}
		done <- o
	}()
	// B sees A's request and approves it.
	if r := must(b.Get(bg, out.ApprovalID))(t); r.State != approval.StatePending {
		t.Fatalf("B sees %s", r.State)
	}
	must(b.Approve(bg, Bob, out.ApprovalID, "approved on B"))(t)
	o := <-done
	if o.Decision != approval.Proceed || o.ApprovalID != out.ApprovalID {
		t.Fatalf("A's hold: %+v (hold ctx err %v)", o, hctx.Err())
	}
	es := e.log.Entries(t, out.ApprovalID)
	if len(es) != 4 || es[0].Instance != "replica-a" || es[2].Instance != "replica-b" || es[3].Instance != "replica-a" {
		t.Fatalf("entries: %d", len(es))
	}
	// Revocation through B takes effect on A's next call.
	gset := Grant(policy.ApprovalAsync)
	g := must(a.RequestGrant(bg, Alice, approval.GrantRequest{SettingName: "ft", Setting: gset, Justification: "x"}))(t)
	must(b.Approve(bg, Bob, g.ID, "ok"))(t)
	if gs := must(a.ActiveGrants(bg, Alice))(t); len(gs) != 1 {
		t.Fatalf("A does not see the grant approved on B")
	}
	must(b.Revoke(bg, Bob, g.ID, "stop"))(t)
	if gs := must(a.ActiveGrants(bg, Alice))(t); len(gs) != 0 {
		t.Fatalf("A still sees the grant revoked on B")
	}
	if o := must(a.Check(bg, Call(Alice, "ft", gset, "z")))(t); o.Decision == approval.Proceed {
		t.Fatalf("A let a call through under a revoked grant")
	}
}

func testAuditFailure(t *testing.T, e *env) {
	set := OneTime(policy.ApprovalAsync)
	id := must(e.svc.Check(bg, Call(Alice, "ft", set, "a")))(t).ApprovalID
	e.log.Close()
	// No request is opened without its audit entry.
	if _, err := e.svc.Check(bg, Call(Alice, "ft", set, "b")); err == nil {
		t.Fatal("check succeeded with the audit log closed")
	}
	if l := must(e.store.List(bg, approval.Filter{}))(t); len(l) != 1 {
		t.Fatalf("%d requests stored, want 1", len(l))
	}
	// No transition without its audit entry.
	if _, err := e.svc.Approve(bg, Bob, id, "ok"); err == nil {
		t.Fatal("approve succeeded with the audit log closed")
	}
	if r := must(e.store.Get(bg, id))(t); r.State != approval.StatePending || len(r.Reviews) != 0 {
		t.Fatalf("after failed approve: %s, %d reviews", r.State, len(r.Reviews))
	}
}
