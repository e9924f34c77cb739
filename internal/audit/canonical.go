package audit

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"

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

var encBufs = sync.Pool{New: func() any { return newEncWriter() }}

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
	w := encBufs.Get().(*encWriter)
	defer encBufs.Put(w)
	w.buf.Reset()
	if ok, err := w.entry(&s); !ok || err != nil {
		return nil, ok, err
	}
	out := w.buf.Bytes()
	// encoding/json writes invalid UTF-8 as the escape \ufffd, which the
	// reference turns into a literal U+FFFD: let it handle such entries.
	if bytes.Contains(out, []byte(`\ufffd`)) {
		return nil, false, nil
	}
	return append([]byte(nil), out...), true, nil
}

// encWriter writes a sortedEntry as encoding/json would (fields in
// declaration order, omitempty, no HTML escaping), without reflection:
// encoding/json's struct encoder was most of the appenders' CPU. Params
// and Details, maps of arbitrary depth, still go through encoding/json.
type encWriter struct {
	buf     bytes.Buffer
	enc     *json.Encoder // writes to buf
	scratch []byte
}

func newEncWriter() *encWriter {
	w := &encWriter{}
	w.enc = json.NewEncoder(&w.buf)
	w.enc.SetEscapeHTML(false)
	return w
}

// entry writes s; it reports false if a string is not valid UTF-8 (the
// reference encoding handles those).
func (w *encWriter) entry(s *sortedEntry) (bool, error) {
	first := true
	key := func(k string) {
		if first {
			w.buf.WriteString(`{"`)
			first = false
		} else {
			w.buf.WriteString(`,"`)
		}
		w.buf.WriteString(k)
		w.buf.WriteString(`":`)
	}
	ok := true
	str := func(k, v string, omitEmpty bool) {
		if v == "" && omitEmpty {
			return
		}
		key(k)
		ok = w.str(v) && ok
	}
	num := func(k string, v int64, omitEmpty bool) {
		if v == 0 && omitEmpty {
			return
		}
		key(k)
		w.scratch = strconv.AppendInt(w.scratch[:0], v, 10)
		w.buf.Write(w.scratch)
	}
	obj := func(k string, m map[string]any) error {
		if len(m) == 0 {
			return nil
		}
		key(k)
		if err := w.enc.Encode(m); err != nil {
			return err
		}
		w.buf.Truncate(w.buf.Len() - 1) // Encode's newline
		return nil
	}
	str("approval_id", s.ApprovalID, true)
	num("bytes_in", s.BytesIn, true)
	num("bytes_out", s.BytesOut, true)
	if d := s.Decision; d != nil {
		key("decision")
		w.buf.WriteString(`{"action":`)
		ok = w.str(d.Action) && ok
		first = false
		str("policy_version", d.PolicyVersion, true)
		str("reason", d.Reason, true)
		str("rule", d.Rule, true)
		w.buf.WriteByte('}')
	}
	if err := obj("details", s.Details); err != nil {
		return true, err
	}
	num("gateway_ns", s.Gateway, true)
	str("grant_id", s.GrantID, true)
	str("id", s.ID, false)
	str("instance", s.Instance, true)
	str("kind", s.Kind, false)
	if len(s.Masking) > 0 {
		key("masking")
		w.buf.WriteByte('[')
		for i, m := range s.Masking {
			if i > 0 {
				w.buf.WriteByte(',')
			}
			w.buf.WriteString(`{"count":`)
			w.scratch = strconv.AppendInt(w.scratch[:0], int64(m.Count), 10)
			w.buf.Write(w.scratch)
			str("entity", m.Entity, true)
			str("fingerprint", m.Fingerprint, true)
			str("location", m.Location, true)
			str("rule", m.Rule, false)
			w.buf.WriteByte('}')
		}
		w.buf.WriteByte(']')
	}
	str("method", s.Method, true)
	str("model", s.Model, true)
	str("outcome", s.Outcome, true)
	if err := obj("params", s.Params); err != nil {
		return true, err
	}
	str("path", s.Path, true)
	if p := s.Principal; p != nil {
		key("principal")
		first = true
		str("auth_method", p.AuthMethod, true)
		str("credential_id", p.CredentialID, true)
		if len(p.Groups) > 0 {
			key("groups")
			w.buf.WriteByte('[')
			for i, g := range p.Groups {
				if i > 0 {
					w.buf.WriteByte(',')
				}
				ok = w.str(g) && ok
			}
			w.buf.WriteByte(']')
		}
		str("iss", p.Issuer, false)
		str("kind", p.Kind, true)
		str("name", p.Name, true)
		str("sub", p.Subject, false)
		w.buf.WriteByte('}')
	}
	str("request_id", s.RequestID, true)
	str("request_sha256", s.RequestSHA256, true)
	str("response_sha256", s.ResponseSHA256, true)
	str("route", s.Route, true)
	num("status", int64(s.Status), true)
	key("time")
	w.buf.Write(s.Time)
	num("upstream_ns", s.Upstream, true)
	num("v", int64(s.V), false)
	w.buf.WriteByte('}')
	return ok, nil
}

// str writes v as a JSON string the way encoding/json does without HTML
// escaping; it reports false for invalid UTF-8.
func (w *encWriter) str(v string) bool {
	const hex = "0123456789abcdef"
	b := &w.buf
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b.WriteString(v[start:i])
			switch c {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if r == '\u2028' || r == '\u2029' {
			b.WriteString(v[start:i])
			b.WriteString(`\u202`)
			b.WriteByte(hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b.WriteString(v[start:])
	b.WriteByte('"')
	return true
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
