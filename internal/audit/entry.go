package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// SchemaVersion is the version of the Entry schema written by this package.
// It is part of the hashed bytes, so a reader knows how to interpret them.
const SchemaVersion = 1

// MaxEntrySize bounds the canonical encoding of one entry. Larger entries
// are refused by Marshal and by ParseEntry: an audit record is metadata,
// never a request or response body.
const MaxEntrySize = 1 << 20

// Outcomes of a request, recorded in its terminal entry (Entry.Outcome).
const (
	// OutcomeOK: the upstream answered and the caller received all of it.
	OutcomeOK = "ok"
	// OutcomeUpstreamError: the upstream could not be reached, failed, or
	// broke the connection mid-answer.
	OutcomeUpstreamError = "upstream_error"
	// OutcomeUpstreamTimeout: the upstream did not answer (or stalled) in time.
	OutcomeUpstreamTimeout = "upstream_timeout"
	// OutcomeClientAborted: the caller went away before the answer ended.
	OutcomeClientAborted = "client_aborted"
	// OutcomeTruncated: the answer ended abnormally after part of it had
	// reached the caller; held-back text was dropped, not flushed.
	OutcomeTruncated = "truncated"
	// OutcomeMaskingFailed: the response could not be masked safely and was
	// withheld (or cut).
	OutcomeMaskingFailed = "masking_failed"
	// OutcomeRefused: Warden refused the request after admission.
	OutcomeRefused = "refused"
)

// Entry is one audit record. Its canonical encoding (see Marshal) is the
// record data of the Merkle tree: the leaf hash is tlog.RecordHash(bytes).
//
// Seq is not part of the encoding: it is the record's index in the tree,
// so its position is already bound by the tree hash.
type Entry struct {
	// V is the schema version (SchemaVersion). Set by Log.Append.
	V int `json:"v"`
	// Seq is the record index in the log, assigned by the log. Not hashed.
	Seq int64 `json:"-"`
	// Time is when the event happened, UTC, nanosecond precision.
	Time time.Time `json:"time"`
	// Kind is the event type, e.g. KindRequestAdmitted.
	Kind string `json:"kind"`
	// ID uniquely identifies this entry (set by Log.Append when empty).
	ID string `json:"id"`
	// RequestID ties the admitted and completed entries of one call.
	RequestID string `json:"request_id,omitempty"`
	// Instance names the gateway instance that wrote the entry.
	Instance string `json:"instance,omitempty"`
	// Principal is the verified caller, or the actor of an approval
	// transition, if any. The entry records issuer, subject, kind, name,
	// groups, auth method and credential id — never email, claims or
	// expiry — in the audit package's own encoding ("principal": {"iss",
	// "sub", …}); recordPrincipal is the one conversion.
	Principal *identity.Principal `json:"-"`
	// Route is the name of the matched route.
	Route string `json:"route,omitempty"`
	// Method is the HTTP method.
	Method string `json:"method,omitempty"`
	// Path is the normalised request path (no query secrets).
	Path string `json:"path,omitempty"`
	// Model is the model named by the request, when known.
	Model string `json:"model,omitempty"`
	// RequestSHA256 is the hex SHA-256 of the request body as received.
	RequestSHA256 string `json:"request_sha256,omitempty"`
	// Params are request parameters as redacted by policy. Never secrets.
	Params map[string]any `json:"params,omitempty"`
	// Decision is the policy outcome.
	Decision *Decision `json:"decision,omitempty"`
	// ApprovalID references an approval request, if one was involved.
	ApprovalID string `json:"approval_id,omitempty"`
	// GrantID references the grant that allowed the call, if any.
	GrantID string `json:"grant_id,omitempty"`
	// Status is the HTTP status returned to the caller.
	Status int `json:"status,omitempty"`
	// BytesIn is the size of the request body.
	BytesIn int64 `json:"bytes_in,omitempty"`
	// BytesOut is the number of body bytes the caller received.
	BytesOut int64 `json:"bytes_out,omitempty"`
	// Upstream is the time spent waiting on the upstream (ns in JSON).
	Upstream time.Duration `json:"upstream_ns,omitempty"`
	// Gateway is the time spent in the gateway itself (ns in JSON).
	Gateway time.Duration `json:"gateway_ns,omitempty"`
	// Masking lists what the masker changed in the response.
	Masking []MaskAction `json:"masking,omitempty"`
	// ResponseSHA256 is the hex SHA-256 of the bytes the caller received.
	ResponseSHA256 string `json:"response_sha256,omitempty"`
	// Outcome says how a request ended (terminal entries only): one of the
	// Outcome* constants.
	Outcome string `json:"outcome,omitempty"`
	// Details carries kind-specific data, e.g. for config.changed the old
	// and new config versions and the actor. Never secrets.
	Details map[string]any `json:"details,omitempty"`
}

// Decision is the policy outcome recorded with a request.
type Decision struct {
	// Action is allow, deny or require_approval.
	Action string `json:"action"`
	// Rule names the rule that decided.
	Rule string `json:"rule,omitempty"`
	// PolicyVersion is the content hash of the policy that decided.
	PolicyVersion string `json:"policy_version,omitempty"`
	// Reason is a human-readable explanation.
	Reason string `json:"reason,omitempty"`
}

// MaskAction records one kind of change the masker made. It never holds
// the original value: Fingerprint is a keyed hash (HMAC) of it.
type MaskAction struct {
	Rule        string `json:"rule"`
	Entity      string `json:"entity,omitempty"`
	Location    string `json:"location,omitempty"`
	Count       int    `json:"count"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Marshal returns the canonical encoding of e, the bytes that are hashed.
//
// The encoding is JSON with: object keys sorted bytewise at every level
// (struct fields included), no insignificant whitespace, no HTML escaping
// (<, >, & appear literally), empty optional fields omitted, Time as
// RFC 3339 with nanoseconds in UTC (trailing zeros trimmed), durations as
// integer nanoseconds, and numbers inside Params/Details written exactly
// as given (json.Number keeps its text). Marshal(ParseEntry(b)) == b for
// every b this package accepts, which is how ParseEntry checks it.
func Marshal(e *Entry) ([]byte, error) {
	if e.Kind == "" {
		return nil, fmt.Errorf("audit: marshal: empty kind")
	}
	out, ok, err := marshalFast(e)
	if err != nil {
		return nil, fmt.Errorf("audit: marshal %s: %w", e.Kind, err)
	}
	if !ok {
		if out, err = marshalSlow(e); err != nil {
			return nil, fmt.Errorf("audit: marshal %s: %w", e.Kind, err)
		}
	}
	if len(out) > MaxEntrySize {
		return nil, fmt.Errorf("audit: marshal %s: entry is %d bytes, limit %d", e.Kind, len(out), MaxEntrySize)
	}
	return out, nil
}

// marshalSlow is the reference canonical encoding: encode, then decode and
// re-encode with sorted keys.
func marshalSlow(e *Entry) ([]byte, error) {
	c := *e
	c.Time = c.Time.UTC()
	first, err := json.Marshal(entryJSON{(*entryFields)(&c), recordPrincipal(c.Principal)})
	if err != nil {
		return nil, err
	}
	return canonicalJSON(first)
}

// canonicalJSON re-encodes JSON text with sorted keys and no whitespace,
// keeping numbers' text.
func canonicalJSON(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseEntry decodes canonical entry bytes. It is strict: unknown fields,
// an unknown schema version, trailing data, or bytes that are not in
// canonical form (re-encoding differs) are errors. seq is stored in
// Entry.Seq.
func ParseEntry(seq int64, data []byte) (*Entry, error) {
	e, err := DecodeEntry(seq, data)
	if err != nil {
		return nil, err
	}
	again, err := Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("audit: entry %d: %w", seq, err)
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("audit: entry %d: not in canonical form", seq)
	}
	return e, nil
}
