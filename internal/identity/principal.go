package identity

import "time"

// Kind says whether a principal is a person or a workload.
type Kind string

const (
	// KindUser is a human caller (an OIDC user token).
	KindUser Kind = "user"
	// KindService is a workload: an API key of a service account, or an
	// OIDC token obtained with the client_credentials grant.
	KindService Kind = "service"
)

// Principal is the verified identity of a caller. It is what policy
// evaluates and what the audit log records. It never holds the credential
// (token or API key) it was derived from.
type Principal struct {
	// Issuer is the OIDC issuer URL, or "warden:apikey" for API keys.
	Issuer string `json:"iss"`
	// Subject is the stable identifier of the caller at its issuer.
	Subject string `json:"sub"`
	// Kind is user or service.
	Kind Kind `json:"kind"`
	// Name is a display name, when the issuer provides one.
	Name string `json:"name,omitempty"`
	// Email is the caller's email, when the issuer provides one.
	Email string `json:"email,omitempty"`
	// Groups are the caller's groups/roles after the issuer's mapping.
	Groups []string `json:"groups,omitempty"`
	// Claims are the selected extra claims configured for the issuer.
	Claims map[string]any `json:"claims,omitempty"`
	// AuthMethod is how the caller authenticated: "oidc" or "api_key".
	AuthMethod string `json:"auth_method"`
	// CredentialID identifies the credential without revealing it: the
	// API key id, or the first 16 hex chars of the token's SHA-256.
	CredentialID string `json:"credential_id,omitempty"`
	// ExpiresAt is when the credential stops being valid (zero: never).
	ExpiresAt time.Time `json:"exp,omitempty"`
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
