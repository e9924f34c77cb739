package identity

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/identity/oidcprovidertest"
)

// TestInteropOIDCProvider verifies tokens minted by a real OpenID provider
// not written by us: panva/oidc-provider under Node, issuing RFC 9068 JWT
// access tokens via client_credentials with a groups claim.
func TestInteropOIDCProvider(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			issuer := oidcprovidertest.Start(t, "server.js", "ACCESS_TOKEN_ALG="+alg)
			cfg := Config{Issuers: []IssuerConfig{{Issuer: issuer, Audiences: []string{"warden"}, Claims: []string{"scope"}}}}
			a, err := New(t.Context(), cfg, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			tok := clientCredentialsToken(t, issuer)
			p, err := a.Authenticate(bearer(tok))
			if err != nil {
				t.Fatalf("token from oidc-provider refused: %v", err)
			}
			if p.Issuer != issuer || p.Subject != "batch-svc" || p.Kind != KindService || p.AuthMethod != "oidc" {
				t.Fatalf("principal %+v", p)
			}
			if !slices.Equal(p.Groups, []string{"ml-batch", "eng"}) {
				t.Fatalf("groups %q", p.Groups)
			}
			if p.Claims["scope"] != "infer" {
				t.Fatalf("claims %v", p.Claims)
			}
			// A byte changed in its signature is refused.
			parts := strings.Split(tok, ".")
			sig := []byte(parts[2])
			sig[10] ^= 1
			bad := parts[0] + "." + parts[1] + "." + string(sig)
			if _, err := a.Authenticate(bearer(bad)); err == nil {
				t.Fatal("tampered oidc-provider token accepted")
			}
		})
	}
}

func clientCredentialsToken(t *testing.T, issuer string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"infer"}}
	req, _ := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("batch-svc", "interop-test-secret-not-used-anywhere-else")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("token endpoint: %d %v %s %s", resp.StatusCode, err, body.Error, body.Description)
	}
	return body.AccessToken
}
