package identity

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
)

// Error codes (RFC 6750 §3.1, and RFC 6749 §4.1.2.1 for the IdP outage).
const (
	CodeInvalidRequest = "invalid_request"
	CodeInvalidToken   = "invalid_token"
	// CodeTemporarilyUnavailable: the caller's issuer could not be reached
	// and we hold no keys for it yet. Status 503; retrying may succeed.
	CodeTemporarilyUnavailable = "temporarily_unavailable"
)

// Descriptions returned in Error.Description. They are fixed strings so
// tests, dashboards and clients can match them; none contains the token.
const (
	DescMissingCredential  = "" // RFC 6750 §3.1: no error code, no description
	DescTokenTooLarge      = "token too large"
	DescMalformed          = "malformed token"
	DescUnknownIssuer      = "unknown issuer"
	DescAlgNotAllowed      = "signing algorithm not allowed"
	DescUnknownKey         = "unknown signing key"
	DescBadSignature       = "signature invalid"
	DescExpired            = "token expired"
	DescNotYetValid        = "token not yet valid"
	DescMissingExpiry      = "token has no expiry"
	DescAudience           = "audience not allowed"
	DescMissingSubject     = "missing subject"
	DescIDTokenNotAccepted = "id token not accepted; send an access token"
	DescAccessNotAccepted  = "access token not accepted"
	DescRequiredClaim      = "required claim missing or wrong"
	DescTokenType          = "token type not accepted"
	DescGroupsClaim        = "groups claim must be a string or a list of strings"
	DescEmptyBearer        = "empty bearer token"
	DescIssuerUnavailable  = "identity provider unavailable"
	DescAPIKeyUnknown      = "api key unknown"
	DescAPIKeyRevoked      = "api key revoked"
	DescAPIKeyExpired      = "api key expired"
	DescAPIKeysDisabled    = "api keys not accepted"
	DescTwoCredentials     = "more than one credential"
	DescBadScheme          = "authorization scheme must be Bearer"
)

// RetryAfter is the Retry-After of a 503 temporarily_unavailable: keys
// are refetched on demand at most once a second and in the background
// with backoff, so a few seconds is a fair first retry.
const RetryAfter = 5 * time.Second

// Error is an authentication failure, shaped for an RFC 6750 response.
// It never contains the credential.
type Error struct {
	// Status is the HTTP status to answer with (400, 401 or 503).
	Status int
	// Code is "invalid_request", "invalid_token", "temporarily_unavailable",
	// or "" when no credential was presented at all.
	Code string
	// Description says precisely what was wrong (one of the Desc* constants,
	// sometimes followed by a claim name).
	Description string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return "identity: no credential"
	}
	return "identity: " + e.Code + ": " + e.Description
}

// WWWAuthenticate returns the WWW-Authenticate header value for e.
func (e *Error) WWWAuthenticate() string {
	var b strings.Builder
	b.WriteString(`Bearer realm="warden"`)
	if e.Code == "" || e.Code == CodeTemporarilyUnavailable {
		return b.String()
	}
	b.WriteString(`, error="`)
	b.WriteString(e.Code)
	b.WriteString(`"`)
	if e.Description != "" {
		b.WriteString(`, error_description="`)
		b.WriteString(quoteSafe(e.Description))
		b.WriteString(`"`)
	}
	return b.String()
}

// APIError returns e as the error Warden answers with (package apierr):
// the code for e.Code (no credential at all is "unauthenticated"), the
// description as message, and the RFC 6750 challenge for 400 and 401.
// The status this gives always equals e.Status.
func (e *Error) APIError() *apierr.Error {
	out := &apierr.Error{Msg: e.Description}
	switch e.Code {
	case "":
		out.Code, out.Msg = apierr.Unauthenticated, "a bearer token or API key is required"
	case CodeInvalidRequest:
		out.Code = apierr.InvalidRequest
	case CodeTemporarilyUnavailable:
		out.Code = apierr.TemporarilyUnavailable
	default:
		out.Code = apierr.InvalidToken
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusBadRequest {
		out.Challenge = e.WWWAuthenticate()
	}
	if e.Status == http.StatusServiceUnavailable {
		out.RetryAfter = RetryAfter
	}
	return out
}

// AsError returns the *Error in err's chain, or, for any other error
// from an authenticator, a generic invalid_token that says nothing about
// the credential.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errToken("credential could not be verified")
}

// quoteSafe keeps only characters RFC 6750 allows in error_description
// (%x20-21 / %x23-5B / %x5D-7E).
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 0x20 && r <= 0x7e && r != '"' && r != '\\' {
			return r
		}
		return -1
	}, s)
}

func errMissing() *Error {
	return &Error{Status: http.StatusUnauthorized}
}

func errRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc}
}

func errToken(desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: desc}
}

func errUnavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeTemporarilyUnavailable, Description: DescIssuerUnavailable}
}
