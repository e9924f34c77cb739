package identity

import (
	"slices"
	"time"
)

// Kind says whether a principal is a person or a workload.
type Kind string

const (
	// KindUser is a human caller (an OIDC user token).
	KindUser Kind = "user"
	// KindService is a workload: an API key of a service account, or an
	// OIDC token obtained with the client_credentials grant.
	KindService Kind = "service"
)

// Principal is the verified identity of a caller: the one type every
// package uses for "who" — what policy evaluates, what an approval
// request keeps of its requester and reviewers, what the audit log
// records (in its own canonical encoding, see audit.Entry), and what a
// policy test suite writes. It never holds the credential (token or API
// key) it was derived from.
//
// The YAML names are those of policy test suites (issuer, subject, …);
// the JSON names those of tokens and of stored approval requests (iss,
// sub, …).
type Principal struct {
	// Issuer is the OIDC issuer URL, or "warden:apikey" for API keys.
	Issuer string `json:"iss" yaml:"issuer,omitempty"`
	// Subject is the stable identifier of the caller at its issuer.
	Subject string `json:"sub" yaml:"subject"`
	// Kind is user or service.
	Kind Kind `json:"kind,omitempty" yaml:"kind,omitempty"`
	// Name is a display name, when the issuer provides one.
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Email is the caller's email, when the issuer provides one.
	Email string `json:"email,omitempty" yaml:"email,omitempty"`
	// Groups are the caller's groups/roles after the issuer's mapping.
	Groups []string `json:"groups,omitempty" yaml:"groups,omitempty"`
	// Claims are the selected extra claims configured for the issuer.
	Claims map[string]any `json:"claims,omitempty" yaml:"claims,omitempty"`
	// AuthMethod is how the caller authenticated: "oidc" or "api_key".
	AuthMethod string `json:"auth_method,omitempty" yaml:"auth_method,omitempty"`
	// CredentialID identifies the credential without revealing it: the
	// API key id, or the first 16 hex chars of the token's SHA-256.
	CredentialID string `json:"credential_id,omitempty" yaml:"credential_id,omitempty"`
	// ExpiresAt is when the credential stops being valid (zero: never).
	ExpiresAt time.Time `json:"exp,omitzero" yaml:"expires_at,omitempty"`
}

// InGroup reports whether the principal is a member of group g.
func (p *Principal) InGroup(g string) bool {
	if p == nil {
		return false
	}
	for _, x := range p.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// InAnyGroup reports whether the principal is a member of one of groups.
func (p *Principal) InAnyGroup(groups []string) bool {
	for _, g := range groups {
		if p.InGroup(g) {
			return true
		}
	}
	return false
}

// Same reports whether p and q are the same identity (issuer and
// subject), whatever their groups. Two nil or empty principals are not
// the same as anyone.
func (p *Principal) Same(q *Principal) bool {
	if p == nil || q == nil || p.Subject == "" {
		return false
	}
	return p.Issuer == q.Issuer && p.Subject == q.Subject
}

// Snapshot returns a copy of p to keep beyond the request (an approval
// request's requester or reviewer): issuer, subject, kind, name and a
// copy of the groups — not the email, claims, credential details or
// expiry. A nil p gives the zero Principal.
func (p *Principal) Snapshot() Principal {
	if p == nil {
		return Principal{}
	}
	return Principal{Issuer: p.Issuer, Subject: p.Subject, Kind: p.Kind, Name: p.Name, Groups: slices.Clone(p.Groups)}
}
