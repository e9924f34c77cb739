package console_test

import (
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
)

// TestUnauthenticatedRedirectsToLogin: every page without a session
// sends the browser to the login, keeping where it was going.
func TestUnauthenticatedRedirectsToLogin(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	c.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, path := range []string{"/ui/", "/ui/search?principal=alice", "/ui/entry/0", "/ui/approvals", "/ui/search.csv"} {
		p := c.get(path)
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login?next="+url.QueryEscape(path) {
			t.Errorf("GET %s: %d Location %q", path, p.status, p.header.Get("Location"))
		}
	}
	// A POST without a session is refused, never acted on.
	p := c.post("/ui/approvals/"+e.grantID+"/approve", url.Values{"reason": {"x"}})
	if p.status != http.StatusUnauthorized {
		t.Errorf("POST without session: %d", p.status)
	}
	// The login itself goes to the issuer with PKCE (S256) and a nonce.
	p = c.get("/ui/login?next=/ui/search")
	loc, _ := url.Parse(p.header.Get("Location"))
	q := loc.Query()
	if p.status != http.StatusSeeOther || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("nonce") == "" || q.Get("state") == "" || q.Get("client_id") != "warden-console" {
		t.Fatalf("login redirect %d %s", p.status, loc)
	}
}

// TestLoginSessionCookie: the real code flow logs bob in, lands on the
// page he asked for, and the session cookie has the right flags.
func TestLoginSessionCookie(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	var setCookie []string
	c.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.Response != nil {
			setCookie = append(setCookie, req.Response.Header.Values("Set-Cookie")...)
		}
		return nil
	}
	p := c.login("bob", "/ui/search?principal=alice")
	if p.status != 200 || !strings.HasSuffix(p.url, "/ui/search?principal=alice") || !strings.Contains(p.body, "Evidence search") {
		t.Fatalf("after login: %d %s", p.status, p.url)
	}
	var session string
	for _, sc := range setCookie {
		if strings.HasPrefix(sc, "warden_console=") && !strings.Contains(sc, "Max-Age=0") {
			session = sc
		}
	}
	for _, flag := range []string{"HttpOnly", "SameSite=Lax", "Path=/;", "Max-Age="} {
		if !strings.Contains(session, flag) {
			t.Errorf("session cookie %q lacks %s", session, flag)
		}
	}
	if strings.Contains(session, "Secure") {
		t.Errorf("Secure over plain HTTP would lose the cookie: %q", session)
	}
	if e.con.Sessions() != 1 {
		t.Fatalf("sessions %d", e.con.Sessions())
	}
	// The security headers on every page.
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
}

// TestLoginRefusesForgedCallback: a callback with a state this browser
// did not start, or a replayed one, logs nobody in.
func TestLoginRefusesForgedCallback(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	p := c.get("/ui/callback?code=abc&state=forged")
	if p.status != http.StatusBadRequest || e.con.Sessions() != 0 {
		t.Fatalf("forged callback: %d, %d sessions", p.status, e.con.Sessions())
	}
	if p := c.get("/ui/login?next=https://evil.example/"); p.status != 200 {
		t.Fatalf("login: %d", p.status)
	}
}

// TestWrongRole403: alice is no auditor: an HTML 403 page, not the data.
func TestWrongRole403(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	p := c.login("alice", "/ui/search?principal=alice")
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "auditor role") || strings.Contains(p.body, "req-denied-1") {
		t.Fatalf("alice on search: %d %s", p.status, p.body)
	}
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("403 page content type %q", ct)
	}
	// She may still open her approvals page: her own request, not
	// actionable.
	p = c.get("/ui/approvals")
	if p.status != 200 || !strings.Contains(p.body, e.grantID) || !strings.Contains(p.body, "Your own request") ||
		strings.Contains(p.body, "/ui/approvals/"+e.grantID+"/approve") {
		t.Fatalf("alice's inbox: %d %s", p.status, p.body)
	}
}

// TestCrossOriginPostRefused: a form posted from another site is refused
// before the console sees it, and changes nothing.
func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	c.login("bob", "/ui/approvals")
	p := c.post("/ui/approvals/"+e.grantID+"/approve", url.Values{"reason": {"csrf"}},
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if p.status != http.StatusForbidden {
		t.Fatalf("cross-origin POST: %d %s", p.status, p.body)
	}
	r, err := e.svc.Get(t.Context(), e.grantID)
	if err != nil || r.State != approval.StatePending || len(r.Reviews) != 0 {
		t.Fatalf("the request changed: %v %+v", err, r)
	}
}

// TestApproveNeedsReason: bob approves alice's grant from the inbox; an
// empty reason is refused first.
func TestApproveNeedsReason(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	p := c.login("bob", "/ui/approvals")
	if !strings.Contains(p.body, `action="/ui/approvals/`+e.grantID+`/approve"`) {
		t.Fatalf("bob's inbox has no approve form: %s", p.body)
	}
	p = c.post("/ui/approvals/"+e.grantID+"/approve", url.Values{"reason": {"  "}})
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "A reason is required") {
		t.Fatalf("empty reason: %d", p.status)
	}
	p = c.post("/ui/approvals/"+e.grantID+"/approve", url.Values{"reason": {"reviewed " + xssText}})
	if p.status != 200 || !strings.Contains(p.body, "approved") {
		t.Fatalf("approve: %d %s", p.status, p.body)
	}
	r, err := e.svc.Get(t.Context(), e.grantID)
	if err != nil || r.State != approval.StateApproved || r.Reviews[0].Reviewer.Subject != "bob" || r.Reviews[0].Reason != "reviewed "+xssText {
		t.Fatalf("after approve: %v %+v", err, r)
	}
	// Now an active grant, revocable by its reviewer.
	if !strings.Contains(p.body, `action="/ui/grants/`+e.grantID+`/revoke"`) {
		t.Fatalf("no revoke form: %s", p.body)
	}
	assertInert(t, "approvals after approve", p.body)
}

// TestLogoutInvalidatesServerSide: after logout the old cookie value no
// longer works, even replayed by hand.
func TestLogoutInvalidatesServerSide(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	c.login("bob", "/ui/")
	old := c.sessionCookie()
	if old == "" || e.con.Sessions() != 1 {
		t.Fatalf("no session: %q %d", old, e.con.Sessions())
	}
	if p := c.post("/ui/logout", nil); p.status != 200 || !strings.Contains(p.body, "Logged out") {
		t.Fatalf("logout: %d", p.status)
	}
	if e.con.Sessions() != 0 {
		t.Fatalf("sessions after logout: %d", e.con.Sessions())
	}
	replay := e.browser()
	replay.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest("GET", e.srv.URL+"/ui/search", nil)
	req.AddCookie(&http.Cookie{Name: "warden_console", Value: old})
	if p := replay.do(req); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/login") {
		t.Fatalf("old cookie after logout: %d %s", p.status, p.header.Get("Location"))
	}
}

// TestSearchAndDetail: bob finds alice's denied call and opens it: the
// decision, the identity and a verified inclusion proof.
func TestSearchAndDetail(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	denied, admitted, completed := entryLink(e.denied), entryLink(e.admitted), entryLink(e.completed)
	p := c.login("bob", "/ui/search?principal=alice&kind=request.denied")
	if p.status != 200 || !strings.Contains(p.body, denied) || strings.Contains(p.body, admitted) {
		t.Fatalf("search: %d %s", p.status, p.body)
	}
	p = c.get(strings.TrimSuffix(strings.TrimPrefix(denied, `href="`), `"`))
	if p.status != 200 || !strings.Contains(p.body, `id="proof-state">verified<`) || !strings.Contains(p.body, "deny-admin") {
		t.Fatalf("detail: %d %s", p.status, p.body)
	}
	assertInert(t, "detail", p.body)
	// The completed entry shows its masking actions (never values) and
	// the entries of the same request.
	p = c.get(strings.TrimSuffix(strings.TrimPrefix(completed, `href="`), `"`))
	if !strings.Contains(p.body, "EMAIL") || !strings.Contains(p.body, admitted) {
		t.Fatalf("completed detail: %s", p.body)
	}
	// Rule and outcome filters, and the exports.
	if p := c.get("/ui/search?rule=deny-admin"); !strings.Contains(p.body, denied) || strings.Contains(p.body, completed) {
		t.Fatalf("rule filter: %s", p.body)
	}
	csv := c.get("/ui/search.csv?principal=alice")
	if !strings.HasPrefix(csv.header.Get("Content-Type"), "text/csv") || !strings.Contains(csv.body, "req-denied-1") || strings.Count(csv.body, "\n") != 5 {
		t.Fatalf("csv: %s", csv.body)
	}
	jl := c.get("/ui/search.jsonl?kind=request.denied")
	if strings.Count(jl.body, "\n") != 1 || !strings.Contains(jl.body, `"kind":"request.denied"`) {
		t.Fatalf("jsonl: %s", jl.body)
	}
	if p := c.get("/ui/search?from=yesterday"); p.status != http.StatusBadRequest {
		t.Fatalf("bad from: %d", p.status)
	}
	if p := c.get("/ui/entry/99999"); p.status != http.StatusNotFound {
		t.Fatalf("missing entry: %d", p.status)
	}
	if p := c.get("/ui/"); p.status != 200 || !strings.Contains(p.body, "<svg") || !strings.Contains(p.body, "<rect") {
		t.Fatalf("overview: %d %s", p.status, p.body)
	}
}

func entryLink(seq int64) string { return `href="/ui/entry/` + strconv.FormatInt(seq, 10) + `"` }

// assertInert checks that no payload appears unescaped.
func assertInert(t *testing.T, where, body string) {
	t.Helper()
	for _, bad := range []string{"<script>window", "<img src=x", `onerror="window`, `href="javascript:`} {
		if strings.Contains(body, bad) {
			t.Errorf("%s: %q appears unescaped", where, bad)
		}
	}
	if !strings.Contains(body, "&lt;script&gt;") && !strings.Contains(body, `\u003cscript`) {
		t.Errorf("%s: the payload is not shown at all (escaped)", where)
	}
}

// TestReportWithSession: the report page's form goes to the admin API's
// GET /v1/report, which accepts the console session with the auditor
// role checked; without a session it is 401, for alice 403.
func TestReportWithSession(t *testing.T) {
	e := newEnv(t)
	c := e.browser()
	if p := c.get("/v1/report?from=2020-01-01&to=2100-01-01"); p.status != http.StatusUnauthorized {
		t.Fatalf("report without session: %d", p.status)
	}
	p := c.login("bob", "/ui/report")
	if p.status != 200 || !strings.Contains(p.body, `action="/v1/report"`) {
		t.Fatalf("report page: %d %s", p.status, p.body)
	}
	p = c.get("/v1/report?from=2020-01-01&to=2100-01-01&format=json")
	if p.status != 200 || !strings.HasPrefix(p.header.Get("Content-Type"), "application/json") || !strings.Contains(p.body, "denied") {
		t.Fatalf("report with bob's session: %d %.300s", p.status, p.body)
	}
	a := e.browser()
	a.login("alice", "/ui/")
	if p := a.get("/v1/report?from=2020-01-01&to=2100-01-01"); p.status != http.StatusForbidden {
		t.Fatalf("report for alice: %d", p.status)
	}
	// A POST to the API with the ambient cookie from another site is
	// refused by the router before authentication.
	if p := c.post("/v1/approvals/"+e.grantID+"/approve", url.Values{}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); p.status != http.StatusForbidden {
		t.Fatalf("cross-site API POST: %d", p.status)
	}
}

// TestPolicyPage: the rules in force and the history from the
// config.changed entries, with an attacker-controlled actor inert.
func TestPolicyPage(t *testing.T) {
	e := newEnv(t)
	if _, err := e.audit.Append(t.Context(), &audit.Entry{Kind: audit.KindConfigChanged, Details: map[string]any{
		"what": "policy", "actor": "admin:" + xssText, "old_version": "sha256:old", "new_version": "sha256:new", "applied": true}}); err != nil {
		t.Fatal(err)
	}
	c := e.browser()
	p := c.login("bob", "/ui/policy")
	if p.status != 200 || !strings.Contains(p.body, "deny-admin") || !strings.Contains(p.body, e.pol.Current().Version()) ||
		!strings.Contains(p.body, "sha256:new") {
		t.Fatalf("policy page: %d %s", p.status, p.body)
	}
	assertInert(t, "policy", p.body)
	a := e.browser()
	if p := a.login("alice", "/ui/policy"); p.status != http.StatusForbidden {
		t.Fatalf("policy page for alice: %d", p.status)
	}
}

// TestPolicyDiff: a reload whose config.changed entry carries both
// policy texts (decision 021) is listed with its diff summary, and the
// page diffs any two versions whose text the log holds, as escaped
// text; an unknown version is said so.
func TestPolicyDiff(t *testing.T) {
	e := newEnv(t)
	before := e.pol.Current()
	hostile := strings.Replace(testPolicy, "    action: deny\n", "    action: deny\n    reason: \"denied "+strings.ReplaceAll(xssText, `"`, `\"`)+"\"\n", 1)
	hostile = strings.Replace(hostile, "approvals:", "  - name: chat-new\n    when: request.path == \"/v1/chat\"\n    action: allow\n    mask: none\napprovals:", 1)
	if err := os.WriteFile(e.pol.Path(), []byte(hostile), 0o600); err != nil {
		t.Fatal(err)
	}
	ch, err := e.pol.Reload("admin:carol")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.audit.Append(t.Context(), &audit.Entry{Kind: audit.KindConfigChanged, Details: map[string]any{
		"what": "policy", "actor": "admin:carol", "old_version": ch.Old, "new_version": ch.New, "applied": true,
		"old_policy_source": string(before.Canonical()), "policy_source": string(ch.NewPolicy.Canonical())}}); err != nil {
		t.Fatal(err)
	}
	c := e.browser()
	p := c.login("bob", "/ui/policy")
	if p.status != 200 || !strings.Contains(p.body, "rules &#43;chat-new ~deny-admin") || !strings.Contains(p.body, "before entry") {
		t.Fatalf("policy page: %d %s", p.status, p.body)
	}
	p = c.get("/ui/policy?a=" + url.QueryEscape(ch.Old) + "&b=" + url.QueryEscape(ch.New))
	if p.status != 200 || !strings.Contains(p.body, `<pre class="diff"`) || !strings.Contains(p.body, "&#43;      &#34;name&#34;: &#34;chat-new&#34;,") ||
		!strings.Contains(p.body, "--- "+ch.Old) {
		t.Fatalf("diff: %d %s", p.status, p.body)
	}
	assertInert(t, "policy diff", p.body)
	p = c.get("/ui/policy?a=sha256:unknown&b=" + url.QueryEscape(ch.New))
	if p.status != 200 || !strings.Contains(p.body, "known by its hash only") {
		t.Fatalf("unknown version: %d %s", p.status, p.body)
	}
}
