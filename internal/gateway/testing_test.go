package gateway

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
)

// newTestGateway starts a gateway in front of upstream with routes for
// /v1/ (openai) and /admin/ (generic), and returns its URL.
func newTestGateway(t testing.TB, upstream string, mod func(*config.Config)) (*Gateway, string) {
	t.Helper()
	cfg := &config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:1", AllowAnonymous: true,
		Routes: []config.Route{
			{Name: "openai", PathPrefix: "/v1/", Upstream: upstream, Profile: config.ProfileOpenAI},
			{Name: "admin", PathPrefix: "/admin/", Upstream: upstream},
			{Name: "files", PathPrefix: "/files/", Upstream: upstream, AllowEncodedSlash: true},
		},
	}
	cfg.SetDefaults()
	if mod != nil {
		mod(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	gw, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gw)
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	return gw, srv.URL
}

// echoUpstream answers with the path and headers it received.
func echoUpstream(t testing.TB) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream-Path", r.URL.EscapedPath())
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(up.Close)
	return up
}

func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
