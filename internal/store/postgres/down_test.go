package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/audit"
)

// forwarder is a TCP proxy on loopback in front of PostgreSQL, so a test
// can take the database away from a store: Close drops every connection
// and refuses new ones; Stall keeps connections open but stops
// forwarding (a hung network).
type forwarder struct {
	ln      net.Listener
	target  string
	stalled atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
	closed  bool
}

func newForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, target: target}
	go f.serve()
	t.Cleanup(f.Close)
	return f
}

func (f *forwarder) Addr() string { return f.ln.Addr().String() }

func (f *forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		c.Close()
		return false
	}
	f.conns = append(f.conns, c)
	return true
}

func (f *forwarder) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			continue
		}
		if f.stalled.Load() {
			go io.Copy(io.Discard, c) // accept, never answer
			continue
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		if !f.track(up) {
			c.Close()
			continue
		}
		go f.pipe(up, c)
		go f.pipe(c, up)
	}
}

func (f *forwarder) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !f.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// Stall stops forwarding bytes in both directions.
func (f *forwarder) Stall() { f.stalled.Store(true) }

// Close stops listening and closes every connection.
func (f *forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	f.ln.Close()
	for _, c := range f.conns {
		c.Close()
	}
}

// forwardedDSN returns the test DSN pointed at a new forwarder.
func forwardedDSN(t *testing.T) (string, *forwarder) {
	t.Helper()
	dsn := testDSN(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skip("WARDEN_TEST_POSTGRES is not a postgres:// URL; skipping the forwarder test")
	}
	f := newForwarder(t, net.JoinHostPort(cfg.Host, itoa(int(cfg.Port))))
	u.Host = f.Addr()
	return u.String(), f
}

// TestStoreDown takes the database away from a running single-replica
// Log and checks that appends fail (bounded by the caller's context)
// instead of hanging, so the gateway can answer 503.
func TestStoreDown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		down func(f *forwarder)
	}{
		{"connection closed", (*forwarder).Close},
		{"network stalled", (*forwarder).Stall},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			schema := newSchema(t)
			dsn, f := forwardedDSN(t)
			st := openStore(t, schema, WithWriteTimeout(2*time.Second))
			_ = st
			fst, err := Open(context.Background(), dsn, WithSchema(schema), WithMaxConns(4), WithWriteTimeout(time.Second), WithPollInterval(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer fst.Close()
			s, v, err := audit.LoadOrCreateKeys(filepath.Join(t.TempDir(), "k"), "test-down")
			if err != nil {
				t.Fatal(err)
			}
			cfg := audit.Config{Store: "postgres", DSN: dsn, WriteTimeout: time.Second}
			l, err := audit.Open(context.Background(), fst, cfg, s, v, audit.WithInstance("down"))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := l.Append(ctx, testEntry(1, "up")); err != nil {
				t.Fatalf("Append while up: %v", err)
			}

			tc.down(f)

			// Every admission fails; none hangs past its context.
			for i := range 3 {
				done := make(chan error, 1)
				go func() {
					actx, cancel := context.WithTimeout(ctx, time.Second)
					defer cancel()
					_, err := l.Append(actx, testEntry(10+i, "down"))
					done <- err
				}()
				select {
				case err := <-done:
					if err == nil {
						t.Fatalf("Append %d with the database down succeeded", i)
					}
					t.Logf("Append %d: %v", i, err)
				case <-time.After(60 * time.Second): // a hang detector, not a latency bound
					t.Fatalf("Append %d hung with the database down", i)
				}
			}
			// Direct store calls fail too.
			actx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if _, err := fst.Size(actx); err == nil {
				t.Fatal("Size with the database down succeeded")
			}
			cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
			defer ccancel()
			if err := l.Close(cctx); err == nil {
				t.Log("Log.Close recorded gateway.stopped despite the outage")
			}

			// The admissions made before the outage are durable: the
			// direct store sees them queued or sequenced, and none of the
			// failed ones is required to be there.
			recs, _ := st.Size(ctx)
			pend, err := st.PendingCount(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if recs+pend < 2 { // gateway.started and the one admitted entry
				t.Fatalf("after the outage: %d sequenced + %d pending, want at least 2", recs, pend)
			}
			if _, err := st.SeqOf(ctx, testEntry(1, "up").ID); err != nil && !errors.Is(err, audit.ErrNotFound) {
				t.Fatal(err)
			}
		})
	}
}
