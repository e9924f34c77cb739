package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testKey is a signing key of the test IdP.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

var (
	keysOnce sync.Once
	rsaA     *rsa.PrivateKey
	rsaB     *rsa.PrivateKey
	ecA      *ecdsa.PrivateKey
)

// testKeys generates the RSA/EC keys once per test binary (RSA keygen is
// slow under -race).
func testKeys() (a, b *rsa.PrivateKey, e *ecdsa.PrivateKey) {
	keysOnce.Do(func() {
		var err error
		if rsaA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecA, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
	return rsaA, rsaB, ecA
}

// testIdP is a minimal OpenID provider on httptest: discovery and JWKS,
// with switchable keys, an outage switch and a JWKS hit counter.
type testIdP struct {
	srv      *httptest.Server
	mu       sync.Mutex
	keys     []testKey
	jwksHits atomic.Int64
	down     atomic.Bool
}

func newTestIdP(t testing.TB, keys ...testKey) *testIdP {
	t.Helper()
	idp := &testIdP{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if idp.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":   idp.srv.URL,
			"jwks_uri": idp.srv.URL + "/jwks",
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		idp.jwksHits.Add(1)
		if idp.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		idp.mu.Lock()
		var set jose.JSONWebKeySet
		for _, k := range idp.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
		idp.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

func (idp *testIdP) issuer() string { return idp.srv.URL }

func (idp *testIdP) setKeys(keys ...testKey) {
	idp.mu.Lock()
	idp.keys = keys
	idp.mu.Unlock()
}

// mint signs claims with k, with JOSE typ header typ ("" for none).
func mint(t testing.TB, k testKey, typ string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// baseClaims is a valid access token body for alice at idp.
func baseClaims(iss string, now time.Time) map[string]any {
	return map[string]any{
		"iss":    iss,
		"sub":    "alice",
		"aud":    "warden",
		"iat":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
		"email":  "alice@example.com",
		"name":   "Alice",
		"groups": []string{"ml-users", "eng"},
	}
}

// clock is a settable time source for Authenticator.now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }
func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newAuth builds an Authenticator with a settable clock and waits until
// every issuer's keys have been fetched (unless an IdP is down).
func newAuth(t testing.TB, cfg Config, waitKeys bool) (*Authenticator, *clock) {
	t.Helper()
	c := newClock()
	a, err := newAuthenticator(context.Background(), cfg, t.TempDir(), c.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if waitKeys {
		for _, ic := range a.cfg.Issuers {
			if err := a.KeySet(ic.Issuer).Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	return a, c
}

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// authErr asserts err is an *Error and returns it.
func authErr(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not *identity.Error", err, err)
	}
	return e
}
