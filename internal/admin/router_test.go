package admin_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/identity"
)

func serve(t *testing.T, h http.Handler, method, path string, hdr ...string) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	b, _ := io.ReadAll(w.Result().Body)
	return answer{w.Code, w.Header(), b}
}

// TestClosedWithoutIdentity: with no authenticator every endpoint but the
// public ones answers 401, whatever credential is sent.
func TestClosedWithoutIdentity(t *testing.T) {
	e := newEnv(t, func(o *admin.Options) { o.Authenticators = nil })
	for _, r := range e.rt.Routes() {
		path := strings.NewReplacer("{id}", "x", "{seq}", "0").Replace(r.Path)
		a := e.do(r.Method, path, "erin", "")
		if r.Role == admin.Public {
			if a.status != 200 {
				t.Errorf("%s %s: %d", r.Method, path, a.status)
			}
			continue
		}
		if a.status != 401 || a.errorType(t) != "unauthenticated" || !strings.Contains(string(a.body), "closed") {
			t.Errorf("%s %s on a closed admin API: %d %s", r.Method, path, a.status, a.body)
		}
	}
}

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	a := e.do("GET", identity.JWKSPath, "", "")
	var set struct {
		Keys []struct{ Kty, Crv, Alg, Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(a.body, &set); err != nil || a.status != 200 || len(set.Keys) != 1 || set.Keys[0].Alg != "EdDSA" ||
		a.header.Get("Content-Type") != "application/jwk-set+json" || a.header.Get("X-Request-Id") == "" {
		t.Fatalf("jwks: %d %v %s", a.status, err, a.body)
	}
}

// TestRouter: unknown paths, client request ids, cross-origin browser
// requests, a panicking handler, malformed and duplicate routes.
func TestRouter(t *testing.T) {
	rt := admin.New(admin.Options{Logger: slog.New(slog.DiscardHandler)})
	rt.Handle(admin.Route{Method: "GET", Path: "/v1/boom", Role: admin.Public, Summary: "panics",
		Handle: func(http.ResponseWriter, *http.Request) error { panic("secret-detail") }})
	rt.Handle(admin.Route{Method: "POST", Path: "/v1/echo", Role: admin.Public, Summary: "ok",
		Handle: func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(204); return nil }})
	rt.Handle(admin.Route{Method: "GET", Path: "/v1/fail", Role: admin.Public, Summary: "fails",
		Handle: func(http.ResponseWriter, *http.Request) error { return errors.New("pq: secret-detail") }})

	a := serve(t, rt, "GET", "/v1/nothing", "X-Request-Id", "client-req-42")
	if a.status != 404 || a.errorType(t) != "not_found" || a.header.Get("X-Request-Id") != "client-req-42" {
		t.Fatalf("unknown path: %d %s", a.status, a.body)
	}
	if a := serve(t, rt, "GET", "/v1/nothing", "X-Request-Id", "bad id\r\n"); a.header.Get("X-Request-Id") == "bad id\r\n" {
		t.Fatal("a malformed client request id was kept")
	}
	for _, p := range []string{"/v1/boom", "/v1/fail"} {
		a = serve(t, rt, "GET", p)
		if a.status != 500 || a.errorType(t) != "internal_error" || strings.Contains(string(a.body), "secret-detail") {
			t.Fatalf("%s: %d %s", p, a.status, a.body)
		}
	}
	// Cross-origin browser requests with unsafe methods are refused; a
	// CLI (no Origin, no Sec-Fetch-Site) and same-origin pages pass.
	if a := serve(t, rt, "POST", "/v1/echo", "Sec-Fetch-Site", "cross-site"); a.status != 403 || a.errorType(t) != "forbidden" {
		t.Fatalf("cross-site POST: %d %s", a.status, a.body)
	}
	if a := serve(t, rt, "POST", "/v1/echo", "Origin", "https://evil.example"); a.status != 403 {
		t.Fatalf("cross-origin POST: %d %s", a.status, a.body)
	}
	if a := serve(t, rt, "POST", "/v1/echo", "Sec-Fetch-Site", "same-origin"); a.status != 204 {
		t.Fatalf("same-origin POST: %d %s", a.status, a.body)
	}
	if a := serve(t, rt, "POST", "/v1/echo"); a.status != 204 {
		t.Fatalf("CLI POST: %d %s", a.status, a.body)
	}
	for name, r := range map[string]admin.Route{
		"duplicate":    {Method: "POST", Path: "/v1/echo", Role: admin.Public, Summary: "again", Handle: func(http.ResponseWriter, *http.Request) error { return nil }},
		"no role":      {Method: "GET", Path: "/v1/x", Summary: "x", Handle: func(http.ResponseWriter, *http.Request) error { return nil }},
		"no handler":   {Method: "GET", Path: "/v1/y", Role: admin.Admin, Summary: "y"},
		"no summary":   {Method: "GET", Path: "/v1/z", Role: admin.Admin, Handle: func(http.ResponseWriter, *http.Request) error { return nil }},
		"relative":     {Method: "GET", Path: "v1/z", Role: admin.Admin, Summary: "z", Handle: func(http.ResponseWriter, *http.Request) error { return nil }},
		"any, handler": {Path: "/v1/w", Role: admin.Admin, Summary: "w", Handle: func(http.ResponseWriter, *http.Request) error { return nil }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s route accepted", name)
				}
			}()
			rt.Handle(r)
		}()
	}
}

// sessionAuth stands for the console's browser sessions: it reads a
// cookie and, without one, leaves the request to the next authenticator.
type sessionAuth map[string]*identity.Principal

func (s sessionAuth) Authenticate(r *http.Request) (*identity.Principal, error) {
	c, err := r.Cookie("warden_session")
	if err != nil {
		return nil, admin.ErrNoCredential
	}
	if p := s[c.Value]; p != nil {
		return p, nil
	}
	return nil, apierr.New(apierr.InvalidToken, "session expired")
}

// TestAuthenticatorChain: another kind of credential (here a session
// cookie) plugs in beside bearer tokens and API keys; the first
// authenticator that finds its credential decides; a subtree route (the
// console under /ui/) gets the caller and writes errors in the one shape.
func TestAuthenticatorChain(t *testing.T) {
	sessions := sessionAuth{"s1": {Issuer: "https://idp", Subject: "dan", Groups: []string{"auditors"}}}
	e := newEnv(t, func(o *admin.Options) {
		o.Authenticators = append([]admin.Authenticator{sessions}, o.Authenticators...)
	})
	e.rt.Handle(admin.Route{Path: "/ui/", Role: admin.Auditor, Summary: "console",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ui/missing" {
				admin.WriteError(w, r, apierr.New(apierr.NotFound, "no such page"))
				return
			}
			_, _ = io.WriteString(w, "hello "+admin.PrincipalFrom(r.Context()).Subject)
		})})
	if a := e.do("GET", "/v1/audit/checkpoints", "", "", "Cookie", "warden_session=s1"); a.status != 200 {
		t.Fatalf("session: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/audit/checkpoints", "", "", "Cookie", "warden_session=old"); a.status != 401 || a.errorType(t) != "invalid_token" {
		t.Fatalf("stale session: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/audit/checkpoints", "dan", ""); a.status != 200 {
		t.Fatalf("bearer after the session authenticator: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/ui/home", "", "", "Cookie", "warden_session=s1"); a.status != 200 || string(a.body) != "hello dan" {
		t.Fatalf("console: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/ui/missing", "", "", "Cookie", "warden_session=s1"); a.status != 404 || a.errorType(t) != "not_found" {
		t.Fatalf("console error: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/ui/home", "alice", ""); a.status != 403 {
		t.Fatalf("console without the role: %d %s", a.status, a.body)
	}
}
