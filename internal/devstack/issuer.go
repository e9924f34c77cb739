package devstack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DemoSecret is the client secret of every demo user.
const DemoSecret = "demo"

// DemoAudience is the audience of the demo issuer's access tokens.
const DemoAudience = "warden"

// User is a demo identity.
type User struct {
	Name    string   // client id and subject
	Display string   // display name
	Email   string   // email claim
	Groups  []string // groups claim
	Service bool     // a workload: its token carries client_id == sub
}

// DemoUsers are the identities the demo issuer knows.
var DemoUsers = []User{
	{Name: "alice", Display: "Alice Example", Email: "alice@example.com", Groups: []string{"ml-users"}},
	{Name: "bob", Display: "Bob Example", Email: "bob@example.com", Groups: []string{"ml-approvers"}},
	{Name: "carol", Display: "Carol Example", Email: "carol@example.com", Groups: []string{"ml-admins"}},
	{Name: "dave", Display: "Dave Example", Email: "dave@example.com", Groups: []string{"ml-approvers"}},
	{Name: "indexer", Display: "Indexer Service", Groups: []string{"ml-services"}, Service: true},
}

// Issuer is a minimal OpenID provider: discovery, JWKS and an OAuth2
// token endpoint for the client_credentials grant issuing RFC 9068 JWT
// access tokens signed with ES256; and, for the console's browser login,
// the authorization code flow with PKCE behind a demo user picker (no
// password: demo only).
type Issuer struct {
	url    string
	signer jose.Signer
	// idSigner signs ID tokens (same key, typ JWT).
	idSigner jose.Signer
	codes    codes
	jwks     []byte
	users    map[string]User
	ttl      time.Duration
	now      func() time.Time
}

// NewIssuer creates an issuer whose public URL is issuerURL (it must be
// where Handler is served).
func NewIssuer(issuerURL string) (*Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	kid := "demo-" + time.Now().UTC().Format("20060102150405")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	idSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	users := map[string]User{}
	for _, u := range DemoUsers {
		users[u.Name] = u
	}
	return &Issuer{url: strings.TrimSuffix(issuerURL, "/"), signer: signer, idSigner: idSigner, codes: codes{m: map[string]authCode{}},
		jwks: jwks, users: users, ttl: time.Hour, now: time.Now}, nil
}

// URL is the issuer identifier.
func (is *Issuer) URL() string { return is.url }

// Handler serves discovery, JWKS and the token endpoint.
func (is *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(is.jwks)
	})
	mux.HandleFunc("POST /token", is.token)
	mux.HandleFunc("GET /authorize", is.authorize)
	mux.HandleFunc("POST /authorize", is.authorize)
	return mux
}

func (is *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                is.url,
		"jwks_uri":                              is.url + "/jwks",
		"token_endpoint":                        is.url + "/token",
		"authorization_endpoint":                is.url + "/authorize",
		"grant_types_supported":                 []string{"client_credentials", "authorization_code"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"response_types_supported":              []string{"code", "token"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{"openid", "profile", "email", "groups"},
		"subject_types_supported":               []string{"public"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "groups", "name", "email", "client_id"},
	})
}

// token implements RFC 6749 §4.4 (client_credentials) with client_secret_basic
// or client_secret_post.
func (is *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		is.redeem(w, r)
		return
	case "client_credentials":
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "client_credentials or authorization_code")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	u, known := is.users[id]
	if !known || subtle.ConstantTimeCompare([]byte(secret), []byte(DemoSecret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="warden-demo"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret (demo users: "+strings.Join(is.userNames(), ", ")+"; secret: demo)")
		return
	}
	tok, err := is.Mint(u, DemoAudience, is.ttl)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "could not sign token")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(is.ttl.Seconds()),
	})
}

// Token signs an access token for the demo user named name, for the demo
// audience, valid for ttl.
func (is *Issuer) Token(name string, ttl time.Duration) (string, error) {
	u, ok := is.users[name]
	if !ok {
		return "", fmt.Errorf("devstack: no demo user %q", name)
	}
	return is.Mint(u, DemoAudience, ttl)
}

// Mint signs an access token for u. Exported for tests.
func (is *Issuer) Mint(u User, audience string, ttl time.Duration) (string, error) {
	now := is.now()
	claims := map[string]any{
		"iss": is.url, "sub": u.Name, "aud": audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
		"jti": randomID(), "groups": u.Groups,
	}
	if u.Display != "" {
		claims["name"] = u.Display
	}
	if u.Email != "" {
		claims["email"] = u.Email
	}
	if u.Service {
		claims["client_id"] = u.Name
	}
	return jwt.Signed(is.signer).Claims(claims).Serialize()
}

func (is *Issuer) userNames() []string {
	var n []string
	for k := range is.users {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
