package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/mask"
)

// hangGuard bounds how long a test waits for an answer that today's
// fixed code gives at once and the old code never gave; it is not a
// timing assertion.
const hangGuard = 20 * time.Second

// rawUpload opens a connection to the gateway and sends the headers of a
// POST with the given Content-Length and the first part of its body.
func rawUpload(t *testing.T, gwURL, token string, contentLength int64, first string) (net.Conn, *bufio.Reader) {
	t.Helper()
	return rawUploadAs(t, gwURL, "/v1/chat/completions", token, contentLength, first)
}

// rawUploadPath is rawUpload without a credential to another path.
func rawUploadPath(t *testing.T, gwURL, path string, contentLength int64, first string) (net.Conn, *bufio.Reader) {
	t.Helper()
	return rawUploadAs(t, gwURL, path, "", contentLength, first)
}

func rawUploadAs(t *testing.T, gwURL, path, token string, contentLength int64, first string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(gwURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, contentLength)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	b.WriteString("\r\n")
	b.WriteString(first)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(hangGuard))
	return conn, bufio.NewReader(conn)
}

// readAnswer reads one response from a raw connection.
func readAnswer(t *testing.T, br *bufio.Reader) (*http.Response, errorDetail) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer while the upload stalls: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var eb errorBody
	_ = json.Unmarshal(body, &eb)
	return resp, eb.Error
}

// connClosed reports whether the server closed the connection (EOF
// rather than a read timeout).
func connClosed(conn net.Conn, br *bufio.Reader) bool {
	_ = conn.SetReadDeadline(time.Now().Add(hangGuard))
	_, err := br.ReadByte()
	return err == io.EOF || (err != nil && !isTimeout(err))
}

// drained waits until a budget is back to zero (the handler returns it
// just after the caller has its answer) and returns what is left.
func drained(used *atomic.Int64) int64 {
	deadline := time.Now().Add(hangGuard)
	for used.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return used.Load()
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestUnauthenticatedBodyNeverRead: a caller without a credential that
// announces a 10 MiB body and stalls is refused from its headers, at
// once, and its connection is closed; the body is never waited for (the
// old gateway read the whole body first, so it never answered).
func TestUnauthenticatedBodyNeverRead(t *testing.T) {
	s := newStack(t)
	for _, tc := range []struct {
		tok string
		cl  int64
	}{{"", 10<<20 - 1}, {"not-a-token", 10<<20 - 1}, {"", 1000}, {"not-a-token", 1000}} {
		tok := tc.tok
		conn, br := rawUpload(t, s.gw, tok, tc.cl, `{"model":"m","messages":[`)
		resp, e := readAnswer(t, br)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: status %d (%s), want 401", tok, resp.StatusCode, e.Type)
		}
		if !resp.Close {
			t.Errorf("token %q: the connection of a refused upload is kept open", tok)
		}
		if !connClosed(conn, br) {
			t.Errorf("token %q: the server did not close the connection", tok)
		}
	}
	// A request refused before identity (no route) with a small body
	// that never arrives does not hold its connection either.
	conn, br := rawUploadPath(t, s.gw, "/nowhere", 1000, "{")
	if resp, _ := readAnswer(t, br); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("no route: status %d", resp.StatusCode)
	}
	if !connClosed(conn, br) {
		t.Error("the connection of a request without a route waits for its body")
	}
	if s.upHits.Load() != 0 {
		t.Error("a refused request reached the upstream")
	}
	if n := drained(&s.g.bodyBudget.used); n != 0 {
		t.Errorf("%d body bytes still reserved", n)
	}
}

// TestSlowBodyTimesOut: an authenticated caller that sends its body one
// byte at a time, slower than timeouts.request_body allows, gets 408 and
// its connection is freed.
func TestSlowBodyTimesOut(t *testing.T) {
	s := newStack(t, func(c *config.Config) { c.Timeouts.RequestBody = 300 * time.Millisecond })
	conn, br := rawUpload(t, s.gw, s.token(t, "alice"), 100, "{")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte per 200 ms: never idle, never done in time
		for i := 0; i < 98; i++ {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	resp, e := readAnswer(t, br)
	if resp.StatusCode != http.StatusRequestTimeout || e.Type != "request_timeout" {
		t.Fatalf("status %d type %q, want 408 request_timeout", resp.StatusCode, e.Type)
	}
	if !connClosed(conn, br) {
		t.Error("the connection of a timed-out body was not closed")
	}
	if s.upHits.Load() != 0 {
		t.Error("a request without its body reached the upstream")
	}
	if es := s.entries(t, resp.Header.Get("X-Request-Id")); len(es) != 1 || es[0].Kind != "request.refused" || es[0].Status != http.StatusRequestTimeout || es[0].Principal == nil {
		t.Errorf("the timed-out body of a known caller is not recorded as refused: %+v", es)
	}
	if n := drained(&s.g.bodyBudget.used); n != 0 {
		t.Errorf("%d body bytes still reserved after the timeout", n)
	}
}

// TestInflightBodyBudget: while one caller's announced body holds the
// whole limits.max_inflight_body_bytes, another gets 503
// temporarily_unavailable with Retry-After; once the first is done, the
// budget is free again.
func TestInflightBodyBudget(t *testing.T) {
	s := newStack(t, func(c *config.Config) {
		c.Limits.MaxRequestBody = 1 << 20
		c.Limits.MaxInflightBodyBytes = 1 << 20
	})
	tok := s.token(t, "alice")
	conn, _ := rawUpload(t, s.gw, tok, 1<<20, "{")
	deadline := time.Now().Add(hangGuard)
	for s.g.bodyBudget.used.Load() != 1<<20 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled upload reserved nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := s.do(t, "POST", "/v1/chat/completions", tok, nil)
	var eb errorBody
	_ = json.Unmarshal(body, &eb)
	if resp.StatusCode != http.StatusServiceUnavailable || eb.Error.Type != "temporarily_unavailable" {
		t.Fatalf("status %d: %s, want 503 temporarily_unavailable", resp.StatusCode, body)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if s.upHits.Load() != 0 {
		t.Error("the refused request reached the upstream")
	}
	conn.Close() // the stalled upload goes away: its reservation is returned
	for s.g.bodyBudget.used.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the closed upload's reservation was not returned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if resp, body := s.do(t, "POST", "/v1/chat/completions", tok, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the budget was freed: status %d: %s", resp.StatusCode, body)
	}
	if n := drained(&s.g.bodyBudget.used); n != 0 {
		t.Errorf("%d body bytes still reserved after a completed request", n)
	}
}

// TestInflightResponseBudget: buffered (masked JSON) upstream answers
// share limits.max_inflight_response_bytes: one larger than the whole
// budget, or one arriving while another holds it, gets 503
// temporarily_unavailable; the budget is returned after each answer.
func TestInflightResponseBudget(t *testing.T) {
	const budget = 64 << 10
	release := make(chan struct{})
	var once bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		fmt.Sscan(r.URL.Query().Get("n"), &n)
		body := `{"text":"` + strings.Repeat("a", n) + `"}`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.URL.Query().Get("hold") == "1" {
			_, _ = io.WriteString(w, body[:len(body)-2])
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			_, _ = io.WriteString(w, body[len(body)-2:])
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	defer up.Close()
	defer func() {
		if !once {
			close(release)
		}
	}()
	g, gw := maskingGatewayWith(t, up.URL, &memAudit{}, mask.Profile{}, nil, func(c *config.Config) {
		c.Limits.MaxInflightResponseBytes = budget
	})
	get := func(q string) (int, errorDetail, http.Header) {
		resp, err := (&http.Client{Timeout: hangGuard}).Get(gw + "/v1/chat/completions?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var eb errorBody
		_ = json.Unmarshal(body, &eb)
		return resp.StatusCode, eb.Error, resp.Header
	}
	if st, e, h := get("n=100000"); st != http.StatusServiceUnavailable || e.Type != "temporarily_unavailable" || h.Get("Retry-After") == "" {
		t.Fatalf("answer larger than the budget: status %d type %q Retry-After %q", st, e.Type, h.Get("Retry-After"))
	}
	if n := drained(&g.respBudget.used); n != 0 {
		t.Fatalf("%d response bytes still reserved after a refused answer", n)
	}
	if st, _, _ := get("n=1000"); st != http.StatusOK {
		t.Fatalf("small answer: status %d", st)
	}

	held := make(chan int, 1)
	go func() { st, _, _ := get("hold=1&n=50000"); held <- st }()
	deadline := time.Now().Add(hangGuard)
	for g.respBudget.used.Load() < 50000 {
		if time.Now().After(deadline) {
			t.Fatal("the held answer reserved nothing")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, e, _ := get("n=20000"); st != http.StatusServiceUnavailable || e.Type != "temporarily_unavailable" {
		t.Fatalf("answer while the budget is held: status %d type %q, want 503", st, e.Type)
	}
	once = true
	close(release)
	if st := <-held; st != http.StatusOK {
		t.Fatalf("held answer: status %d", st)
	}
	if st, _, _ := get("n=20000"); st != http.StatusOK {
		t.Fatalf("after the held answer: status %d", st)
	}
	if n := drained(&g.respBudget.used); n != 0 {
		t.Errorf("%d response bytes still reserved at the end", n)
	}
}

// TestUpstreamBodyIdle: an upstream that sends its JSON slowly (a byte at
// a time, never idle, but the caller gets nothing while it is buffered)
// or stops mid-body gets 504 upstream_timeout after
// timeouts.upstream_body_idle; a stream that stalls is cut.
func TestUpstreamBodyIdle(t *testing.T) {
	done := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/slow":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "200")
			_, _ = io.WriteString(w, `{"text":"`)
			for i := 0; i < 190; i++ {
				w.(http.Flusher).Flush()
				select {
				case <-done:
					return
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				_, _ = io.WriteString(w, "a")
			}
		case "/v1/stall":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "200")
			_, _ = io.WriteString(w, `{"text":"`)
			w.(http.Flusher).Flush()
		case "/v1/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"hello"}}]}`+"\n\n")
			w.(http.Flusher).Flush()
		case "/files/stream":
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = io.WriteString(w, "first part\n")
			w.(http.Flusher).Flush()
		}
		select {
		case <-done:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(done)
	idle := func(c *config.Config) { c.Timeouts.UpstreamBodyIdle = 300 * time.Millisecond }
	log := &memAudit{}
	_, gw := maskingGatewayWith(t, up.URL, log, mask.Profile{}, nil, idle)
	client := &http.Client{Timeout: hangGuard}
	for _, path := range []string{"/v1/slow", "/v1/stall"} {
		resp, err := client.Get(gw + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var eb errorBody
		_ = json.Unmarshal(body, &eb)
		if resp.StatusCode != http.StatusGatewayTimeout || eb.Error.Type != "upstream_timeout" {
			t.Errorf("%s: status %d: %s, want 504 upstream_timeout", path, resp.StatusCode, body)
		}
	}

	// A masked event stream that stalls: it ends with an error event
	// (the held-back text withheld), recorded as upstream_timeout.
	resp, err := client.Get(gw + "/v1/sse")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	evs := readEvents(string(body))
	if len(evs) == 0 {
		t.Fatalf("stalled event stream: %q", body)
	}
	checkErrorEvent(t, evs[len(evs)-1], "upstream_error")
	if e := log.completed(resp.Header.Get("X-Request-Id")); e == nil || e.Outcome != "upstream_timeout" {
		t.Fatalf("stalled event stream recorded as %+v, want outcome upstream_timeout", e)
	}

	// A stream (not buffered) that stalls after its first bytes: the
	// caller gets them, then the stream is cut instead of hanging.
	_, gw2 := newTestGateway(t, up.URL, idle)
	resp, err = client.Get(gw2 + "/files/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("a stalled stream ended normally: %q", body)
	}
	if isTimeout(err) {
		t.Fatalf("the stalled stream was not cut: %v", err)
	}
	if !strings.Contains(string(body), "first part") {
		t.Errorf("the caller did not get the bytes before the stall: %q", body)
	}
}

// TestUpgradePassesBodyBounds: the upstream body wrapper leaves a
// protocol upgrade alone (the proxy needs the transport's writable
// body), so an upgraded connection on an unmasked route still carries
// bytes both ways.
func TestUpgradePassesBodyBounds(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	}))
	defer up.Close()
	_, gw := newTestGateway(t, up.URL, func(c *config.Config) { c.Timeouts.UpstreamBodyIdle = time.Minute })
	conn, err := net.Dial("tcp", strings.TrimPrefix(gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(hangGuard))
	_, _ = io.WriteString(conn, "GET /admin/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	_, _ = io.WriteString(conn, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo: ping\n" {
		t.Fatalf("upgraded connection: %q %v", line, err)
	}
}
