package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/devstack"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// testPolicy has a grant setting (ft) and a one-time setting (once),
// both reviewed by ml-leads: the approver role's default.
const testPolicy = `version: 1
rules:
  - name: fine-tune
    when: request.path.glob("/v1/fine_tuning/**")
    action: require_approval
    approval: once
approvals:
  ft:
    kind: grant
    mode: async
    reviewers: [ml-leads]
    grant_duration: 2h
    scope: {routes: [fine-tune], paths: ["/v1/fine_tuning/**"]}
  once: {kind: one_time, mode: async, reviewers: [ml-leads]}
`

// Callers: real OIDC tokens from the demo issuer, verified by the real
// identity.Authenticator (as on the admin listener).
var users = map[string]devstack.User{
	"alice": {Name: "alice", Groups: []string{"ml-engineers"}},
	// alice again, in every group: still never her own approver.
	"alice-all": {Name: "alice", Groups: []string{"ml-engineers", "ml-leads", "ml-admins", "auditors"}},
	"bob":       {Name: "bob", Groups: []string{"ml-leads"}},
	"carol":     {Name: "carol", Groups: []string{"ml-leads"}},
	"dan":       {Name: "dan", Groups: []string{"auditors"}},
	"erin":      {Name: "erin", Groups: []string{"ml-admins"}},
	"mallory":   {Name: "mallory", Groups: []string{"ml-engineers"}},
}

type env struct {
	t       testing.TB
	srv     *httptest.Server
	rt      *admin.Router
	tokens  map[string]string
	audit   *audit.Log
	ver     note.Verifier
	store   *sqlite.Store // the audit store
	svc     *approval.Service
	policy  *policy.Engine
	polFile string
	keys    *identity.FileKeyStore
	idpURL  string
	rec     *recording.Recorder
}

// issuerURL is the demo issuer's URL (the callers' principal issuer).
func (e *env) issuerURL() string { return e.idpURL }

// writePolicy replaces the policy file.
func writePolicy(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

type envOption func(*admin.Options)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()

	idp := httptest.NewUnstartedServer(nil)
	idp.Start()
	t.Cleanup(idp.Close)
	issuer, err := devstack.NewIssuer(idp.URL)
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = issuer.Handler()
	auth, err := identity.New(ctx, identity.Config{Issuers: []identity.IssuerConfig{{Issuer: idp.URL, Audiences: []string{devstack.DemoAudience}}}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { auth.Close() })
	e := &env{t: t, tokens: map[string]string{}, keys: auth.KeyStore(), idpURL: idp.URL}
	for name, u := range users {
		tok, err := issuer.Mint(u, devstack.DemoAudience, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = tok
	}

	e.polFile = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(e.polFile, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	if e.policy, err = policy.NewEngine(e.polFile); err != nil {
		t.Fatal(err)
	}
	e.audit, e.ver, e.store = newAuditLog(t, dir)
	st, err := sqlite.OpenApprovals(ctx, filepath.Join(dir, "approvals.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.svc = approval.New(st, e.audit)
	asserter, err := identity.NewAsserter(filepath.Join(dir, "assertion.key"), "warden-test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rc := recording.Config{}
	rc.SetDefaults()
	rc.Resolve(dir)
	cat, err := sqlite.OpenRecordingCatalog(ctx, rc.CatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e.rec, err = recording.Open(ctx, rc, cat, recording.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rec.Close() })
	o := admin.Options{
		Recordings:     e.rec,
		Authenticators: []admin.Authenticator{auth},
		Audit:          e.audit, Policy: e.policy, Approvals: e.svc, Keys: auth.KeyStore(), Asserter: asserter,
		ReviewURLBase: "http://admin.test:9090", Logger: slog.New(slog.DiscardHandler),
	}
	xs, err := export.NewService(export.NewLogSource(e.store, export.LogSourceOptions{}), export.ServiceOptions{
		Options: export.Options{Origin: e.ver.Name()}, Sinks: []string{"siem"},
		Targets: func() ([]export.Target, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	o.Export = xs
	o.Config.SetDefaults()
	for _, f := range opts {
		f(&o)
	}
	e.rt = admin.New(o)
	e.srv = httptest.NewServer(e.rt)
	t.Cleanup(e.srv.Close)
	return e
}

// newAuditLog opens a real audit log on SQLite that signs a checkpoint
// every 10 entries.
func newAuditLog(t testing.TB, dir string) (*audit.Log, note.Verifier, *sqlite.Store) {
	t.Helper()
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	cfg.CheckpointEvery = 10
	signer, verifier, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "admin-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(context.Background(), st, cfg, signer, verifier, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close(context.Background())
		st.Close()
	})
	return l, verifier, st
}

// kinds returns the kinds of approval id's entries, in log order.
func (e *env) kinds(id string) []string {
	e.t.Helper()
	es, err := e.audit.Search(context.Background(), audit.Query{ApprovalID: id, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, en := range es {
		out = append(out, en.Kind)
	}
	return out
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the answer into a map.
func (a answer) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("non-JSON answer %d: %q", a.status, a.body)
	}
	return m
}

// errorType checks the single error shape and returns its type: exactly
// {"error":{"type","message","request_id"}} (rule only on the data
// path), request_id equal to X-Request-Id, JSON and no-store.
func (a answer) errorType(t testing.TB) string {
	t.Helper()
	var b struct {
		Error struct {
			Type      string `json:"type"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(string(a.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("not the error shape (%v): %d %s", err, a.status, a.body)
	}
	if b.Error.Type == "" || b.Error.Message == "" {
		t.Fatalf("error without type or message: %s", a.body)
	}
	if b.Error.RequestID == "" || b.Error.RequestID != a.header.Get("X-Request-Id") {
		t.Fatalf("request_id %q, X-Request-Id %q", b.Error.RequestID, a.header.Get("X-Request-Id"))
	}
	if a.header.Get("Content-Type") != "application/json" || a.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("error headers %v", a.header)
	}
	return b.Error.Type
}

// do sends one request as user ("" for none; a value starting with
// "raw:" is sent as the Authorization header as it is).
func (e *env) do(method, path, user, body string, hdr ...string) answer {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	switch {
	case strings.HasPrefix(user, "raw:"):
		req.Header.Set("Authorization", strings.TrimPrefix(user, "raw:"))
	case user != "":
		tok, ok := e.tokens[user]
		if !ok {
			e.t.Fatalf("no user %s", user)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, b}
}

// pendingGrant opens a grant request as alice and returns its id.
func (e *env) pendingGrant() string {
	e.t.Helper()
	a := e.do("POST", "/v1/approvals", "alice", `{"setting":"ft","justification":"incident 7"}`)
	if a.status != 201 {
		e.t.Fatalf("create: %d %s", a.status, a.body)
	}
	return a.json(e.t)["id"].(string)
}

type policyChange = policy.Change
