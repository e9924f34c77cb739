// Package identity turns the credential on an inbound request (an OIDC
// bearer token or a Warden API key) into a verified Principal, and signs
// the short-lived identity assertion the upstream model server receives.
//
// It must never log, store or echo a credential: API keys are stored as
// hashes only, tokens are cached under their SHA-256, and error messages
// describe what was wrong without repeating the token.
package identity
