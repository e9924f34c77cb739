package gateway

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/mask"
)

// failingAsserter is an Asserter whose signing key is gone.
type failingAsserter struct{ calls atomic.Int64 }

func (f *failingAsserter) Assertion(*identity.Principal, string) (string, error) {
	f.calls.Add(1)
	return "", errors.New("signing key unavailable")
}

// identityGateway is a gateway with real identity (API keys, and the
// issuers given), the asserter and audit log given, in front of upstream.
// It returns the gateway URL and an API key of a service account.
func identityGateway(t *testing.T, upstream string, issuers []identity.IssuerConfig, as Asserter, log AuditLog) (string, string) {
	t.Helper()
	auth, err := identity.New(t.Context(), identity.Config{Issuers: issuers}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { auth.Close() })
	key, _, err := auth.KeyStore().Create("bot", []string{"ml-users"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:1",
		Routes: []config.Route{{Name: "openai", PathPrefix: "/v1/", Upstream: upstream, Profile: config.ProfileOpenAI}},
	}
	cfg.SetDefaults()
	opts := Options{Auth: auth, Audit: log}
	if as != nil {
		opts.Asserter = as
	}
	g, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv.URL, key
}

// postAuthorized posts a chat request with the Authorization value given
// and returns the answer and its body.
func postAuthorized(t *testing.T, gw, authorization string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, gw+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// TestAssertionSigningFailureRefusesBeforeForwarding: when the identity
// assertion cannot be signed, the request is refused (500) in the
// admission step: nothing reaches the upstream and no request.admitted
// entry promises a forward that never happened; the refusal is recorded.
func TestAssertionSigningFailureRefusesBeforeForwarding(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer up.Close()
	fa := &failingAsserter{}
	log := &memAudit{}
	gw, key := identityGateway(t, up.URL, nil, fa, log)

	resp, body := postAuthorized(t, gw, "Bearer "+key)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), `"type":"internal_error"`) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if fa.calls.Load() != 1 {
		t.Fatalf("asserter called %d times", fa.calls.Load())
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the upstream received %d requests after the signing failure", n)
	}
	id := resp.Header.Get("X-Request-Id")
	log.mu.Lock()
	defer log.mu.Unlock()
	var kinds []string
	for _, e := range log.byReq[id] {
		kinds = append(kinds, e.Kind)
	}
	if len(kinds) != 1 || kinds[0] != audit.KindRequestRefused {
		t.Fatalf("audit entries %q, want one request.refused and no admission", kinds)
	}
	if r := log.byReq[id][0].Details["reason"]; r != "assertion_failed" {
		t.Fatalf("refusal reason %v", r)
	}
}

// TestUnreachableIdPRetryAfter: a token of an issuer whose keys could not
// be fetched yet is answered 503 temporarily_unavailable with Retry-After.
func TestUnreachableIdPRetryAfter(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close() // nothing listens there: the IdP is unreachable
	gw, _ := identityGateway(t, echoUpstream(t).URL, []identity.IssuerConfig{{Issuer: dead, Audiences: []string{"warden"}}}, nil, nil)

	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"RS256","typ":"at+jwt","kid":"k1"}`)) + "." +
		enc([]byte(fmt.Sprintf(`{"iss":%q,"sub":"alice","aud":"warden","exp":%d}`, dead, time.Now().Add(time.Hour).Unix()))) + "." + enc([]byte("sig"))
	resp, body := postAuthorized(t, gw, "Bearer "+tok)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "temporarily_unavailable") {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "5" {
		t.Fatalf("Retry-After %q, want 5", ra)
	}

	// An empty bearer token is reported as such, not as a wrong scheme.
	resp, body = postAuthorized(t, gw, "Bearer ")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), identity.DescEmptyBearer) ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), identity.DescEmptyBearer) {
		t.Fatalf("empty bearer: %d %s %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
}

// rawResponses sends one raw HTTP/1.1 request and returns the header
// blocks of every response (1xx included), each as its raw lines.
func rawResponses(t *testing.T, gw, method, path, body string) [][]string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nX-Request-Id: client-id-0001\r\nConnection: close\r\n\r\n%s", method, path, len(body), body)
	br := bufio.NewReader(conn)
	var blocks [][]string
	for {
		var block []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading headers: %v (so far %q)", err, blocks)
			}
			if line == "\r\n" {
				break
			}
			block = append(block, strings.TrimRight(line, "\r\n"))
		}
		blocks = append(blocks, block)
		if !strings.HasPrefix(block[0], "HTTP/1.1 1") {
			return blocks
		}
	}
}

func countHeader(block []string, name string) (n int, vals []string) {
	for _, l := range block[1:] {
		k, v, _ := strings.Cut(l, ":")
		if strings.EqualFold(k, name) {
			n++
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return n, vals
}

// TestRequestIDOnceOnTheWire: every answer carries exactly one
// X-Request-Id (counted in the raw response), the gateway's: proxied,
// with an upstream that sends its own, after an upstream 103 Early Hints,
// masked, and gateway errors before and after the upstream.
func TestRequestIDOnceOnTheWire(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/hints", "/raw/hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.Header().Set("X-Request-Id", "upstream-hint-id")
			w.WriteHeader(http.StatusEarlyHints)
		case "/v1/down", "/raw/down":
			panic(http.ErrAbortHandler) // the upstream fails: 502
		}
		w.Header().Set("X-Request-Id", "upstream-own-id")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"message":{"content":"mail jane.doe@example.com"}}]}`)
	}))
	defer up.Close()
	_, plain := newTestGateway(t, up.URL, nil)
	_, masked := maskingGateway(t, up.URL, nil, mask.Profile{})
	for _, gw := range []struct{ name, url, prefix string }{{"plain", plain, "/v1/"}, {"masked", masked, "/raw/"}} {
		for _, tc := range []struct{ path, status string }{
			{"ok", "200"}, {"hints", "200"}, {"down", "502"},
		} {
			blocks := rawResponses(t, gw.url, "POST", gw.prefix+tc.path, `{"model":"m"}`)
			final := blocks[len(blocks)-1]
			if !strings.Contains(final[0], " "+tc.status+" ") {
				t.Fatalf("%s %s: status line %q", gw.name, tc.path, final[0])
			}
			if n, vals := countHeader(final, "X-Request-Id"); n != 1 || vals[0] != "client-id-0001" {
				t.Errorf("%s %s: %d X-Request-Id headers %q, want exactly the gateway's", gw.name, tc.path, n, vals)
			}
		}
	}
	blocks := rawResponses(t, plain, "GET", "/nowhere", "")
	if n, vals := countHeader(blocks[0], "X-Request-Id"); n != 1 || vals[0] != "client-id-0001" {
		t.Errorf("404: %d X-Request-Id %q", n, vals)
	}
}
