package console

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
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

// loginTTL is how long a started login may take.
const loginTTL = 10 * time.Minute

// pendingLogin is an authorization request in flight. It travels in the
// login cookie (HttpOnly, path /ui/callback, SameSite=Lax), not in a
// server-side table, so that the callback may reach any replica: the
// PKCE verifier and the nonce are only ever sent back to the callback of
// the browser that started the login, and the code is one-use at the
// issuer.
type pendingLogin struct {
	State    string `json:"s"`
	Verifier string `json:"v"`
	Nonce    string `json:"n"`
	Next     string `json:"x"`
	Started  int64  `json:"t"` // unix seconds
}

// maxNext bounds the post-login destination kept in the login cookie.
const maxNext = 1024

// encode is the login cookie's value.
func (pl pendingLogin) encode() string {
	b, _ := json.Marshal(pl) // strings and an int: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeLogin reads a login cookie; ok is false when it is malformed.
func decodeLogin(v string) (pendingLogin, bool) {
	var pl pendingLogin
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || json.Unmarshal(b, &pl) != nil || pl.State == "" || pl.Verifier == "" || pl.Nonce == "" {
		return pendingLogin{}, false
	}
	pl.Next = safeNext(pl.Next)
	return pl, true
}

// loginFlow is the OIDC authorization code flow with PKCE.
type loginFlow struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use: the issuer may start after Warden
}

func newLoginFlow(cfg Config, now func() time.Time) *loginFlow {
	return &loginFlow{cfg: cfg, now: now}
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

// start begins a login towards next.
func (lf *loginFlow) start(next string) pendingLogin {
	if len(next) > maxNext {
		next = Prefix
	}
	return pendingLogin{State: randomToken(), Verifier: oauth2.GenerateVerifier(), Nonce: randomToken(), Next: safeNext(next),
		Started: lf.now().Unix()}
}

// finish checks the login cookie against the callback's state and age.
func (lf *loginFlow) finish(cookie, state string) (pendingLogin, bool) {
	pl, ok := decodeLogin(cookie)
	if !ok || state == "" || subtle.ConstantTimeCompare([]byte(pl.State), []byte(state)) != 1 {
		return pendingLogin{}, false
	}
	if age := lf.now().Sub(time.Unix(pl.Started, 0)); age < 0 || age > loginTTL {
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
	pl := c.login.start(r.URL.Query().Get("next"))
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: pl.encode(), Path: "/ui/callback", MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, oc.AuthCodeURL(pl.State, oauth2.S256ChallengeOption(pl.Verifier), oidc.Nonce(pl.Nonce)), http.StatusSeeOther)
}

func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		c.errorPage(w, r, nil, http.StatusUnauthorized, "The identity provider refused the login: "+e)
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil {
		c.errorPage(w, r, nil, http.StatusBadRequest, "This login was not started by this browser; start again.")
		return
	}
	// One use: the cookie goes whatever the outcome.
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/ui/callback", MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
	pl, ok := c.login.finish(ck.Value, q.Get("state"))
	if !ok {
		c.errorPage(w, r, nil, http.StatusBadRequest, "This login was not started by this browser, has expired or was already used; start again.")
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
	http.Redirect(w, r, pl.Next, http.StatusSeeOther)
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
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(pl.Verifier))
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
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pl.Nonce)) != 1 {
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
