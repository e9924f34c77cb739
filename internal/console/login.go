package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wardenhq/warden/internal/identity"
)

// Cookie names. The session cookie holds only a random id; the login
// cookie binds an authorization request to the browser that started it.
const (
	sessionCookie = "warden_console"
	loginCookie   = "warden_console_login"
)

// loginTTL is how long a started login may take; maxPendingLogins bounds
// the table of started logins.
const (
	loginTTL         = 10 * time.Minute
	maxPendingLogins = 10000
)

// pendingLogin is an authorization request in flight.
type pendingLogin struct {
	verifier, nonce, next string
	started               time.Time
}

// loginFlow is the OIDC authorization code flow with PKCE.
type loginFlow struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use: the issuer may start after Warden
	pending  map[string]pendingLogin
}

func newLoginFlow(cfg Config, now func() time.Time) *loginFlow {
	return &loginFlow{cfg: cfg, now: now, pending: map[string]pendingLogin{}}
}

// oauth returns the OAuth2 configuration and the ID token verifier,
// discovering the issuer on first use.
func (lf *loginFlow) oauth(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	lf.mu.Lock()
	p := lf.provider
	lf.mu.Unlock()
	if p == nil {
		var err error
		if p, err = oidc.NewProvider(ctx, lf.cfg.Issuer); err != nil {
			return nil, nil, fmt.Errorf("console: discover %s: %w", lf.cfg.Issuer, err)
		}
		lf.mu.Lock()
		lf.provider = p
		lf.mu.Unlock()
	}
	oc := &oauth2.Config{
		ClientID: lf.cfg.ClientID, ClientSecret: lf.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: strings.TrimSuffix(lf.cfg.PublicURL, "/") + "/ui/callback",
		Scopes:      []string{oidc.ScopeOpenID, "profile", "email", "groups"},
	}
	return oc, p.Verifier(&oidc.Config{ClientID: lf.cfg.ClientID, Now: lf.now}), nil
}

// start records a new login and returns its state.
func (lf *loginFlow) start(next string) (string, pendingLogin) {
	state := randomToken()
	pl := pendingLogin{verifier: oauth2.GenerateVerifier(), nonce: randomToken(), next: next, started: lf.now()}
	lf.mu.Lock()
	defer lf.mu.Unlock()
	for k, v := range lf.pending {
		if lf.now().Sub(v.started) > loginTTL || len(lf.pending) >= maxPendingLogins {
			delete(lf.pending, k)
		}
	}
	lf.pending[state] = pl
	return state, pl
}

// finish takes the login of state, once.
func (lf *loginFlow) finish(state string) (pendingLogin, bool) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	pl, ok := lf.pending[state]
	delete(lf.pending, state)
	if !ok || lf.now().Sub(pl.started) > loginTTL {
		return pendingLogin{}, false
	}
	return pl, true
}

// safeNext keeps a post-login destination inside the console, so the
// login cannot be turned into an open redirect.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix
	}
	return next
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// secure reports whether cookies get the Secure flag.
func (c *Console) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(c.o.Config.PublicURL, "https://")
}

func (c *Console) loginStart(w http.ResponseWriter, r *http.Request) {
	oc, _, err := c.login.oauth(r.Context())
	if err != nil {
		c.log.Error("console: login", "err", err)
		c.errorPage(w, r, nil, http.StatusServiceUnavailable, "The identity provider cannot be reached; try again shortly.")
		return
	}
	state, pl := c.login.start(safeNext(r.URL.Query().Get("next")))
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: state, Path: "/ui/callback", MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, oc.AuthCodeURL(state, oauth2.S256ChallengeOption(pl.verifier), oidc.Nonce(pl.nonce)), http.StatusSeeOther)
}

func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		c.errorPage(w, r, nil, http.StatusUnauthorized, "The identity provider refused the login: "+e)
		return
	}
	state := q.Get("state")
	ck, err := r.Cookie(loginCookie)
	if state == "" || err != nil || ck.Value != state {
		c.errorPage(w, r, nil, http.StatusBadRequest, "This login was not started by this browser; start again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/ui/callback", MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
	pl, ok := c.login.finish(state)
	if !ok {
		c.errorPage(w, r, nil, http.StatusBadRequest, "This login has expired or was already used; start again.")
		return
	}
	p, err := c.exchange(r.Context(), q.Get("code"), pl)
	if err != nil {
		c.log.Warn("console: login failed", "err", err)
		c.errorPage(w, r, nil, http.StatusUnauthorized, "The login could not be verified; start again.")
		return
	}
	id, err := c.sess.create(r.Context(), p)
	if err != nil {
		c.log.Error("console: store session", "err", err)
		c.errorPage(w, r, nil, http.StatusServiceUnavailable, "The session could not be stored; try again shortly.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: c.secure(r),
		SameSite: http.SameSiteLaxMode, MaxAge: int(c.o.Config.AbsoluteTimeout.Seconds())})
	c.log.Info("console: login", "subject", p.Subject, "issuer", p.Issuer)
	http.Redirect(w, r, pl.next, http.StatusSeeOther)
}

// exchange redeems the code with the PKCE verifier and verifies the ID
// token: signature, issuer, audience, expiry and nonce.
func (c *Console) exchange(ctx context.Context, code string, pl pendingLogin) (*identity.Principal, error) {
	if code == "" {
		return nil, fmt.Errorf("console: no code")
	}
	oc, verifier, err := c.login.oauth(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(pl.verifier))
	if err != nil {
		return nil, fmt.Errorf("console: exchange code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("console: no id_token in the token response")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("console: verify id_token: %w", err)
	}
	if idt.Nonce != pl.nonce {
		return nil, fmt.Errorf("console: id_token nonce does not match")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("console: id_token claims: %w", err)
	}
	p := &identity.Principal{Issuer: idt.Issuer, Subject: idt.Subject, Kind: identity.KindUser, AuthMethod: "oidc"}
	p.Name, _ = claims["name"].(string)
	p.Email, _ = claims["email"].(string)
	if gs, ok := claims[c.o.Config.GroupsClaim].([]any); ok {
		for _, g := range gs {
			if s, ok := g.(string); ok {
				p.Groups = append(p.Groups, s)
			}
		}
	}
	p.ExpiresAt = c.o.Now().Add(c.o.Config.AbsoluteTimeout)
	return p, nil
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if err := c.sess.remove(r.Context(), ck.Value); err != nil {
			// Fail closed: do not tell the browser it is logged out while
			// its session still works.
			c.log.Error("console: delete session", "err", err)
			c.errorPage(w, r, nil, http.StatusServiceUnavailable, "The session could not be ended; try again.")
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
	c.render(w, r, http.StatusOK, "loggedout", nil, nil)
}
