package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

func oneIssuer(idp *testIdP) Config {
	return Config{Issuers: []IssuerConfig{{Issuer: idp.issuer(), Audiences: []string{"warden"}}}}
}

// TestUnknownKIDFlood: 10 000 tokens with random kids (from 8 concurrent
// callers) cause at most a couple of JWKS fetches, and every one is
// refused as an unknown signing key.
func TestUnknownKIDFlood(t *testing.T) {
	ra, _, _ := testKeys()
	idp := newTestIdP(t, testKey{kid: "rsa1", alg: jose.RS256, priv: ra})
	a, c := newAuth(t, oneIssuer(idp), true)
	before := idp.jwksHits.Load()
	c.advance(time.Hour) // past the cooldown: the flood may trigger one fetch
	now := c.now()
	claims := jsonB64(t, baseClaims(idp.issuer(), now))
	sig := make([]byte, 256)
	_, _ = rand.Read(sig)

	const n, workers = 10000, 8
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				kid := make([]byte, 8)
				_, _ = rand.Read(kid)
				tok := jsonB64(t, map[string]string{"alg": "RS256", "typ": "at+jwt", "kid": hex.EncodeToString(kid)}) + "." + claims + "." + b64(sig)
				_, err := a.Authenticate(bearer(tok))
				if e := authErr(t, err); e.Description != DescUnknownKey || e.Status != http.StatusUnauthorized {
					errs <- e.Description
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("flood token refused with %q, want %q", e, DescUnknownKey)
	}
	hits := idp.jwksHits.Load() - before
	t.Logf("JWKS fetches caused by %d random-kid tokens: %d", n, hits)
	if hits > 1 {
		t.Fatalf("JWKS endpoint fetched %d times during the flood, want 1 (once per cooldown)", hits)
	}
	if hits < 1 {
		t.Fatalf("no refetch at all after the cooldown: an unknown kid must trigger one fetch")
	}
}

// TestKeyRotation: the IdP replaces its key; new tokens verify without a
// restart, and tokens signed by the withdrawn key (cached or not) are
// refused once the new set has been fetched.
func TestKeyRotation(t *testing.T) {
	ra, rb, _ := testKeys()
	old := testKey{kid: "2026-01", alg: jose.RS256, priv: ra}
	next := testKey{kid: "2026-02", alg: jose.RS256, priv: rb}
	idp := newTestIdP(t, old)
	a, c := newAuth(t, oneIssuer(idp), true)
	now := c.now()
	cachedOld := mint(t, old, "at+jwt", baseClaims(idp.issuer(), now))
	if _, err := a.Authenticate(bearer(cachedOld)); err != nil {
		t.Fatal(err)
	}
	if a.cache.len() != 1 {
		t.Fatalf("token not cached")
	}

	idp.setKeys(next)
	c.advance(time.Minute) // past the unknown-kid cooldown
	fresh := mint(t, next, "at+jwt", baseClaims(idp.issuer(), c.now()))
	p, err := a.Authenticate(bearer(fresh))
	if err != nil {
		t.Fatalf("token signed by the new key: %v", err)
	}
	if p.Subject != "alice" {
		t.Fatalf("principal %+v", p)
	}
	for name, tok := range map[string]string{
		"cached token of the removed key": cachedOld,
		"fresh token of the removed key":  mint(t, old, "at+jwt", baseClaims(idp.issuer(), c.now())),
	} {
		_, err := a.Authenticate(bearer(tok))
		if e := authErr(t, err); e.Description != DescUnknownKey {
			t.Fatalf("%s: got %q, want %q", name, e.Description, DescUnknownKey)
		}
	}
}

// TestIdPOutage: with the IdP down, cached keys keep working; an IdP down
// at start makes its tokens 503 until it is back, and New still succeeds.
func TestIdPOutage(t *testing.T) {
	ra, _, _ := testKeys()
	k := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}

	t.Run("keys kept while IdP is down", func(t *testing.T) {
		idp := newTestIdP(t, k)
		a, c := newAuth(t, oneIssuer(idp), true)
		idp.down.Store(true)
		c.advance(time.Hour)
		if err := a.KeySet(idp.issuer()).Refresh(t.Context()); err == nil {
			t.Fatal("refresh against a down IdP succeeded")
		}
		tok := mint(t, k, "at+jwt", baseClaims(idp.issuer(), c.now()))
		if _, err := a.Authenticate(bearer(tok)); err != nil {
			t.Fatalf("cached keys not used during outage: %v", err)
		}
	})

	t.Run("IdP down at start", func(t *testing.T) {
		idp := newTestIdP(t, k)
		idp.down.Store(true)
		a, c := newAuth(t, oneIssuer(idp), false)
		tok := mint(t, k, "at+jwt", baseClaims(idp.issuer(), c.now()))
		_, err := a.Authenticate(bearer(tok))
		e := authErr(t, err)
		if e.Status != http.StatusServiceUnavailable || e.Description != DescIssuerUnavailable {
			t.Fatalf("got %d %q, want 503 %q", e.Status, e.Description, DescIssuerUnavailable)
		}
		if st := a.Stats(); len(st.Issuers) != 1 || st.Issuers[0].Ready || st.Issuers[0].LastError == "" {
			t.Fatalf("stats while down: %+v", st)
		}
		idp.down.Store(false)
		c.advance(2 * minColdRetry)
		if _, err := a.Authenticate(bearer(tok)); err != nil {
			t.Fatalf("after the IdP came back: %v", err)
		}
		if st := a.Stats(); !st.Issuers[0].Ready || st.Issuers[0].Keys != 1 || st.Issuers[0].LastError != "" || st.CachedTokens != 1 {
			t.Fatalf("stats after recovery: %+v", st)
		}
	})

	t.Run("unknown issuer needs no network", func(t *testing.T) {
		idp := newTestIdP(t, k)
		a, c := newAuth(t, oneIssuer(idp), true)
		before := idp.jwksHits.Load()
		c.advance(time.Hour)
		m := baseClaims("https://other.example.com", c.now())
		_, err := a.Authenticate(bearer(mint(t, k, "at+jwt", m)))
		if e := authErr(t, err); e.Description != DescUnknownIssuer {
			t.Fatalf("got %q", e.Description)
		}
		if idp.jwksHits.Load() != before {
			t.Fatal("unknown issuer caused a JWKS fetch")
		}
	})
}

// TestTokenCache: a repeated token is served from the cache, and a cached
// principal is still refused once its token has expired.
func TestTokenCache(t *testing.T) {
	ra, _, _ := testKeys()
	k := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	idp := newTestIdP(t, k)
	a, c := newAuth(t, oneIssuer(idp), true)
	m := baseClaims(idp.issuer(), c.now())
	m["exp"] = c.now().Add(2 * time.Minute).Unix()
	tok := mint(t, k, "at+jwt", m)
	p1, err := a.Authenticate(bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	// Take the keys away: only the cache can answer now.
	idp.setKeys()
	ks := a.KeySet(idp.issuer())
	ks.mu.Lock()
	ks.keys, ks.all = nil, nil
	ks.mu.Unlock()
	p2, err := a.Authenticate(bearer(tok))
	if err != nil {
		t.Fatalf("cached token: %v", err)
	}
	if p1 == p2 || p2.Subject != "alice" || p2.CredentialID != p1.CredentialID {
		t.Fatalf("cache returned %+v (same pointer: %v)", p2, p1 == p2)
	}
	// Past exp (+skew) the cached principal must not be served; with the
	// keys back, the full check names the reason.
	idp.setKeys(k)
	c.advance(2*time.Minute + DefaultClockSkew)
	_, err = a.Authenticate(bearer(tok))
	if e := authErr(t, err); e.Description != DescExpired {
		t.Fatalf("expired cached token: got %q", e.Description)
	}

	// The cache is bounded.
	small := newTokenCache(3)
	for i := range 10 {
		small.put([32]byte{byte(i)}, &cacheEntry{p: p1, expires: c.now().Add(time.Hour)})
	}
	if small.len() != 3 {
		t.Fatalf("cache holds %d entries, bound is 3", small.len())
	}
}

// TestHangingIdP: a request whose context ends stops waiting for a stuck
// fetch (503), and Close aborts the fetch instead of waiting for it.
func TestHangingIdP(t *testing.T) {
	release := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer stuck.Close()
	defer close(release)
	a, err := New(t.Context(), Config{Issuers: []IssuerConfig{{Issuer: stuck.URL, Audiences: []string{"warden"}}}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ra, _, _ := testKeys()
	tok := mint(t, testKey{kid: "k", alg: jose.RS256, priv: ra}, "at+jwt", baseClaims(stuck.URL, time.Now()))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = a.AuthenticateToken(ctx, tok)
	if e := authErr(t, err); e.Status != http.StatusServiceUnavailable {
		t.Fatalf("got %d %q", e.Status, e.Description)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestBackgroundRefresh: without any unknown kid, the periodic refresh
// alone withdraws a removed key (and the tokens cached under it).
func TestBackgroundRefresh(t *testing.T) {
	ra, rb, _ := testKeys()
	old := testKey{kid: "old", alg: jose.RS256, priv: ra}
	idp := newTestIdP(t, old)
	cfg := oneIssuer(idp)
	cfg.JWKSRefresh = time.Second
	a, c := newAuth(t, cfg, true)
	tok := mint(t, old, "at+jwt", baseClaims(idp.issuer(), c.now()))
	if _, err := a.Authenticate(bearer(tok)); err != nil {
		t.Fatal(err)
	}
	idp.setKeys(testKey{kid: "new", alg: jose.RS256, priv: rb})
	hits := idp.jwksHits.Load()
	deadline := time.Now().Add(30 * time.Second)
	for idp.jwksHits.Load() < hits+1 || a.cache.len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("no background refresh within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := a.Authenticate(bearer(tok))
	if e := authErr(t, err); e.Description != DescUnknownKey {
		t.Fatalf("token of the withdrawn key: %q", e.Description)
	}
}

// TestKeySetWithGoOIDC: KeySet satisfies go-oidc's KeySet contract, so
// go-oidc's own IDTokenVerifier can run on our cache.
func TestKeySetWithGoOIDC(t *testing.T) {
	ra, rb, _ := testKeys()
	k := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	idp := newTestIdP(t, k)
	a, c := newAuth(t, oneIssuer(idp), true)
	v := oidc.NewVerifier(idp.issuer(), a.KeySet(idp.issuer()), &oidc.Config{ClientID: "warden", Now: c.now})
	if _, err := v.Verify(t.Context(), mint(t, k, "JWT", baseClaims(idp.issuer(), c.now()))); err != nil {
		t.Fatal(err)
	}
	forged := mint(t, testKey{kid: "rsa1", alg: jose.RS256, priv: rb}, "JWT", baseClaims(idp.issuer(), c.now()))
	if _, err := v.Verify(t.Context(), forged); err == nil {
		t.Fatal("forged token verified")
	}
}
