package devstack

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// ConsoleClientID is the OAuth client id of the Warden console at the
// demo issuer (a public client: PKCE, no secret).
const ConsoleClientID = "warden-console"

// codeTTL is how long an authorization code may wait to be redeemed.
const codeTTL = time.Minute

// authCode is an issued, not yet redeemed authorization code.
type authCode struct {
	user                                    User
	clientID, redirectURI, challenge, nonce string
	issued                                  time.Time
}

// codes holds the authorization codes in flight.
type codes struct {
	mu sync.Mutex
	m  map[string]authCode
}

// pickerPage is the demo issuer's login page: no password, pick a user.
// It is served only by the demo issuer, and says so.
var pickerPage = template.Must(template.New("picker").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo issuer — pick a user</title></head>
<body>
<main>
<h1>Warden demo issuer</h1>
<p><strong>DEMO ONLY — no password is asked. Never run this issuer in production.</strong></p>
<p>Log in to <code>{{.ClientID}}</code> as:</p>
<form method="post" action="/authorize">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}
{{range .Users}}<p><button type="submit" name="user" value="{{.Name}}" id="user-{{.Name}}">{{.Display}} ({{.Name}}; groups: {{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}})</button></p>
{{end}}
</form>
</main>
</body></html>
`))

// authorizeParams are the parameters of an authorization request that
// the picker form carries through.
var authorizeParams = []string{"response_type", "client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method", "scope"}

// authorize implements the authorization endpoint (RFC 6749 §4.1 with
// PKCE, RFC 7636, S256 only): GET shows the user picker, POST issues a
// code for the picked user and redirects back to the client.
func (is *Issuer) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed request", http.StatusBadRequest)
		return
	}
	f := r.Form
	redirect, err := url.Parse(f.Get("redirect_uri"))
	if err != nil || (redirect.Scheme != "http" && redirect.Scheme != "https") || redirect.Host == "" {
		http.Error(w, "redirect_uri must be an absolute http(s) URL", http.StatusBadRequest)
		return
	}
	switch {
	case f.Get("client_id") != ConsoleClientID:
		http.Error(w, "unknown client_id (the demo issuer knows "+ConsoleClientID+")", http.StatusBadRequest)
		return
	case f.Get("response_type") != "code":
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	case f.Get("code_challenge_method") != "S256" || len(f.Get("code_challenge")) != 43:
		http.Error(w, "PKCE with code_challenge_method=S256 is required", http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodGet {
		hidden := map[string]string{}
		for _, k := range authorizeParams {
			hidden[k] = f.Get(k)
		}
		var users []User
		for _, u := range DemoUsers {
			if !u.Service {
				users = append(users, u)
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action *; frame-ancestors 'none'")
		_ = pickerPage.Execute(w, map[string]any{"ClientID": f.Get("client_id"), "Hidden": hidden, "Users": users})
		return
	}
	u, ok := is.users[f.Get("user")]
	if !ok || u.Service {
		http.Error(w, "pick a demo user", http.StatusBadRequest)
		return
	}
	code := randomID() + randomID()
	is.codes.mu.Lock()
	now := is.now()
	for k, v := range is.codes.m {
		if now.Sub(v.issued) > codeTTL {
			delete(is.codes.m, k)
		}
	}
	is.codes.m[code] = authCode{user: u, clientID: f.Get("client_id"), redirectURI: f.Get("redirect_uri"),
		challenge: f.Get("code_challenge"), nonce: f.Get("nonce"), issued: now}
	is.codes.mu.Unlock()
	q := redirect.Query()
	q.Set("code", code)
	q.Set("state", f.Get("state"))
	redirect.RawQuery = q.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusSeeOther)
}

// redeem answers grant_type=authorization_code: the code once, for the
// same client and redirect URI, with the PKCE verifier of its challenge.
func (is *Issuer) redeem(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	clientID := f.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		clientID = id
	}
	is.codes.mu.Lock()
	ac, ok := is.codes.m[f.Get("code")]
	delete(is.codes.m, f.Get("code"))
	is.codes.mu.Unlock()
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	switch {
	case !ok || is.now().Sub(ac.issued) > codeTTL:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		return
	case clientID != ac.clientID || f.Get("redirect_uri") != ac.redirectURI:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "client_id or redirect_uri differs from the authorization request")
		return
	case subtle.ConstantTimeCompare([]byte(challenge), []byte(ac.challenge)) != 1:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE code_verifier does not match the code_challenge")
		return
	}
	idt, err := is.idToken(ac)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "could not sign token")
		return
	}
	at, err := is.Mint(ac.user, DemoAudience, is.ttl)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "could not sign token")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "token_type": "Bearer", "expires_in": int(is.ttl.Seconds()), "id_token": idt,
	})
}

// idToken signs an OpenID Connect ID token for a redeemed code.
func (is *Issuer) idToken(ac authCode) (string, error) {
	now := is.now()
	claims := map[string]any{
		"iss": is.url, "sub": ac.user.Name, "aud": ac.clientID, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"nonce": ac.nonce, "groups": ac.user.Groups, "name": ac.user.Display, "email": ac.user.Email,
	}
	return jwt.Signed(is.idSigner).Claims(claims).Serialize()
}
