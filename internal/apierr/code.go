package apierr

import (
	"net/http"
	"slices"
	"strings"
)

// Code is a kind of error. Its string is the code's name; Type is what the
// JSON body says and Status the HTTP status, both fixed by the table below.
type Code string

// The codes. Each answers with exactly one status. Two codes share a wire
// type only where the data path has always answered that way
// (ApprovalUnavailable and MaskingMisconfigured): clients of the gateway
// see no change.
const (
	// BadRequest: the request is malformed (path, body, parameter): 400.
	BadRequest Code = "bad_request"
	// InvalidRequest: a malformed credential (RFC 6750 invalid_request): 400.
	InvalidRequest Code = "invalid_request"
	// Unauthenticated: no credential was presented: 401.
	Unauthenticated Code = "unauthenticated"
	// InvalidToken: the credential did not verify (RFC 6750 invalid_token): 401.
	InvalidToken Code = "invalid_token"
	// Forbidden: the caller may not do this (policy, role, separation of
	// duties): 403.
	Forbidden Code = "forbidden"
	// ApprovalRequired: the call needs an approval it does not have: 403.
	ApprovalRequired Code = "approval_required"
	// ClientCertificateRequired: the listener requires a verified client
	// certificate and the connection presented none: 403.
	ClientCertificateRequired Code = "client_certificate_required"
	// NotFound: no such route, endpoint or object (or one the caller may
	// not see): 404.
	NotFound Code = "not_found"
	// MethodNotAllowed: the endpoint exists but not for this method: 405.
	MethodNotAllowed Code = "method_not_allowed"
	// Conflict: the object is not in a state that allows this: 409.
	Conflict Code = "conflict"
	// TooLarge: the request body exceeds its limit: 413.
	TooLarge Code = "request_too_large"
	// InvalidPolicy: a policy that does not load (the old one stays): 422.
	InvalidPolicy Code = "invalid_policy"
	// Internal: a fault of Warden or its stores, details logged only: 500.
	Internal Code = "internal_error"
	// MaskingMisconfigured: the masking profile a decision names does not
	// exist: 500, wire type "masking_failed".
	MaskingMisconfigured Code = "masking_misconfigured"
	// UpstreamUnavailable: the model server is unreachable or failed: 502.
	UpstreamUnavailable Code = "upstream_unavailable"
	// MaskingFailed: a response that cannot be masked safely is withheld: 502.
	MaskingFailed Code = "masking_failed"
	// AuditUnavailable: the audit log cannot durably record: 503.
	AuditUnavailable Code = "audit_unavailable"
	// ApprovalUnavailable: the approval store or workflow failed: 503,
	// wire type "approval_required".
	ApprovalUnavailable Code = "approval_unavailable"
	// TemporarilyUnavailable: the caller's identity provider cannot be
	// reached yet (RFC 6749 temporarily_unavailable): 503.
	TemporarilyUnavailable Code = "temporarily_unavailable"
	// Unavailable: a store this endpoint needs is closed or down: 503.
	Unavailable Code = "unavailable"
	// NotReady: the server is starting or draining: 503.
	NotReady Code = "not_ready"
	// UpstreamTimeout: the model server did not answer in time: 504.
	UpstreamTimeout Code = "upstream_timeout"
	// RequestTimeout: the request body did not arrive in time: 408.
	RequestTimeout Code = "request_timeout"
)

// table is the one place codes are mapped to HTTP status (and wire type,
// when it is not the code's name).
var table = map[Code]struct {
	status int
	typ    string
	doc    string
}{
	BadRequest:                {http.StatusBadRequest, "", "malformed request: path, body (with the byte offset) or parameter"},
	InvalidRequest:            {http.StatusBadRequest, "", "malformed credential (RFC 6750): two credentials, a scheme other than Bearer"},
	Unauthenticated:           {http.StatusUnauthorized, "", "no credential (or, on the admin listener, no identity configured: the admin API is closed)"},
	InvalidToken:              {http.StatusUnauthorized, "", "the credential did not verify: expired, wrong audience, unknown key, revoked API key …"},
	Forbidden:                 {http.StatusForbidden, "", "denied: by policy (with the rule), by role, by separation of duties"},
	ApprovalRequired:          {http.StatusForbidden, "", "the call needs an approval and none can be had"},
	ClientCertificateRequired: {http.StatusForbidden, "", "the admin listener requires a client certificate signed by its client_ca_file"},
	NotFound:                  {http.StatusNotFound, "", "no route, endpoint or object — or one the caller may not see"},
	MethodNotAllowed:          {http.StatusMethodNotAllowed, "", "the endpoint does not serve this method (see Allow)"},
	Conflict:                  {http.StatusConflict, "", "the object's state does not allow this (already decided, already open …)"},
	RequestTimeout:            {http.StatusRequestTimeout, "", "the request body did not arrive within timeouts.request_body"},
	TooLarge:                  {http.StatusRequestEntityTooLarge, "", "the request body exceeds its limit"},
	InvalidPolicy:             {http.StatusUnprocessableEntity, "", "the policy file does not load; the previous policy stays in force"},
	Internal:                  {http.StatusInternalServerError, "", "a fault inside Warden; details are logged under the request id, never sent"},
	MaskingMisconfigured:      {http.StatusInternalServerError, string(MaskingFailed), "the masking profile a decision names is not configured"},
	UpstreamUnavailable:       {http.StatusBadGateway, "", "the model server is unreachable or failed"},
	MaskingFailed:             {http.StatusBadGateway, "", "a response that cannot be masked safely is withheld"},
	AuditUnavailable:          {http.StatusServiceUnavailable, "", "the audit log cannot durably record: nothing was done (fail closed)"},
	ApprovalUnavailable:       {http.StatusServiceUnavailable, string(ApprovalRequired), "the approval store is unavailable: the request was not forwarded"},
	TemporarilyUnavailable:    {http.StatusServiceUnavailable, "", "the caller's identity provider cannot be reached yet"},
	Unavailable:               {http.StatusServiceUnavailable, "", "a store the endpoint needs is closed or down"},
	NotReady:                  {http.StatusServiceUnavailable, "", "the server is starting or draining"},
	UpstreamTimeout:           {http.StatusGatewayTimeout, "", "the model server did not answer in time"},
}

// Status is the HTTP status c answers with; 500 for a code not in the
// table.
func (c Code) Status() int {
	if e, ok := table[c]; ok {
		return e.status
	}
	return http.StatusInternalServerError
}

// Type is the "type" of c in JSON error bodies.
func (c Code) Type() string {
	e, ok := table[c]
	switch {
	case !ok:
		return string(Internal)
	case e.typ != "":
		return e.typ
	}
	return string(c)
}

// Doc says in a line when c is answered, for the references.
func (c Code) Doc() string { return table[c].doc }

// Known reports whether c is in the table.
func (c Code) Known() bool {
	_, ok := table[c]
	return ok
}

// Codes returns every code, by status and then name (for documentation
// and tests).
func Codes() []Code {
	out := make([]Code, 0, len(table))
	for c := range table {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Code) int {
		if d := a.Status() - b.Status(); d != 0 {
			return d
		}
		return strings.Compare(string(a), string(b))
	})
	return out
}
