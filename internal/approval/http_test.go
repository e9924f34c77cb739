package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/approval/approvaltest"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// tokens maps bearer tokens to principals for the handler's authn hook.
var tokens = map[string]*identity.Principal{
	"tok-alice":   approvaltest.AliceAdmin,
	"tok-bob":     approvaltest.Bob,
	"tok-carol":   approvaltest.Carol,
	"tok-mallory": approvaltest.Mallory,
}

func authn(r *http.Request) (*identity.Principal, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if p := tokens[tok]; ok && p != nil {
		return p, nil
	}
	return nil, errors.New("bad token")
}

func settings(name string) (*policy.ApprovalSetting, bool) {
	switch name {
	case "ft":
		return approvaltest.Grant(policy.ApprovalAsync), true
	case "once":
		return approvaltest.OneTime(policy.ApprovalAsync), true
	}
	return nil, false
}

type apiEnv struct {
	t   *testing.T
	srv *httptest.Server
	svc *approval.Service
	log *approvaltest.AuditLog
}

func newAPI(t *testing.T) *apiEnv {
	log := approvaltest.NewAuditLog(t)
	svc := approval.New(openStore(t), log)
	srv := httptest.NewServer(approval.NewHandler(svc, authn, settings, "http://admin.test:9090"))
	t.Cleanup(srv.Close)
	return &apiEnv{t: t, srv: srv, svc: svc, log: log}
}

// call does one API request and decodes the JSON answer.
func (a *apiEnv) call(method, path, token, body string) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		a.t.Fatalf("%s %s: non-JSON answer %q", method, path, b)
	}
	return resp.StatusCode, m
}

func errType(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

func TestHandlerGrantLifecycle(t *testing.T) {
	a := newAPI(t)
	steps := []struct {
		name, method, path, token, body string
		status                          int
		errType                         string
	}{
		{"no token", "GET", "/v1/approvals", "", "", 401, "unauthenticated"},
		{"bad token", "GET", "/v1/approvals", "nope", "", 401, "unauthenticated"},
		{"unknown setting", "POST", "/v1/approvals", "tok-alice", `{"setting":"zz","justification":"x"}`, 400, "invalid"},
		{"one-time setting", "POST", "/v1/approvals", "tok-alice", `{"setting":"once","justification":"x"}`, 400, "invalid"},
		{"no justification", "POST", "/v1/approvals", "tok-alice", `{"setting":"ft"}`, 400, "invalid"},
		{"unknown field", "POST", "/v1/approvals", "tok-alice", `{"setting":"ft","justification":"x","admin":true}`, 400, "invalid"},
		{"wider scope", "POST", "/v1/approvals", "tok-alice", `{"setting":"ft","justification":"x","scope":{"routes":["chat"]}}`, 400, "invalid"},
		{"bad duration", "POST", "/v1/approvals", "tok-alice", `{"setting":"ft","justification":"x","duration":"forever"}`, 400, "invalid"},
		{"unknown id", "GET", "/v1/approvals/nope", "tok-bob", "", 404, "not_found"},
		{"unknown endpoint", "GET", "/v1/approvals/x/y/z", "tok-bob", "", 404, "not_found"},
	}
	for _, s := range steps {
		st, m := a.call(s.method, s.path, s.token, s.body)
		if st != s.status || errType(m) != s.errType {
			t.Fatalf("%s: %d %v, want %d %s", s.name, st, m, s.status, s.errType)
		}
	}
	st, m := a.call("POST", "/v1/approvals", "tok-alice", `{"setting":"ft","justification":"incident 7","duration":"30m","scope":{"paths":["/v1/fine_tuning/jobs"]}}`)
	if st != 201 || m["state"] != "pending" || m["justification"] != "incident 7" {
		t.Fatalf("create: %d %v", st, m)
	}
	id := m["id"].(string)
	if m["review_url"] != "http://admin.test:9090/v1/approvals/"+id {
		t.Fatalf("review_url %v", m["review_url"])
	}
	for _, s := range []struct {
		name, method, path, token, body string
		status                          int
		errType                         string
	}{
		{"duplicate", "POST", "/v1/approvals", "tok-alice", `{"setting":"ft","justification":"again"}`, 409, "conflict"},
		{"self-approval by an admin", "POST", "/v1/approvals/" + id + "/approve", "tok-alice", `{"reason":"me"}`, 403, "forbidden"},
		{"invisible to others", "GET", "/v1/approvals/" + id, "tok-mallory", "", 404, "not_found"},
		{"no reason", "POST", "/v1/approvals/" + id + "/approve", "tok-bob", `{}`, 400, "invalid"},
		{"no body", "POST", "/v1/approvals/" + id + "/approve", "tok-bob", ``, 400, "invalid"},
		{"cancel by a reviewer", "POST", "/v1/approvals/" + id + "/cancel", "tok-bob", ``, 403, "forbidden"},
	} {
		st, m := a.call(s.method, s.path, s.token, s.body)
		if st != s.status || errType(m) != s.errType {
			t.Fatalf("%s: %d %v, want %d %s", s.name, st, m, s.status, s.errType)
		}
	}
	// The reviewer sees it in the pending list.
	st, m = a.call("GET", "/v1/approvals?state=pending", "tok-bob", "")
	if list := m["approvals"].([]any); st != 200 || len(list) != 1 || list[0].(map[string]any)["id"] != id {
		t.Fatalf("bob's pending list: %d %v", st, m)
	}
	if _, m = a.call("GET", "/v1/approvals", "tok-mallory", ""); len(m["approvals"].([]any)) != 0 {
		t.Fatalf("mallory sees %v", m)
	}
	st, m = a.call("POST", "/v1/approvals/"+id+"/approve", "tok-bob", `{"reason":"incident confirmed"}`)
	if st != 200 || m["state"] != "approved" || m["approvals"].(float64) != 1 {
		t.Fatalf("approve: %d %v", st, m)
	}
	st, m = a.call("POST", "/v1/approvals/"+id+"/deny", "tok-carol", `{"reason":"late"}`)
	if st != 409 {
		t.Fatalf("deny after approval: %d %v", st, m)
	}
	_, m = a.call("GET", "/v1/grants", "tok-alice", "")
	if gs := m["grants"].([]any); len(gs) != 1 || gs[0].(map[string]any)["scope"] != "ft" {
		t.Fatalf("alice's grants: %v", m)
	}
	if st, m = a.call("POST", "/v1/grants/"+id+"/revoke", "tok-mallory", `{"reason":"x"}`); st != 404 {
		t.Fatalf("revoke by a stranger: %d %v", st, m)
	}
	if st, m = a.call("POST", "/v1/grants/"+id+"/revoke", "tok-carol", `{"reason":"incident closed"}`); st != 200 || m["state"] != "revoked" {
		t.Fatalf("revoke: %d %v", st, m)
	}
	if _, m = a.call("GET", "/v1/grants", "tok-alice", ""); len(m["grants"].([]any)) != 0 {
		t.Fatalf("grants after revoke: %v", m)
	}
	// The call is refused on the next request.
	o, err := a.svc.Check(context.Background(), approvaltest.Call(approvaltest.AliceAdmin, "ft", approvaltest.Grant(policy.ApprovalAsync), "b"))
	if err != nil || o.Decision == approval.Proceed {
		t.Fatalf("check after revoke: %+v %v", o, err)
	}
	got := a.log.Kinds(t, id)
	want := []string{"approval.requested", "approval.reviewed", "approval.approved", "grant.active", "grant.revoked"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("audit: %v", got)
	}
}

func TestHandlerOneTimeDenyAndCancel(t *testing.T) {
	a := newAPI(t)
	set := approvaltest.OneTime(policy.ApprovalAsync)
	o1, err := a.svc.Check(context.Background(), approvaltest.Call(approvaltest.AliceAdmin, "once", set, "1"))
	if err != nil {
		t.Fatal(err)
	}
	o2, err := a.svc.Check(context.Background(), approvaltest.Call(approvaltest.AliceAdmin, "once", set, "2"))
	if err != nil {
		t.Fatal(err)
	}
	if st, m := a.call("POST", "/v1/approvals/"+o1.ApprovalID+"/deny", "tok-bob", `{"reason":"no"}`); st != 200 || m["state"] != "denied" || m["reason"] != "no" {
		t.Fatalf("deny: %d %v", st, m)
	}
	if st, m := a.call("POST", "/v1/approvals/"+o2.ApprovalID+"/cancel", "tok-alice", ``); st != 200 || m["state"] != "cancelled" {
		t.Fatalf("cancel: %d %v", st, m)
	}
	if st, m := a.call("POST", "/v1/grants/"+o1.ApprovalID+"/revoke", "tok-bob", `{"reason":"x"}`); st != 409 {
		t.Fatalf("revoke of a one-time approval: %d %v", st, m)
	}
	st, m := a.call("GET", "/v1/approvals?requester=alice&kind=one_time", "tok-alice", "")
	if st != 200 || len(m["approvals"].([]any)) != 2 {
		t.Fatalf("alice's list: %d %v", st, m)
	}
	if st, _ := a.call("GET", "/v1/approvals?state=bogus", "tok-alice", ""); st != 400 {
		t.Fatalf("bad state filter: %d", st)
	}
}
