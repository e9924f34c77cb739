package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallProxy is a TCP forwarder in front of PostgreSQL that can stall:
// while stalled it keeps every connection open and accepts new ones but
// relays no byte in either direction, as a hung database or a network
// black hole does (not a closed connection, which the driver notices at
// once).
type stallProxy struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.relay(s, c)
		go p.relay(c, s)
	}
}

// relay copies src to dst, holding every chunk while stalled.
func (p *stallProxy) relay(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		for p.stalled {
			p.cond.Wait()
		}
		p.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) stall(on bool) {
	p.mu.Lock()
	p.stalled = on
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *stallProxy) close() {
	p.stall(false)
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// stallStack is the real binary on PostgreSQL reached through a
// stallProxy, in front of an upstream that counts what reaches it.
type stallStack struct {
	gw, admin string
	proxy     *stallProxy
	upHits    atomic.Int64
	token     string // alice, in ml-users
	other     string // bob: never asked yet, so his grant lookup reaches the store
}

const storeDeadline = time.Second

func newStallStack(t *testing.T, withPolicy bool) *stallStack {
	t.Helper()
	dsn := testDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	s := &stallStack{proxy: newStallProxy(t, u.Host)}
	u.Host = s.proxy.addr()
	issuer, idpURL, _ := startIssuer(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.upHits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"chat.completion","choices":[{"message":{"content":"ok"}}]}`))
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	s.gw, s.admin = freeAddr(t), freeAddr(t)
	pol := ""
	if withPolicy {
		pf := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(pf, []byte(replicaPolicy), 0o600); err != nil {
			t.Fatal(err)
		}
		pol = "policy: {file: " + pf + ", watch: false}\n"
	}
	cfg := fmt.Sprintf(`listen: %s
admin_listen: %s
data_dir: %s
timeouts: {store: %s}
routes:
  - {name: openai, path_prefix: /v1/, upstream: %s, profile: openai}
identity:
  issuers: [{issuer: %s, audiences: [warden]}]
%saudit:
  store: postgres
  dsn: %s
  checkpoint_interval: 500ms
`, s.gw, s.admin, filepath.Join(dir, "data"), storeDeadline, up.URL, idpURL, pol, u.String())
	cp := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := startServe(t, cp, s.admin)
	t.Cleanup(func() { s.proxy.stall(false); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	s.token = token(t, issuer, "alice")
	s.other = token(t, issuer, "bob")
	return s
}

// chat sends a chat completion; it returns the status, the error type and
// how long the answer took.
func (s *stallStack) chat(t *testing.T) (int, string, time.Duration) {
	t.Helper()
	return s.chatAs(t, s.token)
}

func (s *stallStack) chatAs(t *testing.T, tok string) (int, string, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+s.gw+"/v1/chat/completions", strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := (&http.Client{Timeout: 120 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("no answer (%s): %v", time.Since(start), err)
	}
	defer resp.Body.Close()
	var eb struct {
		Error struct{ Type string } `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &eb)
	return resp.StatusCode, eb.Error.Type, time.Since(start)
}

func (s *stallStack) readyz() int {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + s.admin + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitReadyz polls /readyz until it answers want.
func (s *stallStack) waitReadyz(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for s.readyz() != want {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered %d", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// refusedInTime stalls the store, sends one request as tok and checks it
// is refused 503 with wantType within timeouts.store, nothing forwarded.
func (s *stallStack) refusedInTime(t *testing.T, tok, wantType string) {
	t.Helper()
	hits := s.upHits.Load()
	s.proxy.stall(true)
	st, typ, took := s.chatAs(t, tok)
	t.Logf("stalled PostgreSQL: %d %s after %s (timeouts.store %s)", st, typ, took, storeDeadline)
	if st != http.StatusServiceUnavailable || typ != wantType {
		t.Fatalf("stalled store: status %d %s, want 503 %s", st, typ, wantType)
	}
	// The deadline plus generous room for a loaded machine; the old
	// gateway hung until the client gave up.
	if took > storeDeadline+10*time.Second {
		t.Errorf("503 after %s, not within timeouts.store (%s)", took, storeDeadline)
	}
	if n := s.upHits.Load() - hits; n != 0 {
		t.Errorf("%d requests reached the upstream while the store stalled", n)
	}
}

// TestPostgresStallRefusesWithinDeadline: when PostgreSQL stalls (the
// connection stays open, nothing comes back), a request answers 503
// within timeouts.store instead of hanging on the approval store's grant
// lookup, and nothing reaches the upstream; /readyz turns 503 while the
// approval store stalls and 200 once it answers again.
func TestPostgresStallRefusesWithinDeadline(t *testing.T) {
	s := newStallStack(t, true)
	if st, typ, _ := s.chat(t); st != http.StatusOK {
		t.Fatalf("before the stall: %d %s", st, typ)
	}
	// Bob's "no active grant" is not cached yet: policy input needs the
	// approval store's grant lookup, which stalls (approval_unavailable,
	// wire type approval_required).
	s.refusedInTime(t, s.other, "approval_required")
	// The approval store cannot answer: /readyz says so, like it does
	// for the audit store (it stayed 200 while such requests got 503),
	// and turns back once the store answers its probe.
	s.waitReadyz(t, http.StatusServiceUnavailable)
	s.proxy.stall(false)
	s.waitReadyz(t, http.StatusOK)
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, typ, _ := s.chat(t)
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the stall ended: %d %s", st, typ)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReadyzFollowsAuditStore: /readyz turns 503 while the audit store
// cannot write (requests get 503 audit_unavailable, within
// timeouts.store, nothing forwarded) and back to 200 once it recovers.
func TestReadyzFollowsAuditStore(t *testing.T) {
	s := newStallStack(t, false)
	if st, typ, _ := s.chat(t); st != http.StatusOK {
		t.Fatalf("before the stall: %d %s", st, typ)
	}
	if st := s.readyz(); st != http.StatusOK {
		t.Fatalf("/readyz before the stall: %d", st)
	}
	s.refusedInTime(t, s.token, "audit_unavailable")
	s.waitReadyz(t, http.StatusServiceUnavailable)
	s.proxy.stall(false)
	s.waitReadyz(t, http.StatusOK)
	if st, typ, _ := s.chat(t); st != http.StatusOK {
		t.Fatalf("after recovery: %d %s", st, typ)
	}
}
