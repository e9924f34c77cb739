package console_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/devstack"
	"github.com/wardenhq/warden/internal/store/postgres"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// consoleOn builds a console (and the admin router around it) over the
// env's log, approvals and policy with the session store st, as one
// process of cmd/warden would.
func (e *env) consoleOn(t *testing.T, st console.SessionStore, cfg console.Config) (*console.Console, http.Handler) {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer, cfg.ClientID = e.princ["alice"].Issuer, devstack.ConsoleClientID
	}
	cfg.PublicURL = e.srv.URL
	roles := console.Roles{Auditor: []string{"ml-admins", "ml-approvers"}, Admin: []string{"ml-admins"}}
	con, err := console.New(console.Options{Config: cfg, Roles: roles, Audit: e.audit, Approvals: e.svc, Policy: e.pol,
		Sessions: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := admin.New(admin.Options{Console: con, Audit: e.audit, Logger: slog.New(slog.DiscardHandler),
		Authenticators: []admin.Authenticator{con.Authenticator()},
		Config:         admin.Config{Roles: admin.Roles{Auditor: roles.Auditor, Admin: roles.Admin}}})
	return con, h
}

// loggedIn reports whether the browser's session opens bob's search page.
func loggedIn(c *client) bool {
	p := c.get("/ui/search")
	return p.status == http.StatusOK && strings.Contains(p.url, "/ui/search")
}

// sessionStoreCases are the persistent stores: SQLite always, PostgreSQL
// with WARDEN_TEST_POSTGRES. open(t) opens a new handle on the same
// database each call (a restart, or another replica).
func sessionStoreCases(t *testing.T) map[string]func(t *testing.T) console.SessionStore {
	path := filepath.Join(t.TempDir(), "console-sessions.db")
	cases := map[string]func(t *testing.T) console.SessionStore{
		"sqlite": func(t *testing.T) console.SessionStore {
			s, err := sqlite.OpenSessions(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	if dsn := os.Getenv("WARDEN_TEST_POSTGRES"); dsn != "" {
		schema := pgSchema(t, dsn)
		cases["postgres"] = func(t *testing.T) console.SessionStore {
			s, err := postgres.OpenSessions(t.Context(), postgres.Config{DSN: dsn, Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
	return cases
}

// pgSchema returns a fresh schema name, dropped when the test ends.
func pgSchema(t *testing.T, dsn string) string {
	var b [6]byte
	rand.Read(b[:])
	schema := "wt_con_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// TestSessionSurvivesRestart: a session stored in the database still
// works after the console is rebuilt on a reopened store (a restart);
// logout then deletes the row, so the old cookie is dead on the next
// process too.
func TestSessionSurvivesRestart(t *testing.T) {
	for name, open := range sessionStoreCases(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			first := open(t)
			con, h := e.consoleOn(t, first, console.Config{})
			e.setHandler(h)
			c := e.browser()
			if p := c.login("bob", "/ui/search"); p.status != 200 {
				t.Fatalf("login: %d %s", p.status, p.url)
			}
			if con.Sessions() != 1 {
				t.Fatalf("%d sessions stored", con.Sessions())
			}
			first.(interface{ Close() error }).Close() // the process stops
			con2, h2 := e.consoleOn(t, open(t), console.Config{})
			e.setHandler(h2)
			if !loggedIn(c) {
				t.Fatal("the session did not survive the restart")
			}
			if p := c.post("/ui/logout", nil); p.status != 200 || con2.Sessions() != 0 {
				t.Fatalf("logout: %d, %d sessions left", p.status, con2.Sessions())
			}
			con3, h3 := e.consoleOn(t, open(t), console.Config{})
			e.setHandler(h3)
			if loggedIn(c) || con3.Sessions() != 0 {
				t.Fatal("a logged-out session came back after a restart")
			}
		})
	}
}

// TestSessionSharedByReplicas: two consoles on one database behind a
// round-robin balancer: a login started on one completes on the other,
// its session is honoured by both, and a logout on one ends it on both.
func TestSessionSharedByReplicas(t *testing.T) {
	for name, open := range sessionStoreCases(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			conA, a := e.consoleOn(t, open(t), console.Config{})
			_, b := e.consoleOn(t, open(t), console.Config{})
			var n atomic.Int64
			e.setHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1)%2 == 0 {
					a.ServeHTTP(w, r)
				} else {
					b.ServeHTTP(w, r)
				}
			}))
			// The login itself crosses replicas: /ui/login on one, the
			// callback on the other (its state travels in the cookie).
			c := e.browser()
			if p := c.login("bob", "/ui/search"); p.status != 200 || !strings.Contains(p.url, "/ui/search") {
				t.Fatalf("login across replicas: %d %s", p.status, p.url)
			}
			for i := 0; i < 4; i++ {
				if !loggedIn(c) {
					t.Fatalf("request %d (replica %c) refused the session", i, "BA"[n.Load()%2])
				}
			}
			if p := c.post("/ui/logout", nil); p.status != 200 {
				t.Fatalf("logout: %d", p.status)
			}
			for i := 0; i < 2; i++ {
				if loggedIn(c) {
					t.Fatalf("request %d after logout: still logged in", i)
				}
			}
			if conA.Sessions() != 0 {
				t.Fatalf("%d sessions after logout", conA.Sessions())
			}
		})
	}
}

// TestStolenSessionRowIsNoCookie: the table holds SHA-256(cookie); a
// copy of the row (its hash, in any encoding) presented as the cookie
// is refused, while the real cookie works.
func TestStolenSessionRowIsNoCookie(t *testing.T) {
	for name, open := range sessionStoreCases(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			_, h := e.consoleOn(t, open(t), console.Config{})
			e.setHandler(h)
			c := e.browser()
			if p := c.login("bob", "/ui/search"); p.status != 200 {
				t.Fatalf("login: %d", p.status)
			}
			cookie := c.sessionCookie()
			sum := sha256.Sum256([]byte(cookie))
			row, err := open(t).GetSession(t.Context(), sum[:])
			if err != nil || row == nil {
				t.Fatalf("the row of the session: %v %v", row, err)
			}
			if strings.Contains(string(row.Principal), cookie) {
				t.Fatal("the stored principal holds the cookie value")
			}
			for _, stolen := range []string{string(row.Hash), hex.EncodeToString(row.Hash), base64.RawURLEncoding.EncodeToString(row.Hash),
				base64.StdEncoding.EncodeToString(row.Hash)} {
				req, _ := http.NewRequest("GET", e.srv.URL+"/ui/search", nil)
				req.AddCookie(&http.Cookie{Name: "warden_console", Value: stolen})
				resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
				if err != nil {
					// net/http refuses to send some raw bytes as a
					// cookie: that is a refusal too.
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
					t.Errorf("the stolen hash as a cookie: %d %s", resp.StatusCode, resp.Header.Get("Location"))
				}
			}
			if !loggedIn(c) {
				t.Fatal("the real cookie stopped working")
			}
		})
	}
}

// TestSessionSweeper: the sweeper removes sessions past their idle or
// absolute lifetime from the table, and keeps live ones.
func TestSessionSweeper(t *testing.T) {
	for name, open := range sessionStoreCases(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			st := open(t)
			con, _ := e.consoleOn(t, st, console.Config{IdleTimeout: time.Hour, AbsoluteTimeout: 2 * time.Hour})
			now := time.Now()
			for _, s := range []console.StoredSession{
				{Hash: []byte("idle-idle-idle-idle-idle-idle-32"), Created: now.Add(-90 * time.Minute), LastSeen: now.Add(-61 * time.Minute)},
				{Hash: []byte("old-old-old-old-old-old-old-o-32"), Created: now.Add(-121 * time.Minute), LastSeen: now.Add(-time.Minute)},
				{Hash: []byte("live-live-live-live-live-live-32"), Created: now.Add(-90 * time.Minute), LastSeen: now.Add(-59 * time.Minute)},
			} {
				s.Principal = []byte(`{"sub":"bob"}`)
				if err := st.CreateSession(t.Context(), s); err != nil {
					t.Fatal(err)
				}
			}
			n, err := console.SweepForTest(con)
			if err != nil || n != 2 || con.Sessions() != 1 {
				t.Fatalf("swept %d (%v), %d left; want 2 swept, 1 left", n, err, con.Sessions())
			}
			if s, _ := st.GetSession(t.Context(), []byte("live-live-live-live-live-live-32")); s == nil {
				t.Fatal("the sweeper removed a live session")
			}
		})
	}
}

// The stores persist websession.Record without importing the console;
// these assertions keep them usable as its SessionStore.
var (
	_ console.SessionStore = (*sqlite.SessionStore)(nil)
	_ console.SessionStore = (*postgres.SessionStore)(nil)
)
