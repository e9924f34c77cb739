package identity

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestStripClientIdentityHeaders(t *testing.T) {
	h := http.Header{}
	for _, n := range []string{
		"X-Warden-Identity", "X-Warden-Approval", "x-warden-lowercase", "X-Forwarded-User", "X-Forwarded-Email",
		"X-Forwarded-Groups", "X-Auth-Request-User", "X-Auth-Request-Email", "X-Remote-User", "X-Tenant-Override",
		"Authorization", "X-API-Key", "Content-Type", "X-Request-Id", "Accept",
	} {
		h[n] = []string{"v"} // also non-canonical keys, as a raw map write would leave them
	}
	StripClientIdentityHeaders(h, []string{"X-Tenant-Override"})
	var left []string
	for n := range h {
		left = append(left, n)
	}
	slices.Sort(left)
	want := []string{"Accept", "Authorization", "Content-Type", "X-API-Key", "X-Request-Id"}
	if !slices.Equal(left, want) {
		t.Fatalf("left %q, want %q", left, want)
	}
	StripCredentials(h)
	if h.Get("Authorization") != "" || h.Get("X-API-Key") != "" {
		t.Fatal("credential kept")
	}
}

func TestAsserterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "assertion.key")
	a1, err := NewAsserter(path, "warden", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	a2, err := NewAsserter(path, "warden", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if a1.KeyID() != a2.KeyID() || !a1.PublicKey().Equal(a2.PublicKey()) {
		t.Fatal("key not reloaded from file")
	}
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewAsserter(path, "warden", time.Minute); err == nil {
		t.Fatal("junk key file accepted")
	}
}

// TestHeaderSpoofing runs a miniature gateway (Authenticator + Asserter +
// ReverseProxy) in front of an upstream that verifies the assertion
// against the published JWKS. A client sending X-Warden-Identity or
// X-Forwarded-User cannot change who the upstream sees.
func TestHeaderSpoofing(t *testing.T) {
	dir := t.TempDir()
	auth, err := New(t.Context(), Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	cfg := auth.Config()
	asserter, err := NewAsserter(cfg.Assertion.KeyFile, cfg.Assertion.Issuer, cfg.Assertion.TTL)
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := auth.KeyStore().Create("alice-bot", []string{"ml"}, 0)
	if err != nil {
		t.Fatal(err)
	}

	type seen struct {
		Sub, Idp, Rid, Aud string
		Groups             []string
		Spoofed            []string
	}
	got := make(chan seen, 1)
	var jwksURL string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		for _, n := range []string{"X-Forwarded-User", "X-Auth-Request-User", "Authorization", "X-Api-Key", "X-Warden-Role"} {
			if r.Header.Get(n) != "" {
				s.Spoofed = append(s.Spoofed, n)
			}
		}
		vals := r.Header.Values(DefaultAssertionHeader)
		if len(vals) != 1 {
			http.Error(w, "want exactly one assertion", 400)
			return
		}
		resp, err := http.Get(jwksURL)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		var set jose.JSONWebKeySet
		_ = json.NewDecoder(resp.Body).Decode(&set)
		resp.Body.Close()
		jws, err := jose.ParseSignedCompact(vals[0], []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			http.Error(w, err.Error(), 401)
			return
		}
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			http.Error(w, "unknown kid", 401)
			return
		}
		payload, err := jws.Verify(keys[0].Key)
		if err != nil {
			http.Error(w, err.Error(), 401)
			return
		}
		var c AssertionClaims
		_ = json.Unmarshal(payload, &c)
		if c.Expiry-c.IssuedAt != 60 || c.Issuer != "warden" || c.ID == "" {
			http.Error(w, "bad times/iss/jti", 401)
			return
		}
		s.Sub, s.Idp, s.Aud, s.Groups = c.Subject, c.IdP, c.Audience, c.Groups
		s.Rid = r.Header.Get("X-Request-Id")
		got <- s
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)

	mux := http.NewServeMux()
	mux.HandleFunc(JWKSPath, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(asserter.JWKS()) })
	mux.Handle("/", &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		p, err := auth.Authenticate(pr.In)
		if err != nil {
			t.Errorf("authenticate: %v", err)
			return
		}
		a, err := asserter.Assertion(p, "chat")
		if err != nil {
			t.Errorf("sign: %v", err)
			return
		}
		pr.SetURL(target)
		auth.PrepareUpstreamHeaders(pr.Out.Header, a)
		pr.Out.Header.Set("X-Request-Id", "req-1")
	}})
	front := httptest.NewServer(mux)
	defer front.Close()
	jwksURL = front.URL + JWKSPath

	req, _ := http.NewRequest(http.MethodPost, front.URL+"/v1/chat/completions", nil)
	req.Header.Set("X-API-Key", plain)
	req.Header.Set("X-Warden-Identity", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.")
	req.Header.Add("X-Warden-Identity", "second")
	req.Header.Set("X-Forwarded-User", "root")
	req.Header.Set("X-Auth-Request-User", "root")
	req.Header.Set("X-Warden-Role", "admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upstream refused: %d %s", resp.StatusCode, body)
	}
	s := <-got
	if s.Sub != "svc:alice-bot" || s.Idp != APIKeyIssuer || s.Rid != "req-1" || s.Aud != "chat" || !slices.Equal(s.Groups, []string{"ml"}) || len(s.Spoofed) != 0 {
		t.Fatalf("upstream saw %+v", s)
	}
}
