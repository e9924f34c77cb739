package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/devstack"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

const testPolicy = `version: 1
rules:
  - name: users-chat
    when: request.path == "/v1/chat/completions" && principal.in_group("ml-users")
    action: allow
  - name: admins-only
    when: request.path.glob("/admin/**")
    action: deny
    reason: admin routes are for admins
`

// stack is a gateway with real identity (the demo issuer), policy and
// SQLite audit log in front of a recording upstream.
type stack struct {
	gw       string
	g        *Gateway
	issuer   *devstack.Issuer
	asserter *identity.Asserter
	log      *audit.Log
	store    *sqlite.Store
	upHits   atomic.Int64
	upHeader atomic.Pointer[http.Header]
	onUp     func(r *http.Request)
}

func newStack(t testing.TB, mods ...func(*config.Config)) *stack {
	return newStackWith(t, func(cfg *config.Config, _ *Options) {
		for _, m := range mods {
			m(cfg)
		}
	})
}

// newStackWith is newStack with a hook to change the config and options
// before the gateway is built.
func newStackWith(t testing.TB, tweak func(cfg *config.Config, o *Options)) *stack {
	t.Helper()
	s := &stack{}
	dir := t.TempDir()
	idp := httptest.NewUnstartedServer(nil)
	idp.Start()
	t.Cleanup(idp.Close)
	var err error
	if s.issuer, err = devstack.NewIssuer(idp.URL); err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = s.issuer.Handler()

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.upHits.Add(1)
		h := r.Header.Clone()
		s.upHeader.Store(&h)
		if s.onUp != nil {
			s.onUp(r)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"chat.completion","choices":[{"message":{"content":"hello"}}]}`))
	}))
	t.Cleanup(up.Close)

	ctx := context.Background()
	idc := identity.Config{Issuers: []identity.IssuerConfig{{Issuer: idp.URL, Audiences: []string{devstack.DemoAudience}}}}
	idc.SetDefaults()
	auth, err := identity.New(ctx, idc, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { auth.Close() })
	ac := auth.Config().Assertion
	if s.asserter, err = identity.NewAsserter(ac.KeyFile, ac.Issuer, ac.TTL); err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(pf)
	if err != nil {
		t.Fatal(err)
	}
	if s.store, err = sqlite.Open(ctx, filepath.Join(dir, "audit.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	var ac2 audit.Config
	ac2.SetDefaults()
	ac2.Resolve(dir)
	signer, verifier, err := audit.LoadOrCreateKeys(ac2.SigningKeyFile, ac2.KeyName)
	if err != nil {
		t.Fatal(err)
	}
	if s.log, err = audit.Open(ctx, s.store, ac2, signer, verifier); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.log.Close(context.Background()) })

	cfg := &config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", Instance: "test",
		Routes: []config.Route{
			{Name: "openai", PathPrefix: "/v1/", Upstream: up.URL, Profile: config.ProfileOpenAI},
			{Name: "admin", PathPrefix: "/admin/", Upstream: up.URL},
		},
	}
	cfg.SetDefaults()
	// The allow rule names no profile, so it masks with "default": the
	// masking set is part of every policy-driven stack.
	masks, err := mask.New(mask.Config{}, []byte("test-masking-key-0123"))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Auth: auth, Asserter: s.asserter, Policy: eng, Audit: s.log, Masks: masks}
	if tweak != nil {
		tweak(cfg, &o)
	}
	g, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	s.g = g
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	s.gw = srv.URL
	return s
}

func (s *stack) token(t testing.TB, user string) string {
	t.Helper()
	for _, u := range devstack.DemoUsers {
		if u.Name == user {
			tok, err := s.issuer.Mint(u, devstack.DemoAudience, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
	}
	t.Fatalf("no demo user %s", user)
	return ""
}

func (s *stack) entries(t *testing.T, requestID string) []*audit.Entry {
	t.Helper()
	es, err := s.log.Search(context.Background(), audit.Query{RequestID: requestID})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func (s *stack) do(t *testing.T, method, path, token string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	reqBody := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	if strings.Contains(path, "bad=1") {
		reqBody = `{"model":"m","messages":[{"role":"user","content":"hi"}]` // truncated
	}
	req, _ := http.NewRequest(method, s.gw+path, strings.NewReader(reqBody))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// TestAdmittedBeforeUpstream: when the upstream sees the request, its
// request.admitted entry is already durable; afterwards request.completed
// records status, bytes and the hash of what the caller received.
func TestAdmittedBeforeUpstream(t *testing.T) {
	s := newStack(t)
	var seenAdmitted atomic.Bool
	s.onUp = func(r *http.Request) {
		for _, e := range s.entries(t, r.Header.Get("X-Request-Id")) {
			if e.Kind == audit.KindRequestAdmitted {
				seenAdmitted.Store(true)
			}
		}
	}
	resp, body := s.do(t, "POST", "/v1/chat/completions", s.token(t, "alice"), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if !seenAdmitted.Load() {
		t.Fatal("upstream was called before request.admitted was durable")
	}
	// request.completed is written once the response has been sent, which
	// may be just after the client has read it: wait for it (bounded).
	var es []*audit.Entry
	for i := 0; i < 250; i++ {
		if es = s.entries(t, resp.Header.Get("X-Request-Id")); len(es) >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(es) != 2 || es[0].Kind != audit.KindRequestAdmitted || es[1].Kind != audit.KindRequestCompleted {
		t.Fatalf("entries: %+v", es)
	}
	adm, done := es[0], es[1]
	if adm.Principal == nil || adm.Principal.Subject != "alice" || adm.Decision == nil || adm.Decision.Rule != "users-chat" ||
		!strings.HasPrefix(adm.Decision.PolicyVersion, "sha256:") || adm.Model != "m" || adm.Path != "/v1/chat/completions" {
		t.Errorf("admitted entry: %+v principal=%+v decision=%+v", adm, adm.Principal, adm.Decision)
	}
	sum := sha256.Sum256(body)
	if done.Status != 200 || done.BytesOut != int64(len(body)) || done.ResponseSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("completed entry: status %d bytes %d hash %s; want 200 %d %x", done.Status, done.BytesOut, done.ResponseSHA256, len(body), sum)
	}
}

// TestHeaderSpoofing: identity headers a client sends never reach the
// upstream or the audit log; the upstream gets a valid signed assertion
// for the verified caller and not the caller's token.
func TestHeaderSpoofing(t *testing.T) {
	s := newStack(t)
	resp, body := s.do(t, "POST", "/v1/chat/completions", s.token(t, "alice"), map[string]string{
		"X-Warden-Identity":  "forged.assertion.value",
		"X-Forwarded-User":   "carol",
		"X-Forwarded-Groups": "ml-admins",
		"X-Warden-Subject":   "carol",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := *s.upHeader.Load()
	for _, k := range []string{"X-Forwarded-User", "X-Forwarded-Groups", "X-Warden-Subject", "Authorization"} {
		if v := h.Get(k); v != "" {
			t.Errorf("upstream received %s: %q", k, v)
		}
	}
	assertion := h.Get("X-Warden-Identity")
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatalf("assertion %q: %v", assertion, err)
	}
	var claims struct {
		Sub    string   `json:"sub"`
		Groups []string `json:"groups"`
		RID    string   `json:"rid"`
	}
	if err := tok.Claims(s.asserter.PublicKey(), &claims); err != nil {
		t.Fatalf("assertion signature: %v", err)
	}
	if claims.Sub != "alice" || claims.RID != "" {
		t.Errorf("assertion claims %+v (the request id travels in X-Request-Id, not the assertion)", claims)
	}
	if got := h.Values("X-Request-Id"); len(got) != 1 || got[0] != resp.Header.Get("X-Request-Id") {
		t.Errorf("upstream X-Request-Id %q, want the gateway's %q", got, resp.Header.Get("X-Request-Id"))
	}
	for _, e := range s.entries(t, resp.Header.Get("X-Request-Id")) {
		if e.Principal == nil || e.Principal.Subject != "alice" {
			t.Errorf("audit sees %+v", e.Principal)
		}
	}
}

func TestRefusalsAreRecordedAndNeverForwarded(t *testing.T) {
	s := newStack(t)
	tests := []struct {
		name, path, token string
		status            int
		kind, errType     string
	}{
		{"no token", "/v1/chat/completions", "", 401, audit.KindRequestRefused, "unauthenticated"},
		{"garbage token", "/v1/chat/completions", "not.a.jwt", 401, audit.KindRequestRefused, "invalid_token"},
		{"policy deny", "/admin/stats", s.token(t, "alice"), 403, audit.KindRequestDenied, "forbidden"},
		{"default deny", "/v1/embeddings", s.token(t, "alice"), 403, audit.KindRequestDenied, "forbidden"},
		{"malformed JSON body", "/v1/chat/completions?bad=1", s.token(t, "alice"), 400, audit.KindRequestRefused, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.upHits.Load()
			resp, body := s.do(t, "POST", tt.path, tt.token, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var eb errorBody
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Type != tt.errType {
				t.Errorf("body %s", body)
			}
			if s.upHits.Load() != before {
				t.Error("refused request reached the upstream")
			}
			es := s.entries(t, resp.Header.Get("X-Request-Id"))
			if len(es) != 1 || es[0].Kind != tt.kind || es[0].Status != tt.status {
				t.Fatalf("entries %+v", es)
			}
			if tt.errType == "bad_request" && !strings.Contains(string(body), "not valid JSON") {
				t.Errorf("malformed body: message does not say what is wrong: %s", body)
			}
			if tt.token != "" && strings.Contains(string(body), tt.token) {
				t.Error("token echoed in the error")
			}
		})
	}
}

// TestAuditDownRefuses: when the audit store cannot record, requests get
// 503 and nothing reaches the upstream (fail closed).
func TestAuditDownRefuses(t *testing.T) {
	s := newStack(t)
	if err := s.store.Close(); err != nil { // the database goes away under the log
		t.Fatal(err)
	}
	resp, body := s.do(t, "POST", "/v1/chat/completions", s.token(t, "alice"), nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Type != errAudit {
		t.Errorf("body %s", body)
	}
	if s.upHits.Load() != 0 {
		t.Error("request reached the upstream without an audit record")
	}
}

// BenchmarkPipeline measures a 1 KB chat completion through the full
// request path — cached token verification, a policy decision, durable
// admission and completion in SQLite (group commit), identity assertion —
// against the upstream called directly and a passthrough gateway, in one
// run. Compare the ratios, not the absolute numbers.
func BenchmarkPipeline(b *testing.B) {
	s := newStack(b)
	up := echoUpstream(b)
	_, pass := newTestGateway(b, up.URL, nil)
	tok := s.token(b, "alice")
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	run := func(b *testing.B, url string, auth bool) {
		b.ReportAllocs()
		b.SetParallelism(16) // 16 clients per core: enough concurrency for group commit
		bearer := ""
		if auth {
			bearer = tok
		}
		postParallel(b, client, url, body, bearer)
	}
	b.Run("direct", func(b *testing.B) { run(b, up.URL+"/v1/chat/completions", false) })
	b.Run("passthrough", func(b *testing.B) { run(b, pass+"/v1/chat/completions", false) })
	b.Run("full", func(b *testing.B) { run(b, s.gw+"/v1/chat/completions", true) })
}

// postParallel POSTs body to url as JSON from b's parallel clients until
// b.N requests are done, with a bearer token unless tok is empty; any
// error or non-200 answer fails b.
func postParallel(b *testing.B, client *http.Client, url string, body []byte, tok string) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
