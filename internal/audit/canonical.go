package audit

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden/internal/identity"
)

// principalRecord is the audit encoding of a principal: the fields an
// auditor needs, never email, claims or expiry. It is this package's own
// schema (part of the hashed bytes), independent of how identity encodes
// a Principal elsewhere. Its fields are declared in bytewise order of
// their JSON names, as the canonical form writes them.
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
// principal records nothing. (encoder.principal writes the same fields
// without building the record: TestMarshalFastPath holds them together.)
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

// encoders are reused: an encoder's buffer and key scratch never leave
// marshalFast (the entry's bytes are a copy, owned by the caller).
var encoders = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 1024)} }}

// maxPlainDepth bounds the nesting of Params and Details the fast path
// encodes; deeper values take the reference path.
const maxPlainDepth = 32

// marshalFast encodes e canonically in one pass, without reflection: the
// fields of Entry in bytewise order of their JSON names, and Params and
// Details written as encoding/json writes them (keys sorted, no HTML
// escaping). It reports false when the entry holds something whose
// encoding it does not reproduce by construction — a value in Params or
// Details that is not a string, number, boolean, nil, json.Number or a
// map or slice of those; invalid UTF-8 (encoding/json writes \ufffd, the
// reference a literal U+FFFD); a non-finite float; a year outside
// 0..9999 — and the caller then falls back to marshalSlow, the
// reference, which TestMarshalFastPath compares it with.
func marshalFast(e *Entry) ([]byte, bool, error) {
	t := e.Time.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, false, nil
	}
	w := encoders.Get().(*encoder)
	defer encoders.Put(w)
	w.buf, w.ok = w.buf[:0], true
	w.entry(e, t)
	if !w.ok {
		return nil, false, nil
	}
	return slices.Clone(w.buf), true, nil
}

// encoder appends canonical JSON to buf. ok turns false at the first
// value the fast path does not handle; what was written is then
// discarded. keys is scratch for sorting map keys (a stack: a nested map
// sorts its keys after its parent's).
type encoder struct {
	buf   []byte
	keys  []string
	ok    bool
	first bool // no field written yet in the current object
}

// field writes the separator and the quoted name of the next field of
// the current object; name must need no escaping.
func (w *encoder) field(name string) {
	if w.first {
		w.first = false
		w.buf = append(w.buf, '"')
	} else {
		w.buf = append(w.buf, ',', '"')
	}
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '"', ':')
}

func (w *encoder) strField(name, v string) {
	if v != "" {
		w.field(name)
		w.str(v)
	}
}

func (w *encoder) intField(name string, v int64) {
	if v != 0 {
		w.field(name)
		w.buf = strconv.AppendInt(w.buf, v, 10)
	}
}

// entry writes e with its time t (UTC). The field order is the bytewise
// order of the JSON names: keep it when adding a field.
func (w *encoder) entry(e *Entry, t time.Time) {
	w.buf = append(w.buf, '{')
	w.first = true
	w.strField("approval_id", e.ApprovalID)
	w.intField("bytes_in", e.BytesIn)
	w.intField("bytes_out", e.BytesOut)
	if d := e.Decision; d != nil {
		w.field("decision")
		w.buf = append(w.buf, `{"action":`...)
		w.str(d.Action)
		w.strField("policy_version", d.PolicyVersion)
		w.strField("reason", d.Reason)
		w.strField("rule", d.Rule)
		w.buf = append(w.buf, '}')
	}
	if len(e.Details) > 0 {
		w.field("details")
		w.object(e.Details, 1)
	}
	w.intField("gateway_ns", int64(e.Gateway))
	w.strField("grant_id", e.GrantID)
	w.field("id")
	w.str(e.ID)
	w.strField("instance", e.Instance)
	w.field("kind")
	w.str(e.Kind)
	if len(e.Masking) > 0 {
		w.field("masking")
		w.buf = append(w.buf, '[')
		for i := range e.Masking {
			m := &e.Masking[i]
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = append(w.buf, `{"count":`...)
			w.buf = strconv.AppendInt(w.buf, int64(m.Count), 10)
			w.strField("entity", m.Entity)
			w.strField("fingerprint", m.Fingerprint)
			w.strField("location", m.Location)
			w.buf = append(w.buf, `,"rule":`...)
			w.str(m.Rule)
			w.buf = append(w.buf, '}')
		}
		w.buf = append(w.buf, ']')
	}
	w.strField("method", e.Method)
	w.strField("model", e.Model)
	w.strField("outcome", e.Outcome)
	if len(e.Params) > 0 {
		w.field("params")
		w.object(e.Params, 1)
	}
	w.strField("path", e.Path)
	if p := e.Principal; p != nil {
		w.field("principal")
		w.principal(p)
	}
	w.strField("request_id", e.RequestID)
	w.strField("request_sha256", e.RequestSHA256)
	w.strField("response_sha256", e.ResponseSHA256)
	w.strField("route", e.Route)
	w.intField("status", int64(e.Status))
	w.field("time")
	w.buf = append(w.buf, '"')
	w.buf = t.AppendFormat(w.buf, time.RFC3339Nano)
	w.buf = append(w.buf, '"')
	w.intField("upstream_ns", int64(e.Upstream))
	w.field("v")
	w.buf = strconv.AppendInt(w.buf, int64(e.V), 10)
	w.buf = append(w.buf, '}')
}

// principal writes what recordPrincipal keeps of p, as principalRecord
// encodes it.
func (w *encoder) principal(p *identity.Principal) {
	w.buf = append(w.buf, '{')
	w.first = true
	w.strField("auth_method", p.AuthMethod)
	w.strField("credential_id", p.CredentialID)
	if len(p.Groups) > 0 {
		w.field("groups")
		w.strings(p.Groups)
	}
	w.field("iss")
	w.str(p.Issuer)
	w.strField("kind", string(p.Kind))
	w.strField("name", p.Name)
	w.field("sub")
	w.str(p.Subject)
	w.buf = append(w.buf, '}')
	w.first = false
}

// object writes m as encoding/json does: keys sorted bytewise.
func (w *encoder) object(m map[string]any, depth int) {
	if m == nil {
		w.buf = append(w.buf, "null"...)
		return
	}
	start := len(w.keys)
	for k := range m {
		w.keys = append(w.keys, k)
	}
	keys := w.keys[start:]
	slices.Sort(keys)
	w.buf = append(w.buf, '{')
	for i, k := range keys {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.str(k)
		w.buf = append(w.buf, ':')
		w.value(m[k], depth+1)
	}
	w.buf = append(w.buf, '}')
	clear(keys) // the pooled scratch keeps no caller's strings
	w.keys = w.keys[:start]
}

// stringMap writes m as encoding/json does.
func (w *encoder) stringMap(m map[string]string) {
	if m == nil {
		w.buf = append(w.buf, "null"...)
		return
	}
	start := len(w.keys)
	for k := range m {
		w.keys = append(w.keys, k)
	}
	keys := w.keys[start:]
	slices.Sort(keys)
	w.buf = append(w.buf, '{')
	for i, k := range keys {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.str(k)
		w.buf = append(w.buf, ':')
		w.str(m[k])
	}
	w.buf = append(w.buf, '}')
	clear(keys)
	w.keys = w.keys[:start]
}

func (w *encoder) strings(xs []string) {
	if xs == nil {
		w.buf = append(w.buf, "null"...)
		return
	}
	w.buf = append(w.buf, '[')
	for i, s := range xs {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.str(s)
	}
	w.buf = append(w.buf, ']')
}

// value writes one value of Params or Details as encoding/json does, or
// clears w.ok for one it does not handle.
func (w *encoder) value(v any, depth int) {
	if depth > maxPlainDepth {
		w.ok = false
		return
	}
	switch x := v.(type) {
	case nil:
		w.buf = append(w.buf, "null"...)
	case string:
		w.str(x)
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
	case float64:
		w.float(x, 64)
	case float32:
		w.float(float64(x), 32)
	case int:
		w.buf = strconv.AppendInt(w.buf, int64(x), 10)
	case int64:
		w.buf = strconv.AppendInt(w.buf, x, 10)
	case int32:
		w.buf = strconv.AppendInt(w.buf, int64(x), 10)
	case uint:
		w.buf = strconv.AppendUint(w.buf, uint64(x), 10)
	case uint64:
		w.buf = strconv.AppendUint(w.buf, x, 10)
	case uint32:
		w.buf = strconv.AppendUint(w.buf, uint64(x), 10)
	case json.Number:
		s := string(x)
		if s == "" {
			s = "0" // encoding/json's zero Number
		}
		if !validNumber(s) {
			w.ok = false // the reference reports the error
			return
		}
		w.buf = append(w.buf, s...)
	case []string:
		w.strings(x)
	case map[string]any:
		w.object(x, depth)
	case map[string]string:
		w.stringMap(x)
	case []any:
		if x == nil {
			w.buf = append(w.buf, "null"...)
			return
		}
		w.buf = append(w.buf, '[')
		for i, y := range x {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.value(y, depth+1)
		}
		w.buf = append(w.buf, ']')
	default:
		w.ok = false
	}
}

// float writes f as encoding/json does (ES6 number formatting); a
// non-finite f, which encoding/json refuses, is left to the reference.
func (w *encoder) float(f float64, bits int) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		w.ok = false
		return
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	w.buf = strconv.AppendFloat(w.buf, f, format, -1, bits)
	if format == 'e' {
		// e-09 is written e-9
		n := len(w.buf)
		if n >= 4 && w.buf[n-4] == 'e' && w.buf[n-3] == '-' && w.buf[n-2] == '0' {
			w.buf[n-2] = w.buf[n-1]
			w.buf = w.buf[:n-1]
		}
	}
}

// validNumber is encoding/json's check of a json.Number's text (the JSON
// number grammar, RFC 8259 section 6).
func validNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	default:
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}

// str writes v as a JSON string the way encoding/json does without HTML
// escaping; invalid UTF-8 clears w.ok.
func (w *encoder) str(v string) {
	const hex = "0123456789abcdef"
	b := append(w.buf, '"')
	start := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, v[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			w.ok = false
			w.buf = b
			return
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, v[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, v[start:]...)
	w.buf = append(b, '"')
}
