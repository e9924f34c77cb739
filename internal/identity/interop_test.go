package identity

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestInteropOIDCProvider verifies tokens minted by a real OpenID provider
// not written by us: panva/oidc-provider under Node, issuing RFC 9068 JWT
// access tokens via client_credentials with a groups claim.
func TestInteropOIDCProvider(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "oidc-provider"))
	if err != nil {
		t.Fatal(err)
	}
	// CI installs the provider and sets WARDEN_TEST_REQUIRE_INTEROP: there
	// a missing install is a failure, not a skip.
	skip := t.Skip
	if os.Getenv("WARDEN_TEST_REQUIRE_INTEROP") != "" {
		skip = t.Fatal
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		skip("oidc-provider not installed; run `npm ci --prefix internal/identity/testdata/oidc-provider` to enable this interop test")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node not found in PATH; install Node.js 20 to run the oidc-provider interop test")
	}
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			issuer := startOIDCProvider(t, node, dir, alg)
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

func startOIDCProvider(t *testing.T, node, dir, alg string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "server.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "ACCESS_TOKEN_ALG="+alg)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- iss
			}
		}
	}()
	select {
	case iss := <-ready:
		return iss
	case <-time.After(60 * time.Second):
		t.Fatal("oidc-provider did not start within 60s")
	}
	return ""
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
