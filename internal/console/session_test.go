package console

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// TestSessionLifetimes: a session ends after the idle time without use,
// and after the absolute time however much it is used.
func TestSessionLifetimes(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSessions(nil, 30*time.Minute, 2*time.Hour, func() time.Time { return now }, nil)
	p := &identity.Principal{Subject: "bob"}
	idle, _ := s.create(t.Context(), p)
	busy, _ := s.create(t.Context(), p)
	for i := 0; i < 5; i++ { // busy is used every 20 minutes, idle never
		now = now.Add(20 * time.Minute)
		if s.get(t.Context(), busy, true) == nil {
			t.Fatalf("busy session ended at %d", i)
		}
	}
	if s.get(t.Context(), idle, false) != nil {
		t.Fatal("idle session outlived its idle time")
	}
	now = now.Add(20 * time.Minute) // 2h after login
	if s.get(t.Context(), busy, true) != nil {
		t.Fatal("session outlived its absolute lifetime")
	}
	if s.get(t.Context(), "unknown", true) != nil || s.len() != 0 {
		t.Fatalf("%d sessions left", s.len())
	}
}

// TestSecureCookieOverTLS: with an https public URL (or a TLS request)
// the cookies are Secure.
func TestSecureCookieOverTLS(t *testing.T) {
	c, err := New(Options{Config: Config{Issuer: "https://idp.example", PublicURL: "https://warden.example"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("POST", "/ui/logout", nil))
	sc := rec.Header().Get("Set-Cookie")
	if !strings.Contains(sc, "Secure") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") {
		t.Fatalf("Set-Cookie %q", sc)
	}
}

// TestSafeNext: the post-login destination never leaves the console.
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/search?q=1": "/ui/search?q=1", "https://evil.example/": "/ui/", "//evil.example/ui/": "/ui/",
		"/ui/\\evil": "/ui/", "/v1/keys": "/ui/", "": "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPollingIsNotActivity: background polls read the session without
// refreshing its idle timer.
func TestPollingIsNotActivity(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newSessions(nil, 30*time.Minute, 8*time.Hour, func() time.Time { return now }, nil)
	id, _ := s.create(t.Context(), &identity.Principal{Subject: "bob"})
	for i := 0; i < 5; i++ {
		now = now.Add(5 * time.Minute)
		if s.get(t.Context(), id, false) == nil {
			t.Fatalf("poll %d: session ended early", i)
		}
	}
	now = now.Add(5 * time.Minute) // 30 min after the last activity
	if s.get(t.Context(), id, false) != nil {
		t.Fatal("polling kept an unattended session alive")
	}
}

// TestLoginCookie: the login cookie round-trips; a wrong state, a
// tampered or expired cookie, and an open-redirect destination are
// refused or neutralised.
func TestLoginCookie(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lf := newLoginFlow(Config{}, func() time.Time { return now })
	pl := lf.start("/ui/search?q=1")
	evil := pendingLogin{State: "s", Verifier: "v", Nonce: "n", Next: "https://evil.example/", Started: now.Unix()}
	for _, c := range []struct {
		name, cookie, state string
		after               time.Duration
		ok                  bool
		next                string
	}{
		{"round trip", pl.encode(), pl.State, time.Minute, true, "/ui/search?q=1"},
		{"wrong state", pl.encode(), "forged", 0, false, ""},
		{"no state", pl.encode(), "", 0, false, ""},
		{"expired", pl.encode(), pl.State, loginTTL + time.Second, false, ""},
		{"garbage", "!!not-base64", pl.State, 0, false, ""},
		{"not json", "bm90IGpzb24", pl.State, 0, false, ""},
		{"open redirect", evil.encode(), "s", 0, true, Prefix},
	} {
		t.Run(c.name, func(t *testing.T) {
			lf.now = func() time.Time { return now.Add(c.after) }
			got, ok := lf.finish(c.cookie, c.state)
			if ok != c.ok || ok && (got.Next != c.next || got.Verifier == "") {
				t.Fatalf("finish = %+v, %v; want ok=%v next=%q", got, ok, c.ok, c.next)
			}
		})
	}
	if long := lf.start("/ui/search?q=" + strings.Repeat("a", maxNext)); long.Next != Prefix {
		t.Fatalf("an oversized destination was kept: %d bytes", len(long.Next))
	}
}
