package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/devstack"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/tlsutil"
	"github.com/wardenhq/warden/internal/tlsutil/tlstest"
)

// tlsServer runs a Server with TLS on both listeners (certificates from
// ca under dir) in front of upstream; mod adjusts the config.
func tlsServer(t *testing.T, ca *tlstest.CA, dir, upstream string, mod func(*config.Config)) *Server {
	t.Helper()
	certF, keyF := ca.Server(t, "warden-1").WriteFiles(t, dir, "warden")
	cfg := &config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", AllowAnonymous: true,
		Routes:   []config.Route{{Name: "openai", PathPrefix: "/v1/", Upstream: upstream, Profile: config.ProfileOpenAI}},
		TLS:      &tlsutil.ServerConfig{CertFile: certF, KeyFile: keyF},
		AdminTLS: &tlsutil.ServerConfig{CertFile: certF, KeyFile: keyF},
	}
	if mod != nil {
		mod(cfg)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(cfg, quietLog, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s
}

var quietLog = slog.New(slog.DiscardHandler)

// h2Client trusts pool and speaks HTTP/2 when the server offers it.
func h2Client(cfg *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}, Timeout: 20 * time.Second}
}

func jsonUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"chat.completion","choices":[{"message":{"content":"hello"}}]}`)
	}))
	t.Cleanup(up.Close)
	return up
}

// TestTLSListenerServesTrustingClient: a client trusting the test CA gets
// the answer over TLS (HTTP/2 when offered, HTTP/1.1 otherwise) on both
// listeners; a client that does not trust it is refused; plain HTTP on
// the TLS port gets no answer from the gateway.
func TestTLSListenerServesTrustingClient(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	s := tlsServer(t, ca, t.TempDir(), jsonUpstream(t).URL, nil)
	if !strings.HasPrefix(s.URL(), "https://") || !strings.HasPrefix(s.AdminURL(), "https://") {
		t.Fatalf("URLs %s %s", s.URL(), s.AdminURL())
	}
	for _, h2 := range []bool{true, false} {
		c := h2Client(&tls.Config{RootCAs: ca.Pool()})
		if !h2 {
			c.Transport.(*http.Transport).ForceAttemptHTTP2 = false
			c.Transport.(*http.Transport).TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, err := c.Post(s.URL()+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "hello") {
			t.Fatalf("h2=%v: %d %s", h2, resp.StatusCode, b)
		}
		if wantMajor := map[bool]int{true: 2, false: 1}[h2]; resp.ProtoMajor != wantMajor {
			t.Fatalf("h2=%v: protocol %s", h2, resp.Proto)
		}
		if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Fatalf("TLS state %+v", resp.TLS)
		}
		resp, err = c.Get(s.AdminURL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("admin /readyz over TLS: %d", resp.StatusCode)
		}
	}
	if _, err := h2Client(&tls.Config{}).Get(s.URL() + "/v1/models"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without the CA: %v", err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/v1/models")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP on the TLS listener: %d", resp.StatusCode)
		}
	}
}

// TestTLSH2StreamEventByEvent: an SSE answer through an HTTP/2 client
// arrives event by event. The upstream sends each event only after the
// client has received the previous one, so a buffering gateway would
// deadlock (and fail the test by timeout) instead of passing.
func TestTLSH2StreamEventByEvent(t *testing.T) {
	const events = 5
	received := make(chan int)
	upDone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(upDone)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < events; i++ {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"part %d \"}}]}\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case got := <-received:
				if got != i {
					t.Errorf("client received event %d, upstream sent %d", got, i)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("event %d did not reach the client while the upstream waited: the stream is buffered", i)
				return
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	ca := tlstest.NewCA(t, "test-ca")
	s := tlsServer(t, ca, t.TempDir(), up.URL, nil)

	c := h2Client(&tls.Config{RootCAs: ca.Pool()})
	resp, err := c.Post(s.URL()+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
	}
	br := bufio.NewReader(resp.Body)
	for i := 0; i < events; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !strings.Contains(line, fmt.Sprintf("part %d", i)) {
			t.Fatalf("event %d: %q", i, line)
		}
		select {
		case <-upDone:
			t.Fatalf("the upstream had finished before event %d arrived", i)
		default:
		}
		if _, err := br.ReadString('\n'); err != nil { // blank line ending the event
			t.Fatal(err)
		}
		received <- i
	}
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "[DONE]") {
		t.Fatalf("end of stream: %q %v", rest, err)
	}
}

// TestTLSCertRotationWithoutRestart: replacing the certificate files
// (the Kubernetes secret-volume swap) switches the certificate the
// running gateway serves.
func TestTLSCertRotationWithoutRestart(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	dir := t.TempDir()
	one, two := ca.Server(t, "warden-one"), ca.Server(t, "warden-two")
	gen1, gen2 := filepath.Join(dir, "..gen1"), filepath.Join(dir, "..gen2")
	for _, g := range []struct {
		dir  string
		leaf *tlstest.Leaf
	}{{gen1, one}, {gen2, two}} {
		if err := os.Mkdir(g.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		g.leaf.WriteFiles(t, g.dir, "tls")
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("..gen1", filepath.Join(dir, "..data")))
	must(os.Symlink("..data/tls.crt", filepath.Join(dir, "tls.crt")))
	must(os.Symlink("..data/tls.key", filepath.Join(dir, "tls.key")))
	s := tlsServer(t, ca, t.TempDir(), jsonUpstream(t).URL, func(c *config.Config) {
		c.TLS = &tlsutil.ServerConfig{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	})
	served := func() string {
		c := h2Client(&tls.Config{RootCAs: ca.Pool()})
		c.Transport.(*http.Transport).DisableKeepAlives = true
		resp, err := c.Get(s.URL() + "/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "warden-one" {
		t.Fatalf("served %q", cn)
	}
	// The kubelet's swap: a new ..data symlink renamed over the old one.
	must(os.Symlink("..gen2", filepath.Join(dir, "..data_tmp")))
	must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	deadline := time.Now().Add(10 * time.Second)
	for served() != "warden-two" {
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was not served")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTLSAdminClientCert: with client_ca_file the admin listener refuses
// a client without a certificate (require: at the handshake;
// require_except_probes: 403 except /healthz and /readyz) and serves one
// with a certificate from that CA. The gateway listener is unaffected.
func TestTLSAdminClientCert(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	opsCA := tlstest.NewCA(t, "ops-ca")
	dir := t.TempDir()
	opsF := opsCA.WriteCA(t, dir, "ops-ca")
	ops := opsCA.Client(t, "prometheus").TLS(t)
	withCert := h2Client(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{ops}})
	without := h2Client(&tls.Config{RootCAs: ca.Pool()})
	status := func(c *http.Client, u string) (int, error) {
		resp, err := c.Get(u)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	for _, mode := range []string{tlsutil.ClientAuthRequire, tlsutil.ClientAuthRequireExceptProbes} {
		t.Run(mode, func(t *testing.T) {
			s := tlsServer(t, ca, t.TempDir(), jsonUpstream(t).URL, func(c *config.Config) {
				a := *c.AdminTLS
				a.ClientCAFile, a.ClientAuth = opsF, mode
				c.AdminTLS = &a
			})
			if code, err := status(withCert, s.AdminURL()+"/metrics"); err != nil || code != 200 {
				t.Fatalf("with a certificate: %d %v", code, err)
			}
			code, err := status(without, s.AdminURL()+"/metrics")
			switch mode {
			case tlsutil.ClientAuthRequire:
				if err == nil {
					t.Fatalf("without a certificate: %d", code)
				}
			default:
				if err != nil || code != http.StatusForbidden {
					t.Fatalf("without a certificate: %d %v, want 403", code, err)
				}
				if code, err := status(without, s.AdminURL()+"/readyz"); err != nil || code != 200 {
					t.Fatalf("probe without a certificate: %d %v", code, err)
				}
			}
			if code, err := status(without, s.URL()+"/v1/models"); err != nil || code != 200 {
				t.Fatalf("gateway listener without a client certificate: %d %v", code, err)
			}
		})
	}
}

// TestTLSUpstreamPrivateCAAndMTLS: an upstream with a certificate from a
// private CA that requires a client certificate is reached with
// upstream_tls (ca_file, cert_file/key_file, server_name); an upstream
// whose certificate comes from a CA the route does not trust is refused
// with 502 and never sees the request.
func TestTLSUpstreamPrivateCAAndMTLS(t *testing.T) {
	dir := t.TempDir()
	modelCA := tlstest.NewCA(t, "model-ca")
	rogueCA := tlstest.NewCA(t, "rogue-ca")
	clientCA := tlstest.NewCA(t, "warden-client-ca")
	caF := modelCA.WriteCA(t, dir, "model-ca")
	cF, kF := clientCA.Client(t, "warden").WriteFiles(t, dir, "warden-client")

	upstream := func(ca *tlstest.CA, hits *int) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*hits++
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client":%q,"proto":%q}`, r.TLS.PeerCertificates[0].Subject.CommonName, r.Proto)
		}))
		srv.TLS = &tls.Config{
			Certificates: []tls.Certificate{ca.Server(t, "vllm", "vllm.models.svc").TLS(t)},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool(),
		}
		srv.EnableHTTP2 = true
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv
	}
	var goodHits, rogueHits int
	good, rogue := upstream(modelCA, &goodHits), upstream(rogueCA, &rogueHits)
	upTLS := &tlsutil.ClientConfig{CAFile: caF, CertFile: cF, KeyFile: kF, ServerName: "vllm.models.svc"}
	ca := tlstest.NewCA(t, "test-ca")
	s := tlsServer(t, ca, t.TempDir(), good.URL, func(c *config.Config) {
		c.Routes = []config.Route{
			{Name: "good", PathPrefix: "/v1/", Upstream: good.URL, Profile: config.ProfileOpenAI, UpstreamTLS: upTLS},
			{Name: "rogue", PathPrefix: "/rogue/", Upstream: rogue.URL, UpstreamTLS: upTLS},
		}
	})
	c := h2Client(&tls.Config{RootCAs: ca.Pool()})
	resp, err := c.Post(s.URL()+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"client":"warden"`) || !strings.Contains(string(b), `HTTP/2.0`) {
		t.Fatalf("private CA + mTLS upstream: %d %s", resp.StatusCode, b)
	}

	resp, err = c.Post(s.URL()+"/rogue/x", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var e errorBody
	if resp.StatusCode != http.StatusBadGateway || json.Unmarshal(b, &e) != nil || e.Error.Type != errUpstream {
		t.Fatalf("unknown CA upstream: %d %s", resp.StatusCode, b)
	}
	if rogueHits != 0 {
		t.Fatalf("the upstream with the unknown CA received %d requests", rogueHits)
	}
}

// TestUpstreamCredential: the route's static credential replaces the
// caller's, which never reaches the upstream — also with
// identity.forward_credential on, and for a custom header name.
func TestUpstreamCredential(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		io.WriteString(w, "{}")
	}))
	defer up.Close()
	idp := httptest.NewUnstartedServer(nil)
	idp.Start()
	defer idp.Close()
	issuer, err := devstack.NewIssuer(idp.URL)
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = issuer.Handler()
	idc := identity.Config{Issuers: []identity.IssuerConfig{{Issuer: idp.URL, Audiences: []string{devstack.DemoAudience}}}, ForwardCredential: true}
	idc.SetDefaults()
	auth, err := identity.New(context.Background(), idc, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	cfg := &config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		Routes: []config.Route{
			{Name: "keyed", PathPrefix: "/v1/", Upstream: up.URL, UpstreamCredential: &config.UpstreamCredential{Value: "Bearer sk-model-key"}},
			{Name: "azure", PathPrefix: "/azure/", Upstream: up.URL, UpstreamCredential: &config.UpstreamCredential{Header: "api-key", Value: "azure-key"}},
			{Name: "plain", PathPrefix: "/plain/", Upstream: up.URL},
		},
	}
	cfg.SetDefaults()
	g, err := New(cfg, Options{Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	tok, err := issuer.Token("alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	call := func(path string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	call("/v1/chat/completions")
	if a := got.Values("Authorization"); len(a) != 1 || a[0] != "Bearer sk-model-key" || got.Get("X-API-Key") != "" {
		t.Fatalf("keyed route: upstream got Authorization %q, X-API-Key %q", a, got.Get("X-API-Key"))
	}
	call("/azure/deployments")
	if got.Get("Api-Key") != "azure-key" || got.Get("Authorization") != "" || got.Get("X-API-Key") != "" {
		t.Fatalf("custom header route: upstream got %v", got)
	}
	// Without a route credential, forward_credential forwards the
	// caller's own token (the existing behaviour).
	call("/plain/x")
	if got.Get("Authorization") != "Bearer "+tok {
		t.Fatalf("plain route with forward_credential: %q", got.Get("Authorization"))
	}
}
