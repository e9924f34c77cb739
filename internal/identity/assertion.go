package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// AssertionType is the JOSE typ of Warden identity assertions.
const AssertionType = "warden-identity+jwt"

// JWKSPath is where the admin listener publishes Asserter.JWKS.
const JWKSPath = "/.well-known/warden/jwks.json"

// Asserter signs the short-lived identity assertion the upstream receives
// in place of the caller's credential: a compact JWS (EdDSA) an upstream
// may verify against the keys the admin API publishes at JWKSPath (JWKS).
// Safe for concurrent use.
type Asserter struct {
	issuer string
	ttl    time.Duration
	key    ed25519.PrivateKey
	kid    string
	header string // base64url of the JOSE header, precomputed
	jwks   []byte
	now    func() time.Time
	cache  *assertionCache
}

// AssertionClaims is the payload of an assertion.
type AssertionClaims struct {
	Issuer     string   `json:"iss"`
	Subject    string   `json:"sub"`
	Audience   string   `json:"aud"`
	IssuedAt   int64    `json:"iat"`
	NotBefore  int64    `json:"nbf"`
	Expiry     int64    `json:"exp"`
	ID         string   `json:"jti"`
	IdP        string   `json:"warden_idp"`
	Kind       Kind     `json:"kind"`
	Groups     []string `json:"groups,omitempty"`
	Email      string   `json:"email,omitempty"`
	Name       string   `json:"name,omitempty"`
	AuthMethod string   `json:"auth_method,omitempty"`
}

// NewAsserter loads the Ed25519 key in keyFile (PKCS#8 PEM), creating it
// with mode 0600 if it does not exist. issuer is the `iss` of assertions;
// ttl their lifetime.
func NewAsserter(keyFile string, issuer string, ttl time.Duration) (*Asserter, error) {
	if ttl <= 0 {
		return nil, errors.New("identity: assertion ttl must be positive")
	}
	key, err := loadOrCreateEd25519(keyFile)
	if err != nil {
		return nil, fmt.Errorf("identity: assertion key: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(pub)
	kid := base64.RawURLEncoding.EncodeToString(sum[:12])
	hdr, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": AssertionType, "kid": kid})
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Algorithm: "EdDSA", Use: "sig"}}})
	if err != nil {
		return nil, fmt.Errorf("identity: assertion jwks: %w", err)
	}
	return &Asserter{
		issuer: issuer, ttl: ttl, key: key, kid: kid,
		header: base64.RawURLEncoding.EncodeToString(hdr),
		jwks:   jwks, now: time.Now,
		cache: newAssertionCache(DefaultAssertionCacheSize),
	}, nil
}

func loadOrCreateEd25519(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		// O_EXCL: if another process created it meanwhile, use theirs.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateEd25519(path)
		}
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return priv, nil
	}
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return priv, nil
}

// KeyID is the kid of the signing key.
func (a *Asserter) KeyID() string { return a.kid }

// PublicKey is the verification key.
func (a *Asserter) PublicKey() ed25519.PublicKey { return a.key.Public().(ed25519.PublicKey) }

// Sign returns a new assertion for p: a compact EdDSA JWS with sub, iss
// (this Warden), warden_idp (p's issuer), kind, groups, email, name,
// auth_method, aud (audience, e.g. the route name), iat/nbf/exp and a
// random jti. It names no request: the gateway sends the request id in
// its own header (X-Request-Id), so one assertion can serve several
// requests of the same caller (see Assertion).
func (a *Asserter) Sign(p *Principal, audience string) (string, error) {
	tok, _, err := a.sign(p, audience)
	return tok, err
}

func (a *Asserter) sign(p *Principal, audience string) (string, time.Time, error) {
	if p == nil {
		return "", time.Time{}, errors.New("identity: sign: nil principal")
	}
	now := a.now()
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	c := AssertionClaims{
		Issuer: a.issuer, Subject: p.Subject, Audience: audience,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Add(a.ttl).Unix(),
		ID:  hex.EncodeToString(jti[:]),
		IdP: p.Issuer, Kind: p.Kind, Groups: p.Groups, Email: p.Email, Name: p.Name,
		AuthMethod: p.AuthMethod,
	}
	payload, err := json.Marshal(&c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("identity: sign: %w", err)
	}
	enc := base64.RawURLEncoding
	plen := enc.EncodedLen(len(payload))
	buf := make([]byte, 0, len(a.header)+1+plen+1+enc.EncodedLen(ed25519.SignatureSize))
	buf = append(buf, a.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig := ed25519.Sign(a.key, buf)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), now, nil
}

// Assertion returns an assertion for p and audience, reusing one signed
// earlier for the same principal and audience while more than half of
// its lifetime remains (so the upstream always gets at least ttl/2 of
// validity), and signing a new one otherwise. "The same principal" means
// every claim the assertion carries is equal (issuer, subject, kind,
// groups, email, name, auth method), so a caller whose groups changed gets
// a new assertion at once. The cache holds at most
// DefaultAssertionCacheSize entries.
func (a *Asserter) Assertion(p *Principal, audience string) (string, error) {
	if p == nil {
		return "", errors.New("identity: sign: nil principal")
	}
	key := assertionKey(p, audience)
	now := a.now()
	if tok, ok := a.cache.get(key, now); ok {
		return tok, nil
	}
	tok, issued, err := a.sign(p, audience)
	if err != nil {
		return "", err
	}
	a.cache.put(key, tok, issued.Add(a.ttl/2), now)
	return tok, nil
}

// JWKS returns the public key set (JSON, a JWK Set) that verifies the
// assertions, for the admin API to publish at JWKSPath.
func (a *Asserter) JWKS() []byte { return slices.Clone(a.jwks) }
