package devstack

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// startIssuer serves a demo issuer on httptest until the test ends.
func startIssuer(t *testing.T) (*Issuer, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	is, err := NewIssuer(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = is.Handler()
	return is, srv
}

// TestIssuerTokensAcceptedByDefault: Warden's identity stage, configured
// with nothing but the demo issuer and audience (so the default
// token_types, access tokens only), accepts the demo issuer's tokens for
// users and services — the demo must not need the ID-token opt-in.
func TestIssuerTokensAcceptedByDefault(t *testing.T) {
	is, _ := startIssuer(t)
	cfg := identity.Config{Issuers: []identity.IssuerConfig{{Issuer: is.URL(), Audiences: []string{DemoAudience}}}}
	a, err := identity.New(t.Context(), cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.KeySet(is.URL()).Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, u := range DemoUsers {
		tok, err := is.Token(u.Name, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		p, err := a.Authenticate(r)
		if err != nil {
			t.Fatalf("%s: demo token refused by the default identity config: %v", u.Name, err)
		}
		wantKind := identity.KindUser
		if u.Service {
			wantKind = identity.KindService
		}
		if p.Subject != u.Name || p.Kind != wantKind || len(p.Groups) == 0 {
			t.Fatalf("%s: principal %+v", u.Name, p)
		}
	}
}
