// Package admin guards the admin API on the admin listener: every
// endpoint except health, readiness, metrics and the public JWKS requires
// an authenticated caller (the same OIDC identities and API keys as the
// data path) who is a member of one of the endpoint's groups.
//
// It must never let a request through when no authenticator is
// configured: without identity, the admin API is closed.
package admin
