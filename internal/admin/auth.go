package admin

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/identity"
)

// Role says who may call an endpoint.
type Role string

// Roles of admin endpoints. Auditor, Approver and Admin are held through
// group membership (Config.Roles); Authenticated needs a verified caller
// and leaves the decision to the service, per object (an approval request
// is seen by its requester and its reviewers only); Public needs nothing.
const (
	Public        Role = "public"
	Authenticated Role = "authenticated"
	Auditor       Role = "auditor"
	Approver      Role = "approver"
	Admin         Role = "admin"
)

// Authenticator verifies one kind of credential on an admin request.
//
// It is the extension point for new kinds of credential: bearer tokens
// and API keys (identity.Authenticator) today; the console's browser
// sessions (a cookie) and client certificates later. The router tries
// its authenticators in order. Authenticate must return:
//   - the principal, when the request carries its kind of credential and
//     it verifies;
//   - an error for which NoCredential reports true (ErrNoCredential, or
//     an *identity.Error without a code), when the request carries no
//     credential of its kind — the next authenticator is tried;
//   - any other error when the credential is there but does not verify
//     (an *identity.Error or *apierr.Error says how; other errors answer
//     401 invalid_token without detail). The first such error decides.
//
// An authenticator of an ambient credential (a cookie) must leave unsafe
// methods to the router's cross-origin protection, which runs before
// authentication on every request.
type Authenticator interface {
	Authenticate(r *http.Request) (*identity.Principal, error)
}

// ErrNoCredential is what an Authenticator returns when the request
// carries no credential of its kind.
var ErrNoCredential = errors.New("admin: no credential")

// NoCredential reports whether err means "no credential of this kind".
func NoCredential(err error) bool {
	var ie *identity.Error
	return errors.Is(err, ErrNoCredential) || (errors.As(err, &ie) && ie.Code == "")
}

// errClosed answers every non-public endpoint when no authenticator is
// configured: without identity, the admin API is closed.
var errClosed = apierr.New(apierr.Unauthenticated, "the admin API is closed: no identity is configured")

// authenticate runs the authenticators in order (see Authenticator).
func authenticate(auths []Authenticator, r *http.Request) (*identity.Principal, *apierr.Error) {
	if len(auths) == 0 {
		return nil, errClosed
	}
	for _, a := range auths {
		p, err := a.Authenticate(r)
		switch {
		case err == nil && p != nil && p.Subject != "":
			return p, nil
		case err == nil:
			return nil, identity.AsError(errors.New("no subject")).APIError()
		case NoCredential(err):
			continue
		}
		var ae *apierr.Error
		if errors.As(err, &ae) && ae.Code.Known() && ae.Code != apierr.Internal {
			return nil, ae
		}
		return nil, identity.AsError(err).APIError()
	}
	e := (&identity.Error{Status: http.StatusUnauthorized}).APIError()
	return nil, e
}

// roleGroups resolves roles to groups.
type roleGroups struct{ cfg Roles }

// groups returns the groups holding role; nil means the role needs no
// group (Public, Authenticated, and Approver when admin.roles.approver
// is unset: then the reviewer groups of each request decide, in the
// approval service).
func (rg roleGroups) groups(role Role) []string {
	switch role {
	case Auditor:
		return rg.cfg.Auditor
	case Admin:
		return rg.cfg.Admin
	case Approver:
		return rg.cfg.Approver
	}
	return nil
}

// check answers whether p holds role.
func (rg roleGroups) check(p *identity.Principal, role Role) *apierr.Error {
	gs := rg.groups(role)
	if gs == nil {
		return nil
	}
	if p.InAnyGroup(gs) {
		return nil
	}
	if len(gs) == 0 {
		return apierr.Errorf(apierr.Forbidden, "this endpoint needs the %s role, which no group holds (admin.roles.%s)", role, role)
	}
	sorted := slices.Clone(gs)
	slices.Sort(sorted)
	return apierr.Errorf(apierr.Forbidden, "this endpoint needs the %s role: membership of one of %s", role, strings.Join(sorted, ", "))
}

type principalKey struct{}

// PrincipalFrom returns the authenticated caller of an admin request
// (nil on public endpoints).
func PrincipalFrom(ctx context.Context) *identity.Principal {
	p, _ := ctx.Value(principalKey{}).(*identity.Principal)
	return p
}

// withPrincipal returns ctx carrying p.
func withPrincipal(ctx context.Context, p *identity.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}
