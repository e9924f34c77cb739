package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Authenticator turns the credential on a request into a Principal. It is
// safe for concurrent use. Create it with New; stop its background work
// with Close.
type Authenticator struct {
	cfg     Config
	issuers map[string]*issuer
	cache   *tokenCache
	keys    *FileKeyStore // nil when API keys are disabled
	log     *slog.Logger
	now     func() time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds an Authenticator from cfg (defaults are applied to a copy,
// and it is validated). dataDir is where default files live (the API key
// store). New never waits for an identity provider: discovery and key
// fetches run in the background and are retried; until an issuer's keys
// have been fetched once, its tokens are answered 503
// temporarily_unavailable ("identity provider unavailable"). Background
// work stops when ctx is done or Close is called.
func New(ctx context.Context, cfg Config, dataDir string) (*Authenticator, error) {
	return newAuthenticator(ctx, cfg, dataDir, time.Now)
}

// newAuthenticator is New with an injected clock (tests).
func newAuthenticator(ctx context.Context, cfg Config, dataDir string, now func() time.Time) (*Authenticator, error) {
	cfg.SetDefaults()
	cfg.ResolvePaths(dataDir)
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("identity: config: %w", err)
	}
	a := &Authenticator{
		cfg:     cfg,
		issuers: make(map[string]*issuer, len(cfg.Issuers)),
		cache:   newTokenCache(cfg.TokenCacheSize),
		log:     slog.Default().With("component", "identity"),
		now:     now,
	}
	if cfg.APIKeysEnabled() {
		ks, err := OpenFileKeyStore(cfg.APIKeys.File)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		a.keys = ks
	}
	client := &http.Client{Timeout: 10 * time.Second}
	bg, cancel := context.WithCancel(ctx)
	a.cancel = cancel
	for _, ic := range cfg.Issuers {
		ks := newKeySet(bg, ic.Issuer, ic.DiscoveryURL, client, cfg.UnknownKIDCooldown, now)
		iss := ic.Issuer
		ks.onRemoved = func(kids []string) {
			a.cache.dropKeys(iss, kids)
			a.log.Info("signing keys withdrawn by issuer", "issuer", iss, "kids", kids)
		}
		a.issuers[ic.Issuer] = newIssuer(ic, ks)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			ks.run(bg, cfg.JWKSRefresh, func(err error) {
				a.log.Warn("identity provider keys not refreshed", "issuer", iss, "err", err)
			})
		}()
	}
	return a, nil
}

// Close stops background refreshes and persists API key last-used times.
func (a *Authenticator) Close() error {
	a.cancel()
	a.wg.Wait()
	if a.keys != nil {
		return a.keys.Close()
	}
	return nil
}

// Config returns the effective (defaulted) configuration.
func (a *Authenticator) Config() Config { return a.cfg }

// KeySet returns the key set of a configured issuer, or nil.
func (a *Authenticator) KeySet(issuer string) *KeySet {
	if is := a.issuers[issuer]; is != nil {
		return is.keys
	}
	return nil
}

// KeyStore returns the API key store, or nil when API keys are disabled.
func (a *Authenticator) KeyStore() *FileKeyStore { return a.keys }

// Authenticate verifies the credential on r: `Authorization: Bearer <JWT>`,
// `Authorization: Bearer wk_…` or `X-API-Key: wk_…`. On failure the error
// is always an *Error (use errors.As) carrying the HTTP status, RFC 6750
// code and a precise description; it never contains the credential.
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	p, e := a.authenticate(r)
	if e != nil {
		return nil, e
	}
	return p, nil
}

func (a *Authenticator) authenticate(r *http.Request) (*Principal, *Error) {
	authz := r.Header.Values("Authorization")
	apiKey := r.Header.Values("X-API-Key")
	if len(authz)+len(apiKey) == 0 {
		return nil, errMissing()
	}
	if len(authz)+len(apiKey) > 1 {
		return nil, errRequest(DescTwoCredentials)
	}
	if len(apiKey) == 1 {
		return a.authenticateAPIKey(strings.TrimSpace(apiKey[0]))
	}
	// "Bearer" alone: HTTP servers trim the trailing space of
	// "Authorization: Bearer ", so this is an empty token, not another
	// scheme.
	scheme, cred, _ := strings.Cut(strings.TrimSpace(authz[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return nil, errRequest(DescBadScheme)
	}
	cred = strings.TrimSpace(cred)
	if cred == "" {
		return nil, errRequest(DescEmptyBearer)
	}
	if strings.HasPrefix(cred, APIKeyPrefix) {
		return a.authenticateAPIKey(cred)
	}
	return a.authenticateToken(r.Context(), cred)
}

// AuthenticateToken verifies a bearer JWT; errors are *Error as for
// Authenticate. The result may come from the verified-token cache:
// callers must not modify the returned principal's Groups or Claims.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (*Principal, error) {
	p, e := a.authenticateToken(ctx, token)
	if e != nil {
		return nil, e
	}
	return p, nil
}

func (a *Authenticator) authenticateToken(ctx context.Context, token string) (*Principal, *Error) {
	if len(token) > MaxTokenBytes {
		return nil, errToken(DescTokenTooLarge)
	}
	now := a.now()
	key := hashToken(token)
	if e := a.cache.get(key, now); e != nil {
		if !now.Before(e.p.ExpiresAt.Add(a.issuers[e.issuer].cfg.ClockSkew)) {
			return nil, errToken(DescExpired)
		}
		p := *e.p
		return &p, nil
	}
	issName, err := unverifiedIssuer(token)
	if err != nil {
		return nil, errToken(DescMalformed)
	}
	is := a.issuers[issName]
	if is == nil {
		return nil, errToken(DescUnknownIssuer)
	}
	p, kid, verr := is.verify(ctx, token, now)
	if verr != nil {
		return nil, verr
	}
	expires := now.Add(a.cfg.JWKSRefresh)
	if end := p.ExpiresAt.Add(is.cfg.ClockSkew); end.Before(expires) {
		expires = end
	}
	a.cache.put(key, &cacheEntry{p: p, issuer: is.cfg.Issuer, kid: kid, expires: expires})
	cp := *p
	return &cp, nil
}

func (a *Authenticator) authenticateAPIKey(key string) (*Principal, *Error) {
	if a.keys == nil {
		return nil, errToken(DescAPIKeysDisabled)
	}
	p, err := a.keys.Verify(key, a.now())
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		a.log.Error("api key store", "err", err)
		return nil, errUnavailable()
	}
	return p, nil
}
