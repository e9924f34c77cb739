package identity

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
)

func TestAPIKeyLifecycle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "apikeys.json")
	s, err := OpenFileKeyStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	plain, rec, err := s.Create("batch", []string{"ml-batch", "eng"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "wk_"+rec.ID+"_") {
		t.Fatalf("key %q does not carry id %q", plain[:20], rec.ID)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimPrefix(plain, "wk_"+rec.ID+"_")
	if strings.Contains(string(raw), secret) {
		t.Fatal("key file contains the secret")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}

	now := time.Now()
	p, err := s.Verify(plain, now)
	if err != nil {
		t.Fatal(err)
	}
	want := Principal{Issuer: APIKeyIssuer, Subject: "svc:batch", Kind: KindService, Name: "batch", Groups: []string{"ml-batch", "eng"}, AuthMethod: "api_key", CredentialID: rec.ID}
	if p.Issuer != want.Issuer || p.Subject != want.Subject || p.Kind != want.Kind || !slices.Equal(p.Groups, want.Groups) || p.AuthMethod != want.AuthMethod || p.CredentialID != want.CredentialID {
		t.Fatalf("principal %+v, want %+v", p, want)
	}

	// Wrong secret for a real id, unknown id, garbage.
	last := plain[len(plain)-1]
	flipped := plain[:len(plain)-1] + string(rune('A'+(last-'A'+1)%26))
	for name, key := range map[string]string{
		"wrong secret": flipped,
		"unknown id":   "wk_0000000000000000_" + secret,
	} {
		if _, err := s.Verify(key, now); authErr(t, err).Description != DescAPIKeyUnknown {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, key := range []string{"wk_short_x", "wk_", "wk_0000000000000000"} {
		if _, err := s.Verify(key, now); authErr(t, err).Description != DescMalformed {
			t.Fatalf("%q: %v", key, err)
		}
	}

	// Last-used: persisted by Flush, visible to another process.
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	other, err := OpenFileKeyStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	list, err := other.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].LastUsedAt.IsZero() || list[0].LastUsedAt.Unix() != now.Unix() {
		t.Fatalf("list after use: %+v", list)
	}

	// Revoke in "another process": the first store notices on its next
	// reload check, and refuses the key.
	if err := other.Revoke(rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := other.Revoke("ffffffffffffffff"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	_, err = s.Verify(plain, now.Add(2*reloadEvery))
	if e := authErr(t, err); e.Description != DescAPIKeyRevoked {
		t.Fatalf("revoked key: %q", e.Description)
	}
	// The revoke was not undone by a last-used write.
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	list, _ = other.List()
	if list[0].State(now) != "revoked" {
		t.Fatalf("state %q after flush", list[0].State(now))
	}
}

func TestAPIKeyExpiry(t *testing.T) {
	s, err := OpenFileKeyStore(filepath.Join(t.TempDir(), "k.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	plain, rec, err := s.Create("short", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(plain, rec.CreatedAt.Add(59*time.Minute)); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	_, err = s.Verify(plain, rec.CreatedAt.Add(time.Hour))
	if e := authErr(t, err); e.Description != DescAPIKeyExpired {
		t.Fatalf("after expiry: %q", e.Description)
	}
}

// TestAPIKeyThroughAuthenticator: both header forms, and the lazy
// last-used write (at most once a minute).
func TestAPIKeyThroughAuthenticator(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	a, err := newAuthenticator(t.Context(), Config{}, dir, c.now)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	plain, rec, err := a.KeyStore().Create("svc-a", []string{"g"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if a.KeyStore().Path() != filepath.Join(dir, DefaultAPIKeyFile) {
		t.Fatalf("store at %s", a.KeyStore().Path())
	}
	r1 := httptest.NewRequest(http.MethodGet, "/", nil)
	r1.Header.Set("Authorization", "Bearer "+plain)
	r2 := httptest.NewRequest(http.MethodGet, "/", nil)
	r2.Header.Set("X-API-Key", plain)
	for _, r := range []*http.Request{r1, r2} {
		p, err := a.Authenticate(r)
		if err != nil {
			t.Fatal(err)
		}
		if p.CredentialID != rec.ID || p.Kind != KindService {
			t.Fatalf("principal %+v", p)
		}
	}
	both := httptest.NewRequest(http.MethodGet, "/", nil)
	both.Header.Set("Authorization", "Bearer "+plain)
	both.Header.Set("X-API-Key", plain)
	if _, err := a.Authenticate(both); authErr(t, err).Status != http.StatusBadRequest {
		t.Fatalf("two credentials: %v", err)
	}
	// Nothing persisted yet (less than a minute since open) ...
	if l, _ := a.KeyStore().List(); l[0].LastUsedAt.IsZero() {
		t.Fatal("List must include in-memory last-used")
	}
	if kf, _ := readKeyFile(a.KeyStore().Path()); !kf.Keys[0].LastUsedAt.IsZero() {
		t.Fatal("last-used written on every request")
	}
	// ... Close persists it.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if kf, _ := readKeyFile(a.KeyStore().Path()); kf.Keys[0].LastUsedAt.IsZero() {
		t.Fatal("last-used not persisted on Close")
	}
}

func TestMissingCredential(t *testing.T) {
	a, err := New(t.Context(), Config{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cases := []struct {
		name, header, value string
		status              int
		code                string
	}{
		{"none", "", "", 401, ""},
		{"basic", "Authorization", "Basic YWxpY2U6cHc=", 400, CodeInvalidRequest},
		{"empty bearer", "Authorization", "Bearer ", 400, CodeInvalidRequest},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.header != "" {
			r.Header.Set(tc.header, tc.value)
		}
		_, err := a.Authenticate(r)
		e := authErr(t, err)
		if e.Status != tc.status || e.Code != tc.code {
			t.Fatalf("%s: %d %q", tc.name, e.Status, e.Code)
		}
		if tc.code == "" && e.WWWAuthenticate() != `Bearer realm="warden"` {
			t.Fatalf("missing credential challenge %q", e.WWWAuthenticate())
		}
		w := httptest.NewRecorder()
		apierr.Write(w, "req-12345678", e.APIError())
		if w.Code != tc.status || w.Header().Get("WWW-Authenticate") == "" || !strings.Contains(w.Body.String(), `"request_id":"req-12345678"`) {
			t.Fatalf("%s: response %d %q %s", tc.name, w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
		}
	}
}
