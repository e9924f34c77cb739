package admin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/identity"
)

// TestApprovalsGrantLifecycle: request, refuse self-approval (even with
// every group), hide from strangers, approve, refuse a late deny, list
// grants, revoke; every transition is in the audit log. (The approvals
// API's former test, moved with the endpoints.)
func TestApprovalsGrantLifecycle(t *testing.T) {
	e := newEnv(t)
	a := e.do("POST", "/v1/approvals", "alice", `{"setting":"ft","justification":"incident 7","duration":"30m","scope":{"paths":["/v1/fine_tuning/jobs"]}}`)
	m := a.json(t)
	if a.status != 201 || m["state"] != "pending" || m["justification"] != "incident 7" {
		t.Fatalf("create: %d %v", a.status, m)
	}
	id := m["id"].(string)
	if m["review_url"] != "http://admin.test:9090/v1/approvals/"+id || a.header.Get("Location") != "/v1/approvals/"+id {
		t.Fatalf("review_url %v, Location %q", m["review_url"], a.header.Get("Location"))
	}
	for _, s := range []call{
		{"POST", "/v1/approvals", "alice", `{"setting":"ft","justification":"again"}`, 409, "conflict"},
		{"POST", "/v1/approvals/" + id + "/approve", "alice-all", `{"reason":"me"}`, 403, "forbidden"},
		{"POST", "/v1/approvals/" + id + "/approve", "alice", `{"reason":"me"}`, 403, "forbidden"},
		{"GET", "/v1/approvals/" + id, "mallory", "", 404, "not_found"},
		{"POST", "/v1/approvals/" + id + "/approve", "bob", `{}`, 400, "bad_request"},
		{"POST", "/v1/approvals/" + id + "/cancel", "bob", ``, 403, "forbidden"},
	} {
		if a := e.do(s.method, s.path, s.user, s.body); a.status != s.status || a.errorType(t) != s.typ {
			t.Fatalf("%s %s as %s: %d %s", s.method, s.path, s.user, a.status, a.body)
		}
	}
	a = e.do("GET", "/v1/approvals?state=pending", "bob", "")
	if list := a.json(t)["approvals"].([]any); a.status != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != id {
		t.Fatalf("bob's pending list: %d %s", a.status, a.body)
	}
	if list := e.do("GET", "/v1/approvals", "mallory", "").json(t)["approvals"].([]any); len(list) != 0 {
		t.Fatalf("mallory sees %v", list)
	}
	a = e.do("POST", "/v1/approvals/"+id+"/approve", "bob", `{"reason":"incident confirmed"}`)
	if m := a.json(t); a.status != 200 || m["state"] != "approved" || m["approvals"].(float64) != 1 {
		t.Fatalf("approve: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/approvals/"+id+"/deny", "carol", `{"reason":"late"}`); a.status != 409 || a.errorType(t) != "conflict" {
		t.Fatalf("deny after approval: %d %s", a.status, a.body)
	}
	gs := e.do("GET", "/v1/grants", "alice", "").json(t)["grants"].([]any)
	if len(gs) != 1 || gs[0].(map[string]any)["scope"] != "ft" {
		t.Fatalf("alice's grants: %v", gs)
	}
	if a := e.do("POST", "/v1/grants/"+id+"/revoke", "mallory", `{"reason":"x"}`); a.status != 404 {
		t.Fatalf("revoke by a stranger: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/grants/"+id+"/revoke", "carol", `{"reason":"incident closed"}`); a.status != 200 || a.json(t)["state"] != "revoked" {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	if gs := e.do("GET", "/v1/grants", "alice", "").json(t)["grants"].([]any); len(gs) != 0 {
		t.Fatalf("grants after revoke: %v", gs)
	}
	got := strings.Join(e.kinds(id), ",")
	// alice's two attempts to approve her own request are evidence too.
	if want := "approval.requested,approval.review_refused,approval.review_refused,approval.reviewed,approval.approved,grant.active,grant.revoked"; got != want {
		t.Fatalf("audit: %s, want %s", got, want)
	}
}

// TestApprovalsOneTime: deny and cancel of gateway-made requests; a
// one-time approval is not a grant to revoke.
func TestApprovalsOneTime(t *testing.T) {
	e := newEnv(t)
	alice := &identity.Principal{Issuer: e.issuerURL(), Subject: "alice", Kind: identity.KindUser, Groups: []string{"ml-engineers"}}
	set := e.policy.Current().Approvals()["once"]
	gate := func(body string) string {
		o, err := e.svc.Check(context.Background(), approval.GateRequest{Principal: alice, SettingName: "once", Setting: set,
			RequestID: "req-" + body, Method: "POST", Path: "/v1/fine_tuning/jobs", Route: "fine-tune", BodySHA256: body})
		if err != nil {
			t.Fatal(err)
		}
		return o.ApprovalID
	}
	o1, o2 := gate("1"), gate("2")
	if a := e.do("POST", "/v1/approvals/"+o1+"/deny", "bob", `{"reason":"no"}`); a.status != 200 || a.json(t)["state"] != "denied" || a.json(t)["reason"] != "no" {
		t.Fatalf("deny: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/approvals/"+o2+"/cancel", "alice", ``); a.status != 200 || a.json(t)["state"] != "cancelled" {
		t.Fatalf("cancel: %d %s", a.status, a.body)
	}
	if a := e.do("POST", "/v1/grants/"+o1+"/revoke", "bob", `{"reason":"x"}`); a.status != 409 {
		t.Fatalf("revoke of a one-time approval: %d %s", a.status, a.body)
	}
	a := e.do("GET", "/v1/approvals?requester=alice&kind=one_time", "alice", "")
	if a.status != 200 || len(a.json(t)["approvals"].([]any)) != 2 {
		t.Fatalf("alice's list: %d %s", a.status, a.body)
	}
}

// TestApproverRole: with admin.roles.approver set, a reviewer of the
// setting outside the role is refused (403) before the service looks;
// the role never lets a non-reviewer approve (the service's 403).
func TestApproverRole(t *testing.T) {
	e := newEnv(t, func(o *admin.Options) { o.Config.Roles.Approver = []string{"auditors"} })
	id := e.pendingGrant()
	a := e.do("POST", "/v1/approvals/"+id+"/approve", "bob", `{"reason":"ok"}`)
	if a.status != 403 || a.errorType(t) != "forbidden" || !strings.Contains(string(a.body), "approver role") {
		t.Fatalf("reviewer without the role: %d %s", a.status, a.body)
	}
	// dan holds the role but is no reviewer of "ft": he cannot even see it.
	if a := e.do("POST", "/v1/approvals/"+id+"/approve", "dan", `{"reason":"ok"}`); a.status != 404 {
		t.Fatalf("role without reviewer group: %d %s", a.status, a.body)
	}
	// Default (roles.approver unset): the reviewer groups frozen in each
	// request decide, even after a reload renames them in the policy.
	e2 := newEnv(t)
	id2 := e2.pendingGrant()
	if err := writePolicy(e2.polFile, strings.ReplaceAll(testPolicy, "ml-leads", "ml-reviewers")); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.policy.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if a := e2.do("POST", "/v1/approvals/"+id2+"/approve", "mallory", `{"reason":"ok"}`); a.status != 404 {
		t.Fatalf("a non-reviewer: %d %s", a.status, a.body)
	}
	if a := e2.do("POST", "/v1/approvals/"+id2+"/approve", "bob", `{"reason":"ok"}`); a.status != 200 {
		t.Fatalf("the request's reviewer after a reload: %d %s", a.status, a.body)
	}
}
