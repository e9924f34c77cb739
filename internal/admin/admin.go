package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/wardenhq/warden/internal/identity"
)

// Authenticator verifies the credential on an admin request; failures are
// *identity.Error values.
type Authenticator interface {
	Authenticate(r *http.Request) (*identity.Principal, error)
}

// Config is the `admin:` section: which groups may use which part of the
// admin API.
type Config struct {
	// AuditorGroups may read the audit log (search, entries, proofs).
	// Default [ml-admins, auditors].
	AuditorGroups []string `yaml:"auditor_groups"`
	// AdminGroups may change the gateway (reload the policy).
	// Default [ml-admins].
	AdminGroups []string `yaml:"admin_groups"`
}

// SetDefaults fills the default groups.
func (c *Config) SetDefaults() {
	if c.AuditorGroups == nil {
		c.AuditorGroups = []string{"ml-admins", "auditors"}
	}
	if c.AdminGroups == nil {
		c.AdminGroups = []string{"ml-admins"}
	}
}

type principalKey struct{}

// PrincipalFrom returns the authenticated admin caller of a request
// passed through Require.
func PrincipalFrom(ctx context.Context) *identity.Principal {
	p, _ := ctx.Value(principalKey{}).(*identity.Principal)
	return p
}

// Authenticate returns a function that authenticates an admin request
// (for handlers that make their own authorisation decisions, such as
// approvals). With a nil authenticator it always fails.
func Authenticate(auth Authenticator) func(*http.Request) (*identity.Principal, error) {
	return func(r *http.Request) (*identity.Principal, error) {
		if auth == nil {
			return nil, errClosed
		}
		return auth.Authenticate(r)
	}
}

var errClosed = &identity.Error{Status: http.StatusUnauthorized, Code: "invalid_request", Description: "the admin API is closed: no identity is configured"}

// Require wraps h so that only an authenticated member of one of groups
// reaches it. The principal is available to h via PrincipalFrom.
func Require(auth Authenticator, groups []string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := Authenticate(auth)(r)
		if err != nil {
			var ie *identity.Error
			if !errors.As(err, &ie) {
				ie = &identity.Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "credential could not be verified"}
			}
			if ie.Status == http.StatusUnauthorized || ie.Status == http.StatusBadRequest {
				w.Header().Set("WWW-Authenticate", ie.WWWAuthenticate())
			}
			typ, msg := ie.Code, ie.Description
			if typ == "" {
				typ, msg = "unauthenticated", "a bearer token or API key is required"
			}
			WriteError(w, ie.Status, typ, msg)
			return
		}
		for _, g := range groups {
			if p.InGroup(g) {
				h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
				return
			}
		}
		WriteError(w, http.StatusForbidden, "forbidden", "this endpoint requires membership of one of: "+strings.Join(groups, ", "))
	})
}

// WriteError writes the gateway's JSON error shape.
func WriteError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"type": typ, "message": msg}})
}
