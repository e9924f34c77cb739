package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestAuthorizationCodePKCE: the picker issues a code for the picked
// user; the code redeems once, only with the right verifier, client and
// redirect URI, for an ID token go-oidc verifies with the nonce and
// groups.
func TestAuthorizationCodePKCE(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	defer srv.Close()
	is, err := NewIssuer("http://" + srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = is.Handler()
	srv.Start()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := "a-verifier-that-is-long-enough-for-rfc-7636-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	authz := url.Values{"response_type": {"code"}, "client_id": {ConsoleClientID}, "redirect_uri": {"http://app.test/ui/callback"},
		"state": {"st"}, "nonce": {"n-1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}

	get, err := noFollow.Get(srv.URL + "/authorize?" + authz.Encode())
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if get.StatusCode != 200 || get.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("picker: %d", get.StatusCode)
	}
	noPKCE := url.Values{}
	for k, v := range authz {
		noPKCE[k] = v
	}
	noPKCE.Del("code_challenge")
	if r, _ := noFollow.Get(srv.URL + "/authorize?" + noPKCE.Encode()); r.StatusCode != 400 {
		t.Fatalf("without PKCE: %d", r.StatusCode)
	}

	pick := url.Values{"user": {"bob"}}
	for k, v := range authz {
		pick[k] = v
	}
	code := func() string {
		resp, err := noFollow.PostForm(srv.URL+"/authorize", pick)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("state") != "st" || loc.Host != "app.test" {
			t.Fatalf("pick: %d %s", resp.StatusCode, loc)
		}
		return loc.Query().Get("code")
	}
	redeem := func(code, verifier, redirect string) (int, map[string]any) {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier},
			"client_id": {ConsoleClientID}, "redirect_uri": {redirect}}
		resp, err := http.PostForm(srv.URL+"/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if st, m := redeem(code(), "wrong-verifier-wrong-verifier-wrong-verifier-0000", "http://app.test/ui/callback"); st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("wrong verifier: %d %v", st, m)
	}
	if st, _ := redeem(code(), verifier, "http://evil.test/ui/callback"); st != 400 {
		t.Fatalf("other redirect_uri: %d", st)
	}
	c := code()
	st, m := redeem(c, verifier, "http://app.test/ui/callback")
	if st != 200 {
		t.Fatalf("redeem: %d %v", st, m)
	}
	if st, _ := redeem(c, verifier, "http://app.test/ui/callback"); st != 400 {
		t.Fatalf("code reused: %d", st)
	}
	p, err := oidc.NewProvider(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: ConsoleClientID}).Verify(context.Background(), m["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Groups []string `json:"groups"`
	}
	if err := idt.Claims(&claims); err != nil || idt.Subject != "bob" || idt.Nonce != "n-1" || strings.Join(claims.Groups, ",") != "ml-approvers" {
		t.Fatalf("id token: %v sub=%s nonce=%s groups=%v", err, idt.Subject, idt.Nonce, claims.Groups)
	}
}
