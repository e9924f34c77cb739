package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// attackSetup: idp (access+ID tokens by opt-in, client "warden-cli") and idpAT (only
// access tokens), both trusted.
func attackSetup(t *testing.T) (*Authenticator, *clock, *testIdP, *testIdP, testKey) {
	ra, _, ec := testKeys()
	k1 := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	k2 := testKey{kid: "ec1", alg: jose.ES256, priv: ec}
	idp := newTestIdP(t, k1, k2)
	idpAT := newTestIdP(t, k1)
	cfg := Config{Issuers: []IssuerConfig{
		{Issuer: idp.issuer(), Audiences: []string{"warden"}, ClientIDs: []string{"warden-cli"}, TokenTypes: []string{TokenTypeAccess, TokenTypeID}},
		{Issuer: idpAT.issuer(), Audiences: []string{"warden"}, TokenTypes: []string{TokenTypeAccess}},
	}}
	a, c := newAuth(t, cfg, true)
	return a, c, idp, idpAT, k1
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jsonB64(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

func TestAttackTable(t *testing.T) {
	a, c, idp, idpAT, k1 := attackSetup(t)
	now := c.now()
	_, rb, _ := testKeys()
	_, _, ec := testKeys()
	iss := idp.issuer()

	with := func(mod func(m map[string]any)) map[string]any {
		m := baseClaims(iss, now)
		mod(m)
		return m
	}
	valid := mint(t, k1, "at+jwt", baseClaims(iss, now))

	// HS256 "signed" with the issuer's RSA public key as the HMAC secret.
	hsToken := func() string {
		pub := k1.priv.Public()
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		signing := jsonB64(t, map[string]string{"alg": "HS256", "typ": "at+jwt", "kid": "rsa1"}) + "." + jsonB64(t, baseClaims(iss, now))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(signing))
		return signing + "." + b64(m.Sum(nil))
	}()

	parts := strings.Split(valid, ".")
	edited := parts[0] + "." + jsonB64(t, with(func(m map[string]any) { m["sub"] = "root"; m["groups"] = []string{"admin"} })) + "." + parts[2]

	big := mint(t, k1, "at+jwt", with(func(m map[string]any) { m["pad"] = strings.Repeat("x", MaxTokenBytes) }))

	cases := []struct {
		name  string
		token string
		want  string
	}{
		{"alg none", jsonB64(t, map[string]string{"alg": "none", "typ": "at+jwt"}) + "." + jsonB64(t, baseClaims(iss, now)) + ".", DescAlgNotAllowed},
		{"HS256 with RSA public key", hsToken, DescAlgNotAllowed},
		{"unknown kid", mint(t, testKey{kid: "nope", alg: jose.RS256, priv: rb}, "at+jwt", baseClaims(iss, now)), DescUnknownKey},
		{"expired", mint(t, k1, "at+jwt", with(func(m map[string]any) { m["exp"] = now.Add(-time.Hour).Unix() })), DescExpired},
		{"expired within skew is fine but 31s is not", mint(t, k1, "at+jwt", with(func(m map[string]any) { m["exp"] = now.Add(-31 * time.Second).Unix() })), DescExpired},
		{"nbf in the future", mint(t, k1, "at+jwt", with(func(m map[string]any) { m["nbf"] = now.Add(time.Hour).Unix() })), DescNotYetValid},
		{"no exp", mint(t, k1, "at+jwt", with(func(m map[string]any) { delete(m, "exp") })), DescMissingExpiry},
		{"wrong iss", mint(t, k1, "at+jwt", with(func(m map[string]any) { m["iss"] = "https://evil.example.com" })), DescUnknownIssuer},
		{"wrong aud", mint(t, k1, "at+jwt", with(func(m map[string]any) { m["aud"] = "other-api" })), DescAudience},
		{"missing sub", mint(t, k1, "at+jwt", with(func(m map[string]any) { delete(m, "sub") })), DescMissingSubject},
		{"payload edited after signing", edited, DescBadSignature},
		{"signature from another issuer's key (same kid)", mint(t, testKey{kid: "rsa1", alg: jose.RS256, priv: rb}, "at+jwt", baseClaims(iss, now)), DescBadSignature},
		{"ES256 from another key under ec kid", mint(t, testKey{kid: "ec1", alg: jose.ES256, priv: mustEC(t)}, "at+jwt", baseClaims(iss, now)), DescBadSignature},
		{"over 16 KB", big, DescTokenTooLarge},
		{"malformed base64", "eyJhbGciOiJSUzI1NiJ9.%%%not-base64%%%.c2ln", DescMalformed},
		{"malformed JSON", b64([]byte(`{"alg":"RS256"}`)) + "." + b64([]byte(`{"iss": "`+iss+`", not json`)) + ".c2ln", DescMalformed},
		{"two parts", "abc.def", DescMalformed},
		{"ID token of another client, only access tokens configured", mint(t, k1, "JWT", func() map[string]any {
			m := baseClaims(idpAT.issuer(), now)
			m["aud"] = "some-other-client"
			m["nonce"] = "n-0S6_WzA2Mj"
			return m
		}()), DescIDTokenNotAccepted},
		{"ID token of another client", mint(t, k1, "JWT", with(func(m map[string]any) { m["aud"] = "some-other-client" })), DescAudience},
		{"access token must not pass as ID token aud", mint(t, k1, "", with(func(m map[string]any) { m["aud"] = "warden-x" })), DescAudience},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(bearer(tc.token))
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			e := authErr(t, err)
			if e.Status != http.StatusUnauthorized || e.Code != CodeInvalidToken || e.Description != tc.want {
				t.Fatalf("got %d %q %q, want 401 invalid_token %q", e.Status, e.Code, e.Description, tc.want)
			}
			wa := e.WWWAuthenticate()
			if !strings.Contains(wa, `error="invalid_token"`) || !strings.Contains(wa, tc.want) {
				t.Fatalf("WWW-Authenticate %q", wa)
			}
			for _, part := range strings.Split(tc.token, ".") {
				if len(part) > 8 && (strings.Contains(wa, part) || strings.Contains(e.Error(), part)) {
					t.Fatalf("error echoes the token: %q", wa)
				}
			}
		})
	}

	// The untouched tokens still work: the table failed for the right reason.
	for name, tok := range map[string]string{
		"access token": valid,
		"ES256":        mint(t, testKey{kid: "ec1", alg: jose.ES256, priv: ec}, "at+jwt", baseClaims(iss, now)),
		"ID token":     mint(t, k1, "JWT", with(func(m map[string]any) { m["aud"] = "warden-cli" })),
		"exp in skew":  mint(t, k1, "at+jwt", with(func(m map[string]any) { m["exp"] = now.Add(-10 * time.Second).Unix() })),
	} {
		p, err := a.Authenticate(bearer(tok))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Subject != "alice" || p.Issuer != iss || p.AuthMethod != "oidc" || p.Kind != KindUser || len(p.CredentialID) != 16 {
			t.Fatalf("%s: principal %+v", name, p)
		}
	}
}

func mustEC(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
