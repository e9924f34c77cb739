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
var encoders = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 2048)} }}

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
	w.ok = true
	b := w.entry(w.buf[:0], e, t)
	if cap(b) <= 64<<10 {
		w.buf = b[:0] // keep the grown buffer, not an outsized one
	}
	if !w.ok {
		return nil, false, nil
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out, true, nil
}

// encoder appends canonical JSON to a byte slice its methods take and
// return: the slice lives in registers and on the stack while an entry
// is encoded, so appending costs no GC write barrier (storing it in the
// pooled encoder at every append did, a sixth of the encoding's CPU
// while the GC marks). ok turns false at the first value the fast path
// does not handle; what was written is then discarded. keys is scratch
// for sorting map keys (a stack: a nested map sorts its keys after its
// parent's). first: no field written yet in the current object.
type encoder struct {
	buf   []byte
	keys  []string
	ok    bool
	first bool
}

// field appends the separator and the quoted name of the next field of
// the current object; name must need no escaping.
func (w *encoder) field(b []byte, name string) []byte {
	if w.first {
		w.first = false
		b = append(b, '"')
	} else {
		b = append(b, ',', '"')
	}
	b = append(b, name...)
	return append(b, '"', ':')
}

func (w *encoder) strField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return w.str(w.field(b, name), v)
}

func (w *encoder) intField(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(w.field(b, name), v, 10)
}

// entry appends e with its time t (UTC). The field order is the bytewise
// order of the JSON names: keep it when adding a field.
func (w *encoder) entry(b []byte, e *Entry, t time.Time) []byte {
	b = append(b, '{')
	w.first = true
	b = w.strField(b, "approval_id", e.ApprovalID)
	b = w.intField(b, "bytes_in", e.BytesIn)
	b = w.intField(b, "bytes_out", e.BytesOut)
	if d := e.Decision; d != nil {
		b = w.field(b, "decision")
		b = append(b, `{"action":`...)
		b = w.str(b, d.Action)
		b = w.strField(b, "policy_version", d.PolicyVersion)
		b = w.strField(b, "reason", d.Reason)
		b = w.strField(b, "rule", d.Rule)
		b = append(b, '}')
	}
	if len(e.Details) > 0 {
		b = w.object(w.field(b, "details"), e.Details, 1)
	}
	b = w.intField(b, "gateway_ns", int64(e.Gateway))
	b = w.strField(b, "grant_id", e.GrantID)
	b = w.str(w.field(b, "id"), e.ID)
	b = w.strField(b, "instance", e.Instance)
	b = w.str(w.field(b, "kind"), e.Kind)
	if len(e.Masking) > 0 {
		b = append(w.field(b, "masking"), '[')
		for i := range e.Masking {
			m := &e.Masking[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"count":`...)
			b = strconv.AppendInt(b, int64(m.Count), 10)
			b = w.strField(b, "entity", m.Entity)
			b = w.strField(b, "fingerprint", m.Fingerprint)
			b = w.strField(b, "location", m.Location)
			b = append(b, `,"rule":`...)
			b = w.str(b, m.Rule)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = w.strField(b, "method", e.Method)
	b = w.strField(b, "model", e.Model)
	b = w.strField(b, "outcome", e.Outcome)
	if len(e.Params) > 0 {
		b = w.object(w.field(b, "params"), e.Params, 1)
	}
	b = w.strField(b, "path", e.Path)
	if p := e.Principal; p != nil {
		b = w.principal(w.field(b, "principal"), p)
	}
	b = w.strField(b, "request_id", e.RequestID)
	b = w.strField(b, "request_sha256", e.RequestSHA256)
	b = w.strField(b, "response_sha256", e.ResponseSHA256)
	b = w.strField(b, "route", e.Route)
	b = w.intField(b, "status", int64(e.Status))
	b = append(w.field(b, "time"), '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = w.intField(b, "upstream_ns", int64(e.Upstream))
	b = strconv.AppendInt(w.field(b, "v"), int64(e.V), 10)
	return append(b, '}')
}

// principal appends what recordPrincipal keeps of p, as principalRecord
// encodes it.
func (w *encoder) principal(b []byte, p *identity.Principal) []byte {
	b = append(b, '{')
	w.first = true
	b = w.strField(b, "auth_method", p.AuthMethod)
	b = w.strField(b, "credential_id", p.CredentialID)
	if len(p.Groups) > 0 {
		b = w.strings(w.field(b, "groups"), p.Groups)
	}
	b = w.str(w.field(b, "iss"), p.Issuer)
	b = w.strField(b, "kind", string(p.Kind))
	b = w.strField(b, "name", p.Name)
	b = w.str(w.field(b, "sub"), p.Subject)
	w.first = false
	return append(b, '}')
}

// object appends m as encoding/json does: keys sorted bytewise.
func (w *encoder) object(b []byte, m map[string]any, depth int) []byte {
	return encodeMap(w, b, m, func(b []byte, v any) []byte { return w.value(b, v, depth+1) })
}

// stringMap appends m as encoding/json does.
func (w *encoder) stringMap(b []byte, m map[string]string) []byte {
	return encodeMap(w, b, m, w.str)
}

// encodeMap appends m as encoding/json does (null for nil, keys sorted
// bytewise), each value by val. The keys are sorted in w's pooled
// scratch, which a nested map extends past this map's keys.
func encodeMap[V any](w *encoder, b []byte, m map[string]V, val func([]byte, V) []byte) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	start := len(w.keys)
	for k := range m {
		w.keys = append(w.keys, k)
	}
	keys := w.keys[start:]
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(w.str(b, k), ':')
		b = val(b, m[k])
	}
	clear(keys) // the pooled scratch keeps no caller's strings
	w.keys = w.keys[:start]
	return append(b, '}')
}

func (w *encoder) strings(b []byte, xs []string) []byte {
	if xs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = w.str(b, s)
	}
	return append(b, ']')
}

// value appends one value of Params or Details as encoding/json does,
// or clears w.ok for one it does not handle.
func (w *encoder) value(b []byte, v any, depth int) []byte {
	if depth > maxPlainDepth {
		w.ok = false
		return b
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return w.str(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case float64:
		return w.float(b, x, 64)
	case float32:
		return w.float(b, float64(x), 32)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case int32:
		return strconv.AppendInt(b, int64(x), 10)
	case uint:
		return strconv.AppendUint(b, uint64(x), 10)
	case uint64:
		return strconv.AppendUint(b, x, 10)
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10)
	case json.Number:
		s := string(x)
		if s == "" {
			s = "0" // encoding/json's zero Number
		}
		if !ValidNumber(s) {
			w.ok = false // the reference reports the error
			return b
		}
		return append(b, s...)
	case []string:
		return w.strings(b, x)
	case map[string]any:
		return w.object(b, x, depth)
	case map[string]string:
		return w.stringMap(b, x)
	case []any:
		if x == nil {
			return append(b, "null"...)
		}
		b = append(b, '[')
		for i, y := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = w.value(b, y, depth+1)
		}
		return append(b, ']')
	}
	w.ok = false
	return b
}

// float appends f as encoding/json does (ES6 number formatting); a
// non-finite f, which encoding/json refuses, is left to the reference.
func (w *encoder) float(b []byte, f float64, bits int) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		w.ok = false
		return b
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 is written e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// ValidNumber is encoding/json's check of a json.Number's text (the JSON
// number grammar, RFC 8259 section 6). The export's encoder uses it too.
func ValidNumber(s string) bool {
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

// str appends v as a JSON string the way encoding/json does without
// HTML escaping; invalid UTF-8 clears w.ok.
func (w *encoder) str(b []byte, v string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(v); {
		// Eight bytes at a time while none needs a look (decision 049):
		// they are copied as they are, as the byte loop below would.
		if strWords && i+8 <= len(v) && plain8(v[i:i+8]) {
			i += 8
			continue
		}
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
			return b
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
	return append(b, '"')
}

// strWords is cleared only by BenchmarkStr, to time the byte loop alone.
var strWords = true

// plain8 reports whether the 8 bytes of s (len(s) == 8) are all ASCII
// that a JSON string holds as it is: none is a control character (below
// 0x20), '"', '\\' or a byte of a multi-byte sequence (0x80 and above).
// A false answer only sends the bytes to str's byte loop.
func plain8(s string) bool {
	_ = s[7]
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// A byte's high bit is set in (y - ones) &^ y when that byte of y is
	// zero (or, past a zero byte, from its borrow: a set bit means some
	// byte matched). Below 0x20: x - 0x20 per byte, the same test.
	ctl := (x - 0x20*ones) &^ x
	quote := x ^ '"'*ones
	quote = (quote - ones) &^ quote
	bslash := x ^ '\\'*ones
	bslash = (bslash - ones) &^ bslash
	return (x|ctl|quote|bslash)&highs == 0
}
