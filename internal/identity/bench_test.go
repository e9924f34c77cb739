package identity

import (
	"crypto/ed25519"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// benchAuth: one issuer with an RSA and an EC key; cacheSize -1 disables
// the verified-token cache so every call verifies the signature.
func benchAuth(b *testing.B, cacheSize int) (*Authenticator, *clock, testKey, testKey, *testIdP) {
	ra, _, ec := testKeys()
	kr := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	ke := testKey{kid: "ec1", alg: jose.ES256, priv: ec}
	idp := newTestIdP(b, kr, ke)
	cfg := oneIssuer(idp)
	cfg.TokenCacheSize = cacheSize
	a, c := newAuth(b, cfg, true)
	return a, c, kr, ke, idp
}

func benchVerify(b *testing.B, cacheSize int, pick func(kr, ke testKey) testKey) {
	a, c, kr, ke, idp := benchAuth(b, cacheSize)
	req := bearer(mint(b, pick(kr, ke), "at+jwt", baseClaims(idp.issuer(), c.now())))
	if _, err := a.Authenticate(req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Authenticate(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCached: a token seen before (hash + cache lookup).
func BenchmarkVerifyCached(b *testing.B) {
	benchVerify(b, DefaultTokenCacheSize, func(kr, _ testKey) testKey { return kr })
}

// BenchmarkVerifyFreshRS256: full verification of an RS256 (2048-bit) token.
func BenchmarkVerifyFreshRS256(b *testing.B) {
	benchVerify(b, -1, func(kr, _ testKey) testKey { return kr })
}

// BenchmarkVerifyFreshES256: full verification of an ES256 token.
func BenchmarkVerifyFreshES256(b *testing.B) {
	benchVerify(b, -1, func(_, ke testKey) testKey { return ke })
}

// BenchmarkBaselineJoseRS256 is the floor for the fresh RS256 figure:
// go-jose parse + signature check alone, no claims or policy.
func BenchmarkBaselineJoseRS256(b *testing.B) {
	ra, _, _ := testKeys()
	kr := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	tok := mint(b, kr, "at+jwt", baseClaims("https://idp.example.com", newClock().now()))
	algs := []jose.SignatureAlgorithm{jose.RS256}
	b.ReportAllocs()
	for b.Loop() {
		jws, err := jose.ParseSignedCompact(tok, algs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jws.Verify(ra.Public()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertionSign: the per-request upstream assertion (EdDSA).
func BenchmarkAssertionSign(b *testing.B) {
	as, err := NewAsserter(filepath.Join(b.TempDir(), "k"), "warden", DefaultAssertionTTL)
	if err != nil {
		b.Fatal(err)
	}
	p := &Principal{Issuer: "https://idp.example.com", Subject: "alice", Kind: KindUser, Groups: []string{"ml-users", "eng"}, Email: "alice@example.com", AuthMethod: "oidc"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := as.Sign(p, "chat"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBaselineEd25519Sign is the floor for BenchmarkAssertionSign:
// the bare signature over a message of the same size.
func BenchmarkBaselineEd25519Sign(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 420)
	b.ReportAllocs()
	for b.Loop() {
		_ = ed25519.Sign(priv, msg)
	}
}
