package tlsutil_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
	"github.com/wardenhq/warden/internal/tlsutil"
	"github.com/wardenhq/warden/internal/tlsutil/tlstest"
)

var quiet = slog.New(slog.DiscardHandler)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		server  *tlsutil.ServerConfig
		client  *tlsutil.ClientConfig
		wantKey string
		wantMsg string
	}{
		{"server ok", &tlsutil.ServerConfig{CertFile: "c", KeyFile: "k"}, nil, "", ""},
		{"server ok 1.3 with client auth", &tlsutil.ServerConfig{CertFile: "c", KeyFile: "k", MinVersion: "1.3", ClientCAFile: "ca", ClientAuth: "require_except_probes"}, nil, "", ""},
		{"no cert", &tlsutil.ServerConfig{KeyFile: "k"}, nil, "cert_file", "is required"},
		{"no key", &tlsutil.ServerConfig{CertFile: "c"}, nil, "key_file", "is required"},
		{"tls 1.1", &tlsutil.ServerConfig{CertFile: "c", KeyFile: "k", MinVersion: "1.1"}, nil, "min_version", "not accepted"},
		{"tls 1.0", &tlsutil.ServerConfig{CertFile: "c", KeyFile: "k", MinVersion: "1.0"}, nil, "min_version", "not accepted"},
		{"bad version", &tlsutil.ServerConfig{CertFile: "c", KeyFile: "k", MinVersion: "TLS1.2"}, nil, "min_version", `must be "1.2" or "1.3"`},
		{"client auth without CA", &tlsutil.ServerConfig{CertFile: "c", KeyFile: "k", ClientAuth: "require"}, nil, "client_auth", "needs client_ca_file"},
		{"bad client auth", &tlsutil.ServerConfig{CertFile: "c", KeyFile: "k", ClientCAFile: "ca", ClientAuth: "optional"}, nil, "client_auth", "must be"},
		{"client ok", nil, &tlsutil.ClientConfig{CAFile: "ca", CertFile: "c", KeyFile: "k", ServerName: "model.internal"}, "", ""},
		{"client cert without key", nil, &tlsutil.ClientConfig{CertFile: "c"}, "key_file", "go together"},
		{"client key without cert", nil, &tlsutil.ClientConfig{KeyFile: "k"}, "cert_file", "go together"},
		{"server name with port", nil, &tlsutil.ClientConfig{ServerName: "model:443"}, "server_name", "without scheme or port"},
		{"server name URL", nil, &tlsutil.ClientConfig{ServerName: "https://model"}, "server_name", "without scheme or port"},
		{"client tls 1.1", nil, &tlsutil.ClientConfig{MinVersion: "1.1"}, "min_version", "not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.server != nil {
				tt.server.SetDefaults()
				err = tt.server.Validate()
			} else {
				tt.client.SetDefaults()
				err = tt.client.Validate()
			}
			if tt.wantKey == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *field.Error
			if err == nil || !errorsAs(err, &fe) || fe.Path != tt.wantKey || !strings.Contains(fe.Msg, tt.wantMsg) {
				t.Fatalf("got %v, want %s: …%s…", err, tt.wantKey, tt.wantMsg)
			}
		})
	}
}

func errorsAs(err error, fe **field.Error) bool {
	for _, e := range flatten(err) {
		if f, ok := e.(*field.Error); ok {
			*fe = f
			return true
		}
	}
	return false
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// TestNewServerRefusesBadFiles: a missing file, a key that does not match
// the certificate and a CA file without a certificate all fail at start.
func TestNewServerRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	a := ca.Server(t, "a")
	b := ca.Server(t, "b")
	certA, keyA := a.WriteFiles(t, dir, "a")
	_, keyB := b.WriteFiles(t, dir, "b")
	junk := filepath.Join(dir, "junk.pem")
	tlstest.WriteFile(t, junk, []byte("not a certificate"))
	for name, c := range map[string]tlsutil.ServerConfig{
		"missing cert":   {CertFile: filepath.Join(dir, "nope.crt"), KeyFile: keyA},
		"mismatched key": {CertFile: certA, KeyFile: keyB},
		"junk cert":      {CertFile: junk, KeyFile: keyA},
		"junk client CA": {CertFile: certA, KeyFile: keyA, ClientCAFile: junk},
	} {
		if _, err := tlsutil.NewServer(c, quiet); err == nil {
			t.Errorf("%s: accepted", name)
		} else if bytes.Contains([]byte(err.Error()), a.KeyPEM[40:80]) {
			t.Errorf("%s: error contains key material: %v", name, err)
		}
	}
	if _, err := tlsutil.NewServer(tlsutil.ServerConfig{CertFile: certA, KeyFile: keyA}, quiet); err != nil {
		t.Fatal(err)
	}
}

// serve starts an HTTPS server with s's configuration and returns its URL.
func serve(t *testing.T, s *tlsutil.Server, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.RequireClientCert(h), TLSConfig: s.TLSConfig(), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func client(pool *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: pool, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
}

func TestMinVersion(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	certF, keyF := ca.Server(t, "srv").WriteFiles(t, dir, "srv")
	s, err := tlsutil.NewServer(tlsutil.ServerConfig{CertFile: certF, KeyFile: keyF}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	u := serve(t, s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	old := client(&tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
	if _, err := old.Get(u); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	ok := client(&tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS12})
	resp, err := ok.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS.Version != tls.VersionTLS12 {
		t.Fatalf("version %x", resp.TLS.Version)
	}
}

// TestClientAuthModes: "require" fails the handshake without a client
// certificate; "require_except_probes" lets only the probes through
// without one; a certificate from another CA is refused in both.
func TestClientAuthModes(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "server-ca")
	clientCA := tlstest.NewCA(t, "client-ca")
	other := tlstest.NewCA(t, "other-ca")
	certF, keyF := ca.Server(t, "srv").WriteFiles(t, dir, "srv")
	caF := clientCA.WriteCA(t, dir, "client-ca")
	good := clientCA.Client(t, "ops").TLS(t)
	bad := other.Client(t, "intruder").TLS(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

	get := func(u string, cert *tls.Certificate) (int, error) {
		cfg := &tls.Config{RootCAs: ca.Pool()}
		if cert != nil {
			// Sent whatever CAs the server asks for, so that a
			// certificate from another CA really reaches it.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		resp, err := client(cfg).Get(u)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	req, err := tlsutil.NewServer(tlsutil.ServerConfig{CertFile: certF, KeyFile: keyF, ClientCAFile: caF}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	u := serve(t, req, ok)
	if code, err := get(u+"/healthz", nil); err == nil {
		t.Fatalf("require: a client without a certificate got %d", code)
	}
	if code, err := get(u+"/v1/audit", &bad); err == nil {
		t.Fatalf("require: a certificate from another CA got %d", code)
	}
	if code, err := get(u+"/v1/audit", &good); err != nil || code != 200 {
		t.Fatalf("require: good certificate: %d %v", code, err)
	}

	probes, err := tlsutil.NewServer(tlsutil.ServerConfig{CertFile: certF, KeyFile: keyF, ClientCAFile: caF, ClientAuth: "require_except_probes"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	u = serve(t, probes, ok)
	for _, tc := range []struct {
		path string
		cert *tls.Certificate
		want int
	}{
		{"/healthz", nil, 200}, {"/readyz", nil, 200},
		{"/metrics", nil, 403}, {"/v1/audit/entries", nil, 403}, {"/healthz/../v1", nil, 403},
		{"/metrics", &good, 200},
	} {
		code, err := get(u+tc.path, tc.cert)
		if err != nil || code != tc.want {
			t.Errorf("require_except_probes %s (cert %v): %d %v, want %d", tc.path, tc.cert != nil, code, err, tc.want)
		}
	}
	if code, err := get(u+"/metrics", &bad); err == nil {
		t.Fatalf("require_except_probes: a certificate from another CA got %d", code)
	}

	// The refusal is the one JSON error shape, with the request id in the
	// body and the header.
	resp, err := client(&tls.Config{RootCAs: ca.Pool()}).Get(u + "/v1/audit/entries")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Type      string `json:"type"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if body.Error.Type != "client_certificate_required" || body.Error.RequestID == "" || body.Error.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("refusal body %+v, X-Request-Id %q", body.Error, resp.Header.Get("X-Request-Id"))
	}
}

// secretVolume lays out files the way the kubelet does for a Secret:
// name -> ..data/name, ..data -> ..<generation>.
type secretVolume struct {
	t   *testing.T
	dir string
	gen int
}

func (v *secretVolume) publish(files map[string][]byte) {
	v.t.Helper()
	v.gen++
	gen := filepath.Join(v.dir, "..gen"+string(rune('0'+v.gen)))
	if err := os.Mkdir(gen, 0o755); err != nil {
		v.t.Fatal(err)
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(gen, n), b, 0o600); err != nil {
			v.t.Fatal(err)
		}
		link := filepath.Join(v.dir, n)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", n), link); err != nil {
				v.t.Fatal(err)
			}
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloadOnSecretSwap rotates the certificate the way Kubernetes
// updates a mounted Secret (an atomic ..data symlink swap) and sees the
// new one served without a restart; the periodic re-read is off, so the
// file watch did it.
func TestReloadOnSecretSwap(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	one, two := ca.Server(t, "one"), ca.Server(t, "two")
	vol := &secretVolume{t: t, dir: t.TempDir()}
	vol.publish(map[string][]byte{"tls.crt": one.CertPEM, "tls.key": one.KeyPEM})
	s, err := tlsutil.NewServer(tlsutil.ServerConfig{CertFile: filepath.Join(vol.dir, "tls.crt"), KeyFile: filepath.Join(vol.dir, "tls.key")}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s.SetPollInterval(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	u := serve(t, s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	served := func() string {
		c := client(&tls.Config{RootCAs: ca.Pool()})
		c.Transport.(*http.Transport).DisableKeepAlives = true
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "one" {
		t.Fatalf("served %q", cn)
	}
	vol.publish(map[string][]byte{"tls.crt": two.CertPEM, "tls.key": two.KeyPEM})
	waitFor(t, "the rotated certificate", func() bool { return served() == "two" })
}

// TestHalfWrittenPairKeepsServing: a certificate written before its key
// (a non-atomic rotation) fails to load; the old pair stays in service
// until the key arrives.
func TestHalfWrittenPairKeepsServing(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	one, two := ca.Server(t, "one"), ca.Server(t, "two")
	certF, keyF := one.WriteFiles(t, dir, "srv")
	s, err := tlsutil.NewServer(tlsutil.ServerConfig{CertFile: certF, KeyFile: keyF}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	tlstest.WriteFile(t, certF, two.CertPEM)
	if err := s.Reload(); err == nil {
		t.Fatal("a certificate with the wrong key was accepted")
	}
	if cn := s.Certificate().Leaf.Subject.CommonName; cn != "one" {
		t.Fatalf("after a failed reload the served certificate is %q", cn)
	}
	tlstest.WriteFile(t, keyF, two.KeyPEM)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := s.Certificate().Leaf.Subject.CommonName; cn != "two" {
		t.Fatalf("served %q after the key arrived", cn)
	}
}

// TestPollCatchesMissedEvents: with no usable file event (the watch is
// not started for the directory that changes), the periodic re-read still
// picks up the new certificate.
func TestPollCatchesMissedEvents(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	one, two := ca.Server(t, "one"), ca.Server(t, "two")
	certF, keyF := one.WriteFiles(t, dir, "srv")
	s, err := tlsutil.NewServer(tlsutil.ServerConfig{CertFile: certF, KeyFile: keyF}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	s.SetPollInterval(50 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	// Write in place (no rename, no new name): only a Write event, which
	// the watch may coalesce; either path must end on the new pair.
	for _, f := range []struct {
		p string
		b []byte
	}{{certF, two.CertPEM}, {keyF, two.KeyPEM}} {
		if err := os.WriteFile(f.p, f.b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the new certificate", func() bool { return s.Certificate().Leaf.Subject.CommonName == "two" })
}

// TestClientVerifies: the client configuration trusts only its CA bundle,
// presents its client certificate, and honours the server name override.
func TestClientVerifies(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "private-ca")
	other := tlstest.NewCA(t, "other-ca")
	clientCA := tlstest.NewCA(t, "client-ca")
	srvCert := ca.Server(t, "model", "model.internal").TLS(t)
	caF := ca.WriteCA(t, dir, "ca")
	otherF := other.WriteCA(t, dir, "other")
	cF, kF := clientCA.Client(t, "warden").WriteFiles(t, dir, "client")

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool()}
	srv.StartTLS()
	defer srv.Close()

	get := func(c tlsutil.ClientConfig) (string, error) {
		cl, err := tlsutil.NewClient(c, quiet)
		if err != nil {
			return "", err
		}
		resp, err := client(cl.TLSConfig()).Get(srv.URL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), nil
	}
	if got, err := get(tlsutil.ClientConfig{CAFile: caF, CertFile: cF, KeyFile: kF}); err != nil || got != "warden" {
		t.Fatalf("mTLS with the private CA: %q %v", got, err)
	}
	if got, err := get(tlsutil.ClientConfig{CAFile: caF, CertFile: cF, KeyFile: kF, ServerName: "model.internal"}); err != nil || got != "warden" {
		t.Fatalf("server name override: %q %v", got, err)
	}
	if _, err := get(tlsutil.ClientConfig{CAFile: caF, CertFile: cF, KeyFile: kF, ServerName: "elsewhere.internal"}); err == nil {
		t.Fatal("a certificate not valid for the server name was accepted")
	}
	if _, err := get(tlsutil.ClientConfig{CAFile: otherF, CertFile: cF, KeyFile: kF}); err == nil {
		t.Fatal("an upstream signed by an unknown CA was accepted")
	}
	if _, err := get(tlsutil.ClientConfig{CAFile: caF}); err == nil {
		t.Fatal("the upstream requiring a client certificate accepted none")
	}
}
