package audit

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/wardenhq/warden/internal/identity"
)

// The types below mirror Entry and its parts with their fields declared in
// bytewise order of their JSON names. encoding/json writes struct fields in
// declaration order and map keys sorted, so encoding these (without HTML
// escaping) yields the canonical form directly, without the decode and
// re-encode of canonicalJSON — which is the reference: TestMarshalFastPath
// checks both agree. Keep the field order sorted when adding fields.

type sortedEntry struct {
	ApprovalID     string           `json:"approval_id,omitempty"`
	BytesIn        int64            `json:"bytes_in,omitempty"`
	BytesOut       int64            `json:"bytes_out,omitempty"`
	Decision       *sortedDecision  `json:"decision,omitempty"`
	Details        map[string]any   `json:"details,omitempty"`
	Gateway        int64            `json:"gateway_ns,omitempty"`
	GrantID        string           `json:"grant_id,omitempty"`
	ID             string           `json:"id"`
	Instance       string           `json:"instance,omitempty"`
	Kind           string           `json:"kind"`
	Masking        []sortedMask     `json:"masking,omitempty"`
	Method         string           `json:"method,omitempty"`
	Model          string           `json:"model,omitempty"`
	Outcome        string           `json:"outcome,omitempty"`
	Params         map[string]any   `json:"params,omitempty"`
	Path           string           `json:"path,omitempty"`
	Principal      *principalRecord `json:"principal,omitempty"`
	RequestID      string           `json:"request_id,omitempty"`
	RequestSHA256  string           `json:"request_sha256,omitempty"`
	ResponseSHA256 string           `json:"response_sha256,omitempty"`
	Route          string           `json:"route,omitempty"`
	Status         int              `json:"status,omitempty"`
	Time           json.RawMessage  `json:"time"`
	Upstream       int64            `json:"upstream_ns,omitempty"`
	V              int              `json:"v"`
}

// principalRecord is the audit encoding of a principal: the fields an
// auditor needs, never email, claims or expiry. It is this package's own
// schema (part of the hashed bytes), independent of how identity encodes
// a Principal elsewhere.
type principalRecord struct {
	AuthMethod   string   `json:"auth_method,omitempty"`
	CredentialID string   `json:"credential_id,omitempty"`
	Groups       []string `json:"groups,omitempty"`
	Issuer       string   `json:"iss"`
	Kind         string   `json:"kind,omitempty"`
	Name         string   `json:"name,omitempty"`
	Subject      string   `json:"sub"`
}

// recordPrincipal is the one conversion from the identity package's
// Principal to what an entry records; principal is its inverse. A nil
// principal records nothing.
func recordPrincipal(p *identity.Principal) *principalRecord {
	if p == nil {
		return nil
	}
	return &principalRecord{AuthMethod: p.AuthMethod, CredentialID: p.CredentialID, Groups: p.Groups,
		Issuer: p.Issuer, Kind: string(p.Kind), Name: p.Name, Subject: p.Subject}
}

// principal returns the recorded principal as an identity.Principal.
func (r *principalRecord) principal() *identity.Principal {
	if r == nil {
		return nil
	}
	return &identity.Principal{AuthMethod: r.AuthMethod, CredentialID: r.CredentialID, Groups: r.Groups,
		Issuer: r.Issuer, Kind: identity.Kind(r.Kind), Name: r.Name, Subject: r.Subject}
}

// entryFields is Entry without its methods, and entryJSON is how
// encoding/json sees an entry in the reference encoding and in
// ParseEntry: every field of Entry under its JSON name, with the
// principal in its recorded form.
type entryFields Entry

type entryJSON struct {
	*entryFields
	Principal *principalRecord `json:"principal,omitempty"`
}

type sortedDecision struct {
	Action        string `json:"action"`
	PolicyVersion string `json:"policy_version,omitempty"`
	Reason        string `json:"reason,omitempty"`
	Rule          string `json:"rule,omitempty"`
}

type sortedMask struct {
	Count       int    `json:"count"`
	Entity      string `json:"entity,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Location    string `json:"location,omitempty"`
	Rule        string `json:"rule"`
}

var encBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// marshalFast encodes e canonically through the sorted mirror types. It
// reports false when Params or Details hold a value whose encoding is not
// canonical by construction (a struct, json.RawMessage, a Marshaler …);
// the caller then falls back to canonicalJSON.
func marshalFast(e *Entry) ([]byte, bool, error) {
	if !plainMap(e.Params, 0) || !plainMap(e.Details, 0) {
		return nil, false, nil
	}
	t, err := e.Time.UTC().MarshalJSON()
	if err != nil {
		return nil, true, err
	}
	s := sortedEntry{
		ApprovalID: e.ApprovalID, BytesIn: e.BytesIn, BytesOut: e.BytesOut, Details: e.Details,
		Gateway: int64(e.Gateway), GrantID: e.GrantID, ID: e.ID, Instance: e.Instance, Kind: e.Kind,
		Method: e.Method, Model: e.Model, Outcome: e.Outcome, Params: e.Params, Path: e.Path, RequestID: e.RequestID,
		RequestSHA256: e.RequestSHA256, ResponseSHA256: e.ResponseSHA256, Route: e.Route,
		Status: e.Status, Time: t, Upstream: int64(e.Upstream), V: e.V,
	}
	if d := e.Decision; d != nil {
		s.Decision = &sortedDecision{Action: d.Action, PolicyVersion: d.PolicyVersion, Reason: d.Reason, Rule: d.Rule}
	}
	s.Principal = recordPrincipal(e.Principal)
	if len(e.Masking) > 0 {
		s.Masking = make([]sortedMask, len(e.Masking))
		for i, m := range e.Masking {
			s.Masking[i] = sortedMask{Count: m.Count, Entity: m.Entity, Fingerprint: m.Fingerprint, Location: m.Location, Rule: m.Rule}
		}
	}
	buf := encBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer encBufs.Put(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&s); err != nil {
		return nil, true, err
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// encoding/json writes invalid UTF-8 as the escape \ufffd, which the
	// reference turns into a literal U+FFFD: let it handle such entries.
	if bytes.Contains(out, []byte(`\ufffd`)) {
		return nil, false, nil
	}
	return append([]byte(nil), out...), true, nil
}

// plainMap reports whether m holds only values whose encoding/json output
// is canonical: strings, numbers, booleans, nil, json.Number, and maps and
// slices of those (map keys are sorted by encoding/json).
func plainMap(m map[string]any, depth int) bool {
	for _, v := range m {
		if !plainValue(v, depth+1) {
			return false
		}
	}
	return true
}

func plainValue(v any, depth int) bool {
	if depth > 32 {
		return false
	}
	switch x := v.(type) {
	case nil, string, bool, float64, float32, int, int64, int32, uint, uint64, uint32, json.Number:
		return true
	case []string:
		return true
	case map[string]any:
		return plainMap(x, depth)
	case []any:
		for _, y := range x {
			if !plainValue(y, depth+1) {
				return false
			}
		}
		return true
	case map[string]string:
		return true
	}
	return false
}
