package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// errNoKeys: discovery or the first JWKS fetch has not succeeded yet.
var errNoKeys = errors.New("identity: no signing keys for issuer yet")

// errUnknownKID: the token names a key id the issuer does not publish.
var errUnknownKID = errors.New("identity: unknown key id")

// minColdRetry is the least time between two fetch attempts while we hold
// no keys at all for an issuer (its IdP was down at start).
const minColdRetry = time.Second

// maxJWKSBytes bounds a discovery document or JWKS response.
const maxJWKSBytes = 1 << 20

// KeySet is the signing keys of one issuer, found by OpenID discovery and
// cached. It refreshes in the background (Run), refetches on an unknown
// key id at most once per cooldown, and keeps serving the keys it has
// when the IdP is down. It implements go-oidc's [oidc.KeySet].
type KeySet struct {
	life         context.Context // fetches end when it is done (Authenticator.Close)
	issuer       string
	discoveryURL string
	client       *http.Client
	cooldown     time.Duration
	now          func() time.Time
	onRemoved    func(kids []string)

	sf      singleflight.Group
	fetches atomic.Int64 // JWKS fetches attempted (for tests and metrics)

	mu        sync.RWMutex
	jwksURL   string
	keys      map[string][]jose.JSONWebKey // by kid; "" holds keys without kid
	all       []jose.JSONWebKey
	haveKeys  bool
	lastTry   time.Time // last fetch attempt, success or not
	lastError error
}

var _ oidc.KeySet = (*KeySet)(nil)

func newKeySet(life context.Context, issuer, discoveryURL string, client *http.Client, cooldown time.Duration, now func() time.Time) *KeySet {
	if discoveryURL == "" {
		discoveryURL = strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	}
	return &KeySet{life: life, issuer: issuer, discoveryURL: discoveryURL, client: client, cooldown: cooldown, now: now}
}

// Fetches reports how many JWKS fetches were attempted.
func (k *KeySet) Fetches() int64 { return k.fetches.Load() }

// VerifySignature verifies a compact JWS against the cached keys,
// refetching once per cooldown on an unknown key id (oidc.KeySet).
func (k *KeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, asJoseAlgs(supportedAlgorithms))
	if err != nil {
		return nil, fmt.Errorf("identity: parse jws: %w", err)
	}
	return k.verify(ctx, jws)
}

func (k *KeySet) verify(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, errors.New("identity: expected exactly one signature")
	}
	h := jws.Signatures[0].Header
	keys, err := k.lookup(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	var lastErr error = errUnknownKID
	for i := range keys {
		key := &keys[i]
		if key.Algorithm != "" && key.Algorithm != h.Algorithm {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		payload, err := jws.Verify(key.Key)
		if err == nil {
			return payload, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// lookup returns the keys for kid (all keys when kid is empty), fetching
// when the kid is unknown and the cooldown has passed.
func (k *KeySet) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if keys, ok := k.cached(kid); ok {
		return keys, nil
	}
	k.mu.RLock()
	have, last := k.haveKeys, k.lastTry
	k.mu.RUnlock()
	wait := k.cooldown
	if !have {
		wait = minColdRetry
	}
	if k.now().Sub(last) >= wait {
		_ = k.refresh(ctx, wait) // failure keeps the old keys; reported below
	}
	if keys, ok := k.cached(kid); ok {
		return keys, nil
	}
	k.mu.RLock()
	have = k.haveKeys
	k.mu.RUnlock()
	if !have {
		return nil, errNoKeys
	}
	return nil, errUnknownKID
}

func (k *KeySet) cached(kid string) ([]jose.JSONWebKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if kid == "" {
		return k.all, len(k.all) > 0
	}
	keys, ok := k.keys[kid]
	return keys, ok
}

// Refresh runs discovery (until it has succeeded once) and fetches the
// JWKS. Concurrent calls share one fetch. On failure the cached keys stay.
// The fetch is bounded by 10s and by the key set's lifetime, not by ctx:
// one request giving up must not cancel the fetch others wait for; ctx
// only stops this caller from waiting.
func (k *KeySet) Refresh(ctx context.Context) error { return k.refresh(ctx, 0) }

// refresh fetches unless another fetch was attempted less than minAge ago
// (re-checked inside the single flight, so callers that raced past the
// cooldown check do not fetch again one after another).
func (k *KeySet) refresh(ctx context.Context, minAge time.Duration) error {
	ch := k.sf.DoChan("refresh", func() (any, error) {
		if minAge > 0 {
			k.mu.RLock()
			recent := k.now().Sub(k.lastTry) < minAge
			k.mu.RUnlock()
			if recent {
				return nil, nil
			}
		}
		fctx, cancel := context.WithTimeout(k.life, 10*time.Second)
		defer cancel()
		err := k.fetch(fctx)
		k.mu.Lock()
		k.lastTry = k.now()
		k.lastError = err
		k.mu.Unlock()
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *KeySet) fetch(ctx context.Context) error {
	k.mu.RLock()
	jwksURL := k.jwksURL
	k.mu.RUnlock()
	if jwksURL == "" {
		var pc oidc.ProviderConfig
		if err := k.getJSON(ctx, k.discoveryURL, &pc); err != nil {
			return fmt.Errorf("identity: discovery for %s: %w", k.issuer, err)
		}
		if pc.IssuerURL != k.issuer {
			return fmt.Errorf("identity: discovery for %s: document names issuer %q", k.issuer, pc.IssuerURL)
		}
		if pc.JWKSURL == "" {
			return fmt.Errorf("identity: discovery for %s: no jwks_uri", k.issuer)
		}
		jwksURL = pc.JWKSURL
		k.mu.Lock()
		k.jwksURL = jwksURL
		k.mu.Unlock()
	}
	k.fetches.Add(1)
	var set jose.JSONWebKeySet
	if err := k.getJSON(ctx, jwksURL, &set); err != nil {
		return fmt.Errorf("identity: jwks for %s: %w", k.issuer, err)
	}
	byKID := map[string][]jose.JSONWebKey{}
	var all []jose.JSONWebKey
	for _, key := range set.Keys {
		if !key.Valid() || !key.IsPublic() {
			continue // never trust symmetric or private material from a JWKS
		}
		byKID[key.KeyID] = append(byKID[key.KeyID], key)
		all = append(all, key)
	}
	if len(all) == 0 {
		return fmt.Errorf("identity: jwks for %s: no usable public keys", k.issuer)
	}
	k.mu.Lock()
	var removed []string
	for kid := range k.keys {
		if _, ok := byKID[kid]; !ok {
			removed = append(removed, kid)
		}
	}
	k.keys, k.all, k.haveKeys = byKID, all, true
	k.mu.Unlock()
	if len(removed) > 0 && k.onRemoved != nil {
		k.onRemoved(removed)
	}
	return nil
}

func (k *KeySet) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("GET %s: response over %d bytes", url, maxJWKSBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// run refreshes every interval until ctx is done. While no keys are held
// it retries with backoff from 1s up to the interval.
func (k *KeySet) run(ctx context.Context, interval time.Duration, log func(error)) {
	backoff := minColdRetry
	for {
		err := k.Refresh(ctx)
		next := interval
		if err != nil {
			log(err)
			k.mu.RLock()
			have := k.haveKeys
			k.mu.RUnlock()
			if !have {
				next = backoff
				backoff = min(backoff*2, interval)
			}
		} else {
			backoff = minColdRetry
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func asJoseAlgs(algs []string) []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}
