package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
)

func startServer(t *testing.T, upstream string, shutdown time.Duration) (*Server, context.CancelFunc, chan error) {
	t.Helper()
	return startServerWith(t, upstream, func(c *config.Config) { c.Timeouts.Shutdown = shutdown })
}

// startServerWith is startServer with a change to the config.
func startServerWith(t *testing.T, upstream string, mod func(*config.Config)) (*Server, context.CancelFunc, chan error) {
	t.Helper()
	cfg := &config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", AllowAnonymous: true,
		Routes: []config.Route{{Name: "openai", PathPrefix: "/v1/", Upstream: upstream, Profile: config.ProfileOpenAI}},
	}
	cfg.SetDefaults()
	mod(cfg)
	s, err := NewServer(cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(cancel)
	return s, cancel, done
}

// TestGracefulShutdownDrainsStreams starts a stream, begins shutdown while
// it is in flight, and checks the stream still completes; the admin
// listener reports not ready during the drain.
func TestGracefulShutdownDrainsStreams(t *testing.T) {
	const events = 10
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < events; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(30 * time.Millisecond)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	s, cancel, done := startServer(t, up.URL, 10*time.Second)

	resp, err := http.Get("http://" + s.Addr() + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if l, err := br.ReadString('\n'); err != nil || l != "data: 0\n" {
		t.Fatalf("first event %q %v", l, err)
	}
	cancel() // SIGTERM
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream cut during drain: %v", err)
	}
	if !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Fatalf("stream not drained to the end: %q", rest)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after drain")
	}
	if _, err := http.Get("http://" + s.Addr() + "/v1/models"); err == nil {
		t.Error("new connections accepted after shutdown")
	}
}

// TestShutdownDeadlineCutsStuckStreams: a stream that never ends is cut
// when timeouts.shutdown expires, and Serve returns.
func TestShutdownDeadlineCutsStuckStreams(t *testing.T) {
	stop := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: 0\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(stop)
	s, cancel, done := startServer(t, up.URL, 300*time.Millisecond)
	resp, err := http.Get("http://" + s.Addr() + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after the shutdown deadline")
	}
	if _, err := io.ReadAll(br); err == nil {
		t.Log("stream ended cleanly after cut (chunked terminator written)")
	}
}

func TestAdminEndpoints(t *testing.T) {
	up := echoUpstream(t)
	s, _, _ := startServer(t, up.URL, time.Second)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		var resp *http.Response
		var err error
		for i := 0; i < 50; i++ { // Serve runs in a goroutine; wait until ready
			resp, err = http.Get("http://" + s.AdminAddr() + p)
			if err == nil && resp.StatusCode == 200 {
				break
			}
			if resp != nil {
				resp.Body.Close()
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", p, err, resp)
		}
		resp.Body.Close()
	}
	// The admin listener is not the gateway: no route there.
	resp, err := http.Get("http://" + s.AdminAddr() + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("admin served /v1/models: %d", resp.StatusCode)
	}
}
