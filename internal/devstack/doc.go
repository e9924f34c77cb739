// Package devstack provides the demo-only companions of `warden demo`: a
// local OpenID Connect issuer that hands out signed JWT access tokens to
// fixed demo users through the client_credentials grant, and an
// OpenAI-compatible model server whose answers contain realistic fake PII.
//
// It must never be used in production: the issuer's users, secrets and
// keys are public by design (every client secret is "demo").
package devstack
