package identity

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
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
	DescIDTokenNotAccepted = "id token not accepted"
	DescAccessNotAccepted  = "access token not accepted"
	DescRequiredClaim      = "required claim missing or wrong"
	DescIssuerUnavailable  = "identity provider unavailable"
	DescAPIKeyUnknown      = "api key unknown"
	DescAPIKeyRevoked      = "api key revoked"
	DescAPIKeyExpired      = "api key expired"
	DescAPIKeysDisabled    = "api keys not accepted"
	DescTwoCredentials     = "more than one credential"
	DescBadScheme          = "authorization scheme must be Bearer"
)

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

// WriteResponse answers the request with e: status, WWW-Authenticate
// (for 400/401), and a JSON body {"error","error_description"}.
func (e *Error) WriteResponse(w http.ResponseWriter) {
	h := w.Header()
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusBadRequest {
		h.Set("WWW-Authenticate", e.WWWAuthenticate())
	}
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(5))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description}
	if body.Error == "" {
		body.Error = "unauthorized"
		body.Description = "a bearer token or API key is required"
	}
	_ = json.NewEncoder(w).Encode(body)
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
