package gateway

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/tlsutil/tlstest"
)

// getStatus answers the status of a GET on a fresh connection, or 0.
func getStatus(url string) int {
	c := &http.Client{Timeout: hangGuard, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls url until it answers want (or the hang guard ends).
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for getStatus(url) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d", url, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDrainDelayKeepsServing: on shutdown (SIGTERM) /readyz turns 503
// first, and the gateway keeps accepting and answering new connections
// for timeouts.drain_delay before its listener closes.
func TestDrainDelayKeepsServing(t *testing.T) {
	up := echoUpstream(t)
	s, cancel, done := startServerWith(t, up.URL, func(c *config.Config) { c.Timeouts.DrainDelay = 5 * time.Second })
	waitStatus(t, "http://"+s.AdminAddr()+"/readyz", http.StatusOK)
	cancel() // SIGTERM
	waitStatus(t, "http://"+s.AdminAddr()+"/readyz", http.StatusServiceUnavailable)
	select {
	case <-done:
		t.Fatal("Serve returned before the drain delay")
	default:
	}
	if st := getStatus("http://" + s.Addr() + "/v1/models"); st != http.StatusOK {
		t.Fatalf("during the drain delay a new request got %d, want 200", st)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Serve did not return after the drain delay")
	}
	if getStatus("http://"+s.Addr()+"/v1/models") != 0 {
		t.Error("the listener still accepts after shutdown")
	}
}

// TestMaxConnections: with limits.max_connections, connections past the
// cap wait until one closes; the admin listener is not counted.
func TestMaxConnections(t *testing.T) {
	up := echoUpstream(t)
	s, _, _ := startServerWith(t, up.URL, func(c *config.Config) { c.Limits.MaxConnections = 2 })
	waitStatus(t, "http://"+s.AdminAddr()+"/readyz", http.StatusOK)
	holdCap(t, s.Addr(), "http://"+s.Addr()+"/v1/models", func() {
		if st := getStatus("http://" + s.AdminAddr() + "/healthz"); st != http.StatusOK {
			t.Errorf("admin listener while the gateway's cap is held: %d", st)
		}
	})
}

// TestAdminMaxConnections: limits.admin_max_connections caps the admin
// listener on its own (it had no cap, so console and report clients
// could exhaust file descriptors), while the gateway listener still
// serves.
func TestAdminMaxConnections(t *testing.T) {
	up := echoUpstream(t)
	s, _, _ := startServerWith(t, up.URL, func(c *config.Config) { c.Limits.AdminMaxConnections = 2 })
	waitStatus(t, "http://"+s.AdminAddr()+"/readyz", http.StatusOK)
	holdCap(t, s.AdminAddr(), "http://"+s.AdminAddr()+"/healthz", func() {
		if st := getStatus("http://" + s.Addr() + "/v1/models"); st != http.StatusOK {
			t.Errorf("gateway listener while the admin cap is held: %d", st)
		}
	})
}

// holdCap holds two connections to addr (a listener capped at 2), checks
// that a request to url waits, runs during, then frees a slot and checks
// that the request is served.
func holdCap(t *testing.T, addr, url string, during func()) {
	t.Helper()
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	got := make(chan int, 1)
	go func() { got <- getStatus(url) }()
	select {
	case st := <-got:
		t.Fatalf("a third connection was served (%d) while two held the cap", st)
	case <-time.After(500 * time.Millisecond):
	}
	during()
	held[0].Close()
	if st := <-got; st != http.StatusOK {
		t.Fatalf("after a slot freed: status %d", st)
	}
}

// TestSlowBodyTimesOutOverHTTP2: timeouts.request_body holds on an
// HTTP/2 stream too (the read deadline is per stream there): a body that
// stalls gets 408, and the connection's other streams are not shut down.
func TestSlowBodyTimesOutOverHTTP2(t *testing.T) {
	ca := tlstest.NewCA(t, "test-ca")
	s := tlsServer(t, ca, t.TempDir(), jsonUpstream(t).URL, func(c *config.Config) { c.Timeouts.RequestBody = 300 * time.Millisecond })
	c := h2Client(&tls.Config{RootCAs: ca.Pool()})
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("{")) }() // then nothing
	resp, err := c.Post(s.URL()+"/v1/chat/completions", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "request_timeout") {
		t.Fatalf("%s: %d %s, want HTTP/2 408 request_timeout", resp.Proto, resp.StatusCode, b)
	}
	// The same client (the same HTTP/2 connection) is still served.
	resp, err = c.Post(s.URL()+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("next request on the connection: %d", resp.StatusCode)
	}
}
