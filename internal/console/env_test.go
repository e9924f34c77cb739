package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/devstack"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// testPolicy has a grant setting reviewed by ml-approvers (bob, dave).
const testPolicy = `version: 1
rules:
  - name: deny-admin
    when: request.path.glob("/admin/**")
    action: deny
approvals:
  finetune:
    kind: grant
    mode: async
    reviewers: [ml-approvers]
    grant_duration: 2h
    scope: {routes: [openai], paths: ["/v1/fine_tuning/**"]}
`

// xss are attacker-controlled strings the pages must show inert.
var xss = []string{`<script>window.__xss=1</script>`, `"><img src=x onerror="window.__xss=1">`, `javascript:window.__xss=1`}

// xssText is every payload in one string.
var xssText = strings.Join(xss, " ")

type env struct {
	t   *testing.T
	srv *httptest.Server
	// handler is what srv serves; tests swap it with setHandler.
	handler atomic.Pointer[http.Handler]
	con     *console.Console
	audit   *audit.Log
	svc     *approval.Service
	pol     *policy.Engine
	issuer  *devstack.Issuer
	princ   map[string]*identity.Principal
	grantID string
	// seqs of the seeded denied, admitted and completed entries.
	denied, admitted, completed int64
	// dir is the data directory (audit keys under dir/keys).
	dir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	idp, idpURL := unstartedServer(t)
	issuer, err := devstack.NewIssuer(idpURL)
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = issuer.Handler()
	idp.Start()

	e := &env{t: t, issuer: issuer, princ: map[string]*identity.Principal{}, dir: dir}
	for _, u := range devstack.DemoUsers {
		e.princ[u.Name] = &identity.Principal{Issuer: idp.URL, Subject: u.Name, Kind: identity.KindUser, Groups: u.Groups}
	}
	polFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(polFile, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	if e.pol, err = policy.NewEngine(polFile); err != nil {
		t.Fatal(err)
	}
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	cfg.CheckpointEvery = 5
	cfg.CheckpointInterval = 200 * time.Millisecond
	signer, verifier, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "console-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if e.audit, err = audit.Open(ctx, st, cfg, signer, verifier, audit.WithLogger(slog.New(slog.DiscardHandler))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.audit.Close(context.Background()); st.Close() })
	ast, err := sqlite.OpenApprovals(ctx, filepath.Join(dir, "approvals.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ast.Close() })
	e.svc = approval.New(ast, e.audit)

	var srvURL string
	e.srv, srvURL = unstartedServer(t)
	e.con, err = console.New(console.Options{
		Config: console.Config{Issuer: idp.URL, ClientID: devstack.ConsoleClientID, PublicURL: srvURL},
		Roles:  console.Roles{Auditor: []string{"ml-admins", "ml-approvers"}, Admin: []string{"ml-admins"}},
		Audit:  e.audit, Approvals: e.svc, Policy: e.pol, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.setHandler(admin.New(admin.Options{Console: e.con, Audit: e.audit, Logger: slog.New(slog.DiscardHandler),
		Authenticators: []admin.Authenticator{e.con.Authenticator()},
		Config:         admin.Config{Roles: admin.Roles{Auditor: []string{"ml-admins", "ml-approvers"}, Admin: []string{"ml-admins"}}}}))
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*e.handler.Load()).ServeHTTP(w, r) })
	e.srv.Start()
	e.seed()
	return e
}

// setHandler makes e.srv serve h from its next request on. (Assigning
// srv.Config.Handler of a running server races with the connections it
// serves.)
func (e *env) setHandler(h http.Handler) { e.handler.Store(&h) }

// unstartedServer returns a test server that listens but serves nothing
// until the caller sets its handler and calls Start, and the URL it will
// have. Setting Config.Handler on a started server races with any
// connection it already accepted (the race detector caught one).
func unstartedServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	return srv, "http://" + srv.Listener.Addr().String()
}

// seed writes alice's denied call (with attacker-controlled parameters)
// and enough entries for a checkpoint, and opens alice's grant request
// with an attacker-controlled justification.
func (e *env) seed() {
	ctx := context.Background()
	entries := []*audit.Entry{
		{Kind: audit.KindRequestDenied, RequestID: "req-denied-1", Principal: e.princ["alice"], Route: "admin", Method: "GET",
			Path: "/admin/stats", Params: map[string]any{"prompt": xssText},
			Decision: &audit.Decision{Action: "deny", Rule: "deny-admin", PolicyVersion: "v1", Reason: xssText}},
		{Kind: audit.KindRequestAdmitted, RequestID: "req-ok-1", Principal: e.princ["alice"], Route: "openai", Model: "demo",
			Method: "POST", Path: "/v1/chat/completions", Decision: &audit.Decision{Action: "allow", Rule: "default"}},
		{Kind: audit.KindRequestCompleted, RequestID: "req-ok-1", Principal: e.princ["alice"], Route: "openai", Model: "demo",
			Status: 200, Outcome: "ok", Masking: []audit.MaskAction{{Rule: "email", Entity: "EMAIL", Location: "response", Count: 2, Fingerprint: "ab12"}}},
	}
	for i := 0; i < 4; i++ {
		entries = append(entries, &audit.Entry{Kind: audit.KindRequestRefused, RequestID: "noise", Route: "openai", Outcome: "refused"})
	}
	var seqs []int64
	for _, en := range entries {
		ref, err := e.audit.Append(ctx, en)
		if err != nil {
			e.t.Fatal(err)
		}
		seqs = append(seqs, ref.Seq)
	}
	e.denied, e.admitted, e.completed = seqs[0], seqs[1], seqs[2]
	for deadline := time.Now().Add(time.Minute); e.audit.Latest().Size <= seqs[len(seqs)-1]; {
		if time.Now().After(deadline) {
			e.t.Fatalf("no checkpoint covers the seeded entries (size %d)", e.audit.Latest().Size)
		}
		time.Sleep(20 * time.Millisecond)
	}
	set := e.pol.Current().Approvals()["finetune"]
	req, err := e.svc.RequestGrant(ctx, e.princ["alice"], approval.GrantRequest{SettingName: "finetune", Setting: set, Justification: "fine-tune run " + xssText})
	if err != nil {
		e.t.Fatal(err)
	}
	e.grantID = req.ID
}

// client is a browser: a cookie jar, redirects followed.
type client struct {
	e *env
	c *http.Client
}

func (e *env) browser() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, c: &http.Client{Jar: jar}}
}

// page is one answer.
type page struct {
	status int
	url    string
	header http.Header
	body   string
}

func (c *client) do(req *http.Request) page {
	c.e.t.Helper()
	resp, err := c.c.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Request.URL.String(), resp.Header, string(b)}
}

func (c *client) get(path string) page {
	req, _ := http.NewRequest("GET", c.e.srv.URL+path, nil)
	return c.do(req)
}

// post submits a form the way a same-origin browser does.
func (c *client) post(path string, form url.Values, hdr ...string) page {
	req, _ := http.NewRequest("POST", c.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.e.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return c.do(req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// login goes through the real flow: /ui/login, the demo issuer's picker,
// the pick, the callback; it returns the page landed on.
func (c *client) login(user, next string) page {
	c.e.t.Helper()
	picker := c.get("/ui/login?next=" + url.QueryEscape(next))
	if picker.status != 200 || !strings.Contains(picker.body, "DEMO ONLY") {
		c.e.t.Fatalf("login did not reach the demo picker: %d %s\n%s", picker.status, picker.url, picker.body)
	}
	form := url.Values{"user": {user}}
	for _, m := range hiddenRE.FindAllStringSubmatch(picker.body, -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	u, _ := url.Parse(picker.url)
	req, _ := http.NewRequest("POST", u.Scheme+"://"+u.Host+"/authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#39;", "'", "&quot;", `"`, "&lt;", "<", "&gt;", ">", "&#34;", `"`).Replace(s)
}

// sessionCookie returns the browser's console session cookie value.
func (c *client) sessionCookie() string {
	u, _ := url.Parse(c.e.srv.URL + "/ui/")
	for _, ck := range c.c.Jar.Cookies(u) {
		if ck.Name == "warden_console" {
			return ck.Value
		}
	}
	return ""
}
