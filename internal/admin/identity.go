package admin

import (
	"net/http"

	"github.com/wardenhq/warden/internal/identity"
)

// jwksRoutes publish the public keys of the identity assertion the
// upstreams receive, so they can verify it.
func jwksRoutes(a *identity.Asserter) []Route {
	return []Route{{Method: "GET", Path: identity.JWKSPath, Role: Public,
		Summary: "The public keys (JWK Set) that verify the identity assertion sent upstream",
		Reply:   "a JWK Set (application/jwk-set+json), cacheable for 5 minutes",
		Handle: func(w http.ResponseWriter, _ *http.Request) error {
			w.Header().Set("Content-Type", "application/jwk-set+json")
			w.Header().Set("Cache-Control", "public, max-age=300")
			_, _ = w.Write(a.JWKS())
			return nil
		}}}
}
