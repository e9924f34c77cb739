package identity

import (
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzAuthenticateToken: no input panics, every refusal is an *Error that
// does not repeat the input, and nothing but the correctly signed token of
// the trusted issuer is accepted.
func FuzzAuthenticateToken(f *testing.F) {
	ra, _, _ := testKeys()
	k := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	idp := newTestIdP(f, k)
	a, c := newAuth(f, oneIssuer(idp), true)
	valid := mint(f, k, "at+jwt", baseClaims(idp.issuer(), c.now()))
	f.Add(valid)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(valid[:len(valid)-3] + "AAA")
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := a.AuthenticateToken(t.Context(), tok)
		if err == nil {
			// Only the minted token (or an encoding-equivalent spelling of
			// it) can pass, so the principal must be the minted one.
			if p.Subject != "alice" || p.Issuer != idp.issuer() || len(tok) != len(valid) {
				t.Fatalf("accepted %q as %+v", tok, p)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T", err)
		}
		if len(tok) > 12 && strings.Contains(e.Description, tok) {
			t.Fatal("description echoes the token")
		}
	})
}
