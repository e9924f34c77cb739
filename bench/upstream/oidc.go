package upstream

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a minimal OIDC issuer for the identity stage: it serves
// /.well-known/openid-configuration and /jwks, and mints RS256 access
// tokens. Its key lives only in memory.
type Issuer struct {
	// URL is the issuer identifier, e.g. "http://127.0.0.1:41234"; it must
	// be set (to the address the Handler is served on) before use.
	URL string

	key    *rsa.PrivateKey
	kid    string
	signer jose.Signer
}

// NewIssuer generates a 2048-bit RSA key and returns an issuer for url.
func NewIssuer(url string) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("oidc: generate key: %w", err)
	}
	kid := "bench-1"
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("oidc: signer: %w", err)
	}
	return &Issuer{URL: url, key: key, kid: kid, signer: signer}, nil
}

// Handler serves discovery and the JWKS.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSONValue(w, map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              i.URL + "/jwks",
			"authorization_endpoint":                i.URL + "/authorize",
			"token_endpoint":                        i.URL + "/token",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSONValue(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
			Key: &i.key.PublicKey, KeyID: i.kid, Algorithm: string(jose.RS256), Use: "sig",
		}}})
	})
	return mux
}

// Claims are the claims of a minted access token.
type Claims struct {
	jwt.Claims
	Groups []string `json:"groups,omitempty"`
}

// Mint returns a signed access token for sub with groups, audience
// audience and lifetime ttl.
func (i *Issuer) Mint(sub string, groups []string, audience string, ttl time.Duration) (string, error) {
	now := time.Now()
	c := Claims{
		Claims: jwt.Claims{
			Issuer:    i.URL,
			Subject:   sub,
			Audience:  jwt.Audience{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			Expiry:    jwt.NewNumericDate(now.Add(ttl)),
		},
		Groups: groups,
	}
	tok, err := jwt.Signed(i.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("oidc: sign token: %w", err)
	}
	return tok, nil
}

func writeJSONValue(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
