// Package identity turns the credential on an inbound request (an OIDC
// bearer token or a Warden API key) into a verified Principal, and signs
// the short-lived identity assertion the upstream model server receives.
//
// It must never log, store or echo a credential: API keys are stored as
// hashes only, tokens are cached under their SHA-256, and error messages
// describe what was wrong without repeating the token.
//
// # Use
//
//	auth, err := identity.New(ctx, cfg, dataDir) // never waits for an IdP
//	defer auth.Close()
//	p, err := auth.Authenticate(r)               // err is always *identity.Error
//	if err != nil { apierr.Write(w, requestID, identity.AsError(err).APIError()); return }
//	asserter, _ := identity.NewAsserter(cfg.Assertion.KeyFile, cfg.Assertion.Issuer, cfg.Assertion.TTL)
//	a, _ := asserter.Assertion(p, routeName)      // reused while > ttl/2 remains
//	auth.PrepareUpstreamHeaders(out.Header, a)   // strip spoofable headers + credential, set assertion
//
// # Bearer tokens
//
// A token is checked in this order, each step with its own refusal
// (Desc* constants): size (16 KB), the verified-token cache, the
// unverified `iss` (an unknown issuer is refused without any network
// call), the JOSE algorithm against the issuer's allow-list (none and HS*
// can never be configured), the signing key by `kid`, the signature, the
// signed `iss`, exp/nbf with the issuer's clock skew (exp is required),
// the token type and audience, `sub`, and required claims.
//
// Token type (default token_types [access_token]): a JOSE header typ of
// "at+jwt" (RFC 9068) marks an access token; a JWT typed "JWT" or not at
// all is an access token too unless it carries an ID-token marker (nonce,
// at_hash, c_hash, or Keycloak's typ "ID" claim) — that is how Keycloak,
// Okta, Entra ID and Auth0 issue access tokens. Access tokens must name
// one of the issuer's audiences. A marked token is an ID token, refused
// (DescIDTokenNotAccepted) unless token_types lists id_token, the explicit
// opt-in; then its `aud` must name one of client_ids (or audiences when
// client_ids is empty). A JWT typed for another use (logout+jwt, …) is
// never a credential. A groups claim is a list of strings or one string;
// any other type refuses the token (DescGroupsClaim).
//
// # Keys and outages
//
// Each issuer has a KeySet: discovery (once it succeeds, its jwks_uri is
// kept) and the JWKS, refreshed every jwks_refresh in the background. A
// token naming an unknown kid triggers at most one fetch per
// unknown_kid_cooldown, shared by all concurrent callers (singleflight),
// so a flood of random kids costs a handful of fetches. A failed fetch
// keeps the cached keys. A withdrawn kid also evicts the cached tokens it
// had verified. If an IdP is unreachable when Warden starts, New still
// succeeds; that issuer's tokens are answered 503 temporarily_unavailable
// ("identity provider unavailable", Retry-After) until its keys have been
// fetched once — fail closed, but telling the caller the fault is not in
// its token. Retries run in the background (1s doubling up to
// jwks_refresh) and on demand (at most once a second).
//
// # Verified-token cache
//
// Keyed by SHA-256 of the token, bounded (token_cache_size, FIFO
// eviction), each entry kept until min(exp + skew, verification +
// jwks_refresh); an expired token is refused even if cached.
//
// # API keys
//
// "wk_<16 hex id>_<43 base64url secret>", accepted as `Authorization:
// Bearer` or `X-API-Key`. The store (FileKeyStore, JSON, 0600, atomic
// rename, flock'd across processes) holds SHA-256(tag, id, secret) only —
// the secret has 256 random bits, so an HMAC pepper would add nothing a
// file-system reader could not also read. Changes from another process
// (`warden keys revoke`) are seen within a second; last-used times are
// kept in memory and written at most once a minute and on Close.
//
// # Upstream
//
// The caller's credential is not forwarded unless forward_credential.
// StripClientIdentityHeaders removes X-Warden-*, X-Auth-Request-*,
// X-Forwarded-User/-Email/-Groups, X-Remote-User and configured extras.
// Asserter signs an EdDSA JWT (typ warden-identity+jwt) with sub, iss,
// warden_idp, kind, groups, aud, iat/nbf/exp, jti; its key is published
// (Asserter.JWKS) by the admin API at JWKSPath. It names no request (the
// gateway sends X-Request-Id beside it), so Asserter.Assertion reuses one
// per (principal, audience) while more than half its lifetime remains,
// in a bounded cache: a signature per caller and route every ttl/2
// instead of one per request.
package identity
