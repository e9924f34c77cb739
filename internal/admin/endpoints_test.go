package admin_test

import (
	"os"

	"github.com/wardenhq/warden/internal/admin"
	"strings"
	"testing"
	"time"
)

// call is one request of the table.
type call struct {
	method, path, user, body string
	status                   int
	typ                      string
}

// endpointCase says, for one route, what it answers without credentials,
// to a caller without its role, and to bad input. An empty call (status
// 0) means "not applicable" and says why in the note.
type endpointCase struct {
	path      string // the route's path with ids filled in
	noCreds   call
	wrongRole call
	badInput  []call
	note      string
}

// TestEveryEndpoint is the acceptance table of the admin API: every
// registered endpoint is called without credentials, with a wrong role
// and with bad input; every error answer has the single shape with a
// request_id equal to X-Request-Id. A route missing from the table, or
// a row without a route, fails the test: new endpoints cannot skip it.
func TestEveryEndpoint(t *testing.T) {
	// With the approver role configured, so that approve and deny have a
	// role to check (unset, the request's reviewer groups decide: see
	// TestApproverRole).
	e := newEnv(t, func(o *admin.Options) { o.Config.Roles.Approver = []string{"ml-leads"} })
	grant := e.pendingGrant()
	_, key, err := e.keys.Create("batch", []string{"ml-services"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	unauth := call{status: 401, typ: "unauthenticated"}
	auditor := call{user: "alice", status: 403, typ: "forbidden"}
	admin := call{user: "dan", status: 403, typ: "forbidden"} // an auditor is not an admin
	notVisible := call{user: "mallory", status: 404, typ: "not_found"}
	cases := map[string]endpointCase{
		"GET /.well-known/warden/jwks.json": {path: "/.well-known/warden/jwks.json", noCreds: call{status: 200},
			note: "public, without input"},
		"GET /v1/audit/entries": {path: "/v1/audit/entries", noCreds: unauth, wrongRole: auditor, badInput: []call{
			{path: "/v1/audit/entries?from=yesterday", status: 400, typ: "bad_request"},
			{path: "/v1/audit/entries?limit=-1", status: 400, typ: "bad_request"},
			{path: "/v1/audit/entries?desc=maybe", status: 400, typ: "bad_request"},
		}},
		"GET /v1/audit/entries/{seq}": {path: "/v1/audit/entries/0", noCreds: unauth, wrongRole: auditor, badInput: []call{
			{path: "/v1/audit/entries/x", status: 400, typ: "bad_request"},
			{path: "/v1/audit/entries/-3", status: 400, typ: "bad_request"},
			{path: "/v1/audit/entries/99999", status: 404, typ: "not_found"},
		}},
		"GET /v1/audit/consistency": {path: "/v1/audit/consistency?from=1", noCreds: unauth, wrongRole: auditor, badInput: []call{
			{path: "/v1/audit/consistency?from=0", status: 400, typ: "bad_request"},
			{path: "/v1/audit/consistency?from=1&to=99999", status: 400, typ: "bad_request"},
			{path: "/v1/audit/consistency?from=a", status: 400, typ: "bad_request"},
		}},
		"GET /v1/audit/counts": {path: "/v1/audit/counts?by=kind", noCreds: unauth, wrongRole: auditor, badInput: []call{
			{path: "/v1/audit/counts?by=colour", status: 400, typ: "bad_request"},
			{path: "/v1/audit/counts?from=yesterday", status: 400, typ: "bad_request"},
			{path: "/v1/audit/counts?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", status: 400, typ: "bad_request"},
		}},
		"GET /v1/audit/kinds":       {path: "/v1/audit/kinds", noCreds: unauth, wrongRole: auditor, note: "no input"},
		"GET /v1/audit/checkpoints": {path: "/v1/audit/checkpoints", noCreds: unauth, wrongRole: auditor, note: "no input"},
		"GET /v1/audit/checkpoint":  {path: "/v1/audit/checkpoint", noCreds: unauth, wrongRole: auditor, note: "no input"},
		"GET /v1/report": {path: "/v1/report?from=2020-01-01&to=2100-01-01", noCreds: unauth, wrongRole: auditor, badInput: []call{
			{path: "/v1/report?from=yesterday&to=2100-01-01", status: 400, typ: "bad_request"},
			{path: "/v1/report?from=2020-01-01&to=2100-01-01&format=doc", status: 400, typ: "bad_request"},
			{path: "/v1/report?from=2100-01-01&to=2020-01-01", status: 400, typ: "bad_request"},
			{path: "/v1/report?from=2020-01-01&to=2100-01-01&seed=-1", status: 400, typ: "bad_request"},
		}},
		"GET /v1/policy": {path: "/v1/policy", noCreds: unauth, wrongRole: auditor, note: "no input"},
		"GET /v1/policy/versions": {path: "/v1/policy/versions", noCreds: unauth, wrongRole: auditor, badInput: []call{
			{path: "/v1/policy/versions?limit=0", status: 400, typ: "bad_request"},
		}},
		"POST /v1/policy/reload": {path: "/v1/policy/reload", noCreds: unauth, wrongRole: admin, badInput: []call{
			{path: "/v1/policy/reload", user: "erin", body: "broken-policy", status: 422, typ: "invalid_policy"},
		}},
		"GET /v1/approvals": {path: "/v1/approvals", noCreds: unauth, note: "any authenticated caller; each sees only their own and reviewable requests",
			badInput: []call{
				{path: "/v1/approvals?state=bogus", status: 400, typ: "bad_request"},
				{path: "/v1/approvals?kind=x", status: 400, typ: "bad_request"},
				{path: "/v1/approvals?limit=1001", status: 400, typ: "bad_request"},
			}},
		"POST /v1/approvals": {path: "/v1/approvals", noCreds: unauth, note: "anyone may request a grant", badInput: []call{
			{body: `{"setting":"ft","justification":"x","admin":true}`, status: 400, typ: "bad_request"},
			{body: `{"setting":"zz","justification":"x"}`, status: 400, typ: "bad_request"},
			{body: `{"setting":"once","justification":"x"}`, status: 400, typ: "bad_request"},
			{body: `{"setting":"ft","justification":"x","duration":"forever"}`, status: 400, typ: "bad_request"},
			{body: `{"setting":"ft"`, status: 400, typ: "bad_request"},
			{body: `{"setting":"ft"} {}`, status: 400, typ: "bad_request"},
			{body: `{"setting":"ft","justification":"` + strings.Repeat("x", 70<<10) + `"}`, status: 413, typ: "request_too_large"},
		}},
		"GET /v1/approvals/{id}": {path: "/v1/approvals/" + grant, noCreds: unauth, wrongRole: notVisible, badInput: []call{
			{path: "/v1/approvals/nope", status: 404, typ: "not_found"},
		}},
		"POST /v1/approvals/{id}/approve": {path: "/v1/approvals/" + grant + "/approve", noCreds: unauth,
			wrongRole: call{user: "mallory", body: `{"reason":"x"}`, status: 403, typ: "forbidden"}, badInput: []call{
				{user: "bob", body: `{}`, status: 400, typ: "bad_request"},
				{user: "bob", body: ``, status: 400, typ: "bad_request"},
				{user: "bob", body: `[`, status: 400, typ: "bad_request"},
				{user: "alice-all", body: `{"reason":"mine"}`, status: 403, typ: "forbidden"},
			}},
		"POST /v1/approvals/{id}/deny": {path: "/v1/approvals/" + grant + "/deny", noCreds: unauth,
			wrongRole: call{user: "dan", body: `{"reason":"x"}`, status: 403, typ: "forbidden"}, badInput: []call{
				{user: "bob", body: `{"reason":7}`, status: 400, typ: "bad_request"},
				{path: "/v1/approvals/nope/deny", user: "bob", body: `{"reason":"x"}`, status: 404, typ: "not_found"},
			}},
		"POST /v1/approvals/{id}/cancel": {path: "/v1/approvals/" + grant + "/cancel", noCreds: unauth,
			wrongRole: call{user: "mallory", status: 404, typ: "not_found"}, badInput: []call{
				{user: "alice", body: `{"reason":`, status: 400, typ: "bad_request"},
				{user: "bob", body: ``, status: 403, typ: "forbidden"}, // a reviewer, not the requester
			}},
		"GET /v1/grants": {path: "/v1/grants", noCreds: unauth, note: "any authenticated caller sees their own grants; no input"},
		"POST /v1/grants/{id}/revoke": {path: "/v1/grants/" + grant + "/revoke", noCreds: unauth,
			wrongRole: call{user: "mallory", body: `{"reason":"x"}`, status: 404, typ: "not_found"}, badInput: []call{
				{user: "alice", body: `{}`, status: 400, typ: "bad_request"},
				{user: "alice", body: `{"reason":"x"}`, status: 409, typ: "conflict"}, // still pending
			}},
		"GET /v1/recordings/{request_id}": {path: "/v1/recordings/req-1", noCreds: unauth, wrongRole: auditor, badInput: []call{
			{path: "/v1/recordings/nope", status: 404, typ: "not_found"},
			{path: "/v1/recordings/" + strings.Repeat("r", 300), status: 400, typ: "bad_request"},
		}},
		"GET /v1/recordings/{request_id}/content": {path: "/v1/recordings/req-1/content", noCreds: unauth, wrongRole: auditor, badInput: []call{
			{path: "/v1/recordings/nope/content", status: 404, typ: "not_found"},
		}},
		"POST /v1/recordings/erase": {path: "/v1/recordings/erase", noCreds: unauth, wrongRole: admin, badInput: []call{
			{user: "erin", body: `{}`, status: 400, typ: "bad_request"},
			{user: "erin", body: `{"principal":"alice"}`, status: 400, typ: "bad_request"},
			{user: "erin", body: `{"principal":"alice","reason":"r","before":"yesterday"}`, status: 400, typ: "bad_request"},
			{user: "erin", body: `{"principal":"alice","reason":"r","all":true}`, status: 400, typ: "bad_request"},
		}},
		"GET /v1/export/status": {path: "/v1/export/status", noCreds: unauth, wrongRole: auditor, note: "no input"},
		"GET /v1/keys":          {path: "/v1/keys", noCreds: unauth, wrongRole: admin, note: "no input"},
		"POST /v1/keys": {path: "/v1/keys", noCreds: unauth, wrongRole: admin, badInput: []call{
			{user: "erin", body: `{"name":"has space"}`, status: 400, typ: "bad_request"},
			{user: "erin", body: `{"name":"` + strings.Repeat("n", 65) + `"}`, status: 400, typ: "bad_request"},
			{user: "erin", body: `{"name":"ok","groups":["a\nb"]}`, status: 400, typ: "bad_request"},
			{user: "erin", body: `{"name":"ok","expires":"-1h"}`, status: 400, typ: "bad_request"},
			{user: "erin", body: `{"name":"ok","key":"wk_chosen"}`, status: 400, typ: "bad_request"},
		}},
		"POST /v1/keys/{id}/revoke": {path: "/v1/keys/" + key.ID + "/revoke", noCreds: unauth, wrongRole: admin, badInput: []call{
			{path: "/v1/keys/XYZ/revoke", user: "erin", status: 400, typ: "bad_request"},
			{path: "/v1/keys/0123456789abcdef/revoke", user: "erin", status: 404, typ: "not_found"},
		}},
	}

	routes := map[string]bool{}
	for _, r := range e.rt.Routes() {
		key := r.Method + " " + r.Path
		routes[key] = true
		if _, ok := cases[key]; !ok {
			t.Errorf("endpoint %s is not in the acceptance table", key)
		}
	}
	for key := range cases {
		if !routes[key] {
			t.Errorf("table row %s has no endpoint", key)
		}
	}

	check := func(t *testing.T, what string, c call) {
		t.Helper()
		if c.body == "broken-policy" {
			good, _ := os.ReadFile(e.polFile)
			if err := os.WriteFile(e.polFile, []byte("version: 1\nrules:\n  - name: x\n    when: request.nope ==\n    action: allow\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(e.polFile, good, 0o600) //nolint:errcheck
			c.body = ""
		}
		a := e.do(c.method, c.path, c.user, c.body)
		if a.status != c.status {
			t.Fatalf("%s: %s %s as %q: %d, want %d: %s", what, c.method, c.path, c.user, a.status, c.status, a.body)
		}
		if a.header.Get("X-Request-Id") == "" {
			t.Fatalf("%s: no X-Request-Id", what)
		}
		if c.status >= 400 {
			if typ := a.errorType(t); typ != c.typ {
				t.Fatalf("%s: %s %s: type %q, want %q: %s", what, c.method, c.path, typ, c.typ, a.body)
			}
			if c.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("%s: 401 without WWW-Authenticate", what)
			}
		}
	}
	for _, r := range e.rt.Routes() {
		key := r.Method + " " + r.Path
		tc, ok := cases[key]
		if !ok {
			continue
		}
		t.Run(key, func(t *testing.T) {
			fill := func(c call) call {
				if c.method == "" {
					c.method = r.Method
				}
				if c.path == "" {
					c.path = tc.path
				}
				return c
			}
			check(t, "no credentials", fill(tc.noCreds))
			// A malformed credential and a wrong one are refused the same way.
			if r.Role != "public" {
				check(t, "malformed credential", fill(call{user: "raw:Basic YWxpY2U6cHc=", status: 400, typ: "invalid_request"}))
				check(t, "forged token", fill(call{user: "raw:Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.", status: 401, typ: "invalid_token"}))
			}
			if tc.wrongRole.status != 0 {
				check(t, "wrong role", fill(tc.wrongRole))
			} else if tc.note == "" {
				t.Fatal("no wrong-role case and no note saying why")
			}
			for _, c := range tc.badInput {
				if c.user == "" {
					c.user = map[string]string{"auditor": "dan", "admin": "erin", "approver": "bob", "authenticated": "alice", "public": ""}[string(r.Role)]
				}
				check(t, "bad input", fill(c))
			}
			if len(tc.badInput) == 0 && tc.note == "" {
				t.Fatal("no bad-input case and no note saying why")
			}
			// A method the endpoint does not serve.
			a := e.do("DELETE", tc.path, "erin", "")
			if a.status != 405 || a.errorType(t) != "method_not_allowed" || !strings.Contains(a.header.Get("Allow"), r.Method) {
				t.Fatalf("DELETE: %d %s (Allow %q)", a.status, a.body, a.header.Get("Allow"))
			}
		})
	}
	// The policy was restored after the broken reload.
	if a := e.do("POST", "/v1/policy/reload", "erin", ""); a.status != 200 {
		t.Fatalf("reload of the restored policy: %d %s", a.status, a.body)
	}
	_ = time.Second
}
