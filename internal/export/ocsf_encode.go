package export

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// A hand-written encoder for the OCSF event structs of ocsf.go. It
// produces exactly the bytes encoding/json does for them (with HTML
// escaping off): the same field order, the same omitempty rules, map
// keys sorted, strings escaped the same way. encoding/json spent about
// 20 µs per event on reflection, compacting the embedded entry and
// buffering; this encoder appends to one presized buffer (decision 020).
// TestEncoderMatchesEncodingJSON and FuzzEncoder compare the two on every
// catalogue kind and on fuzzed entries; a field added to a struct in
// ocsf.go must be added here too, or those tests fail.

// jsonEnc appends JSON to b. The first error sticks.
type jsonEnc struct {
	b   []byte
	err error
}

// key writes a comma when a value precedes it in the current object,
// then "k":. Keys are constant ASCII names that need no escaping.
func (e *jsonEnc) key(k string) {
	e.sep()
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
}

func (e *jsonEnc) str(k, v string) {
	e.key(k)
	e.b = appendJSONString(e.b, v)
}

func (e *jsonEnc) strOmit(k, v string) {
	if v != "" {
		e.str(k, v)
	}
}

func (e *jsonEnc) int(k string, v int64) {
	e.key(k)
	e.b = strconv.AppendInt(e.b, v, 10)
}

func (e *jsonEnc) intOmit(k string, v int64) {
	if v != 0 {
		e.int(k, v)
	}
}

func (e *jsonEnc) boolean(k string, v bool) {
	e.key(k)
	e.b = strconv.AppendBool(e.b, v)
}

func (e *jsonEnc) hash(h tlog.Hash) {
	e.b = append(e.b, '"')
	e.b = base64.StdEncoding.AppendEncode(e.b, h[:])
	e.b = append(e.b, '"')
}

func (e *jsonEnc) open()  { e.b = append(e.b, '{') }
func (e *jsonEnc) close() { e.b = append(e.b, '}') }

// appendEventJSON appends ev as encoding/json would encode it.
func appendEventJSON(b []byte, ev *ocsfEvent) ([]byte, error) {
	e := &jsonEnc{b: b}
	e.open()
	e.int("activity_id", int64(ev.ActivityID))
	e.strOmit("activity_name", ev.ActivityName)
	e.int("category_uid", int64(ev.CategoryUID))
	e.strOmit("category_name", ev.CategoryName)
	e.int("class_uid", int64(ev.ClassUID))
	e.strOmit("class_name", ev.ClassName)
	e.int("type_uid", int64(ev.TypeUID))
	e.strOmit("type_name", ev.TypeName)
	e.int("severity_id", int64(ev.SeverityID))
	e.strOmit("severity", ev.Severity)
	e.int("time", ev.Time)
	e.strOmit("message", ev.Message)
	e.intOmit("status_id", int64(ev.StatusID))
	e.strOmit("status", ev.Status)
	e.strOmit("status_code", ev.StatusCode)
	e.strOmit("status_detail", ev.StatusDetail)
	e.intOmit("duration", ev.Duration)
	e.key("metadata")
	e.metadata(&ev.Metadata)
	if a := ev.Actor; a != nil {
		e.key("actor")
		e.open()
		if a.User != nil {
			e.key("user")
			e.user(a.User)
		}
		if a.IDP != nil {
			e.key("idp")
			e.open()
			e.strOmit("name", a.IDP.Name)
			e.strOmit("protocol_name", a.IDP.ProtocolName)
			e.close()
		}
		e.strOmit("app_name", a.AppName)
		e.close()
	}
	if ev.User != nil {
		e.key("user")
		e.user(ev.User)
	}
	if a := ev.API; a != nil {
		e.key("api")
		e.open()
		e.str("operation", a.Operation)
		if a.Service != nil {
			e.key("service")
			e.service(a.Service)
		}
		if r := a.Request; r != nil {
			e.key("request")
			e.open()
			e.str("uid", r.UID)
			if len(r.Data) > 0 {
				e.key("data")
				e.anyMap(r.Data)
			}
			e.close()
		}
		if r := a.Response; r != nil {
			e.key("response")
			e.open()
			e.intOmit("code", int64(r.Code))
			e.strOmit("error", r.Error)
			e.strOmit("error_message", r.ErrorMessage)
			e.close()
		}
		e.close()
	}
	if r := ev.HTTPRequest; r != nil {
		e.key("http_request")
		e.open()
		e.strOmit("http_method", r.HTTPMethod)
		if r.URL != nil {
			e.key("url")
			e.open()
			e.str("path", r.URL.Path)
			e.close()
		}
		e.strOmit("user_agent", r.UserAgent)
		e.intOmit("length", r.Length)
		e.close()
	}
	if r := ev.HTTPResponse; r != nil {
		e.key("http_response")
		e.open()
		e.int("code", int64(r.Code))
		e.intOmit("length", r.Length)
		e.close()
	}
	if p := ev.SrcEndpoint; p != nil {
		e.key("src_endpoint")
		e.open()
		e.strOmit("ip", p.IP)
		e.strOmit("name", p.Name)
		e.close()
	}
	if ev.Service != nil {
		e.key("service")
		e.service(ev.Service)
	}
	if len(ev.Resources) > 0 {
		e.key("resources")
		e.b = append(e.b, '[')
		for i := range ev.Resources {
			e.sep()
			e.open()
			e.strOmit("type", ev.Resources[i].Type)
			e.strOmit("name", ev.Resources[i].Name)
			e.close()
		}
		e.b = append(e.b, ']')
	}
	if len(ev.Privileges) > 0 {
		e.key("privileges")
		e.strings(ev.Privileges)
	}
	if ev.Entity != nil {
		e.key("entity")
		e.entity(ev.Entity)
	}
	if ev.EntityResult != nil {
		e.key("entity_result")
		e.entity(ev.EntityResult)
	}
	e.strOmit("comment", ev.Comment)
	if ev.App != nil {
		e.key("app")
		e.product(ev.App)
	}
	e.strOmit("log_name", ev.LogName)
	e.strOmit("log_provider", ev.LogProvider)
	if ev.IsRemote != nil {
		e.boolean("is_remote", *ev.IsRemote)
	}
	if d := ev.Device; d != nil {
		e.key("device")
		e.open()
		e.str("name", d.Name)
		e.int("type_id", int64(d.TypeID))
		e.strOmit("type", d.Type)
		e.close()
	}
	e.intOmit("action_id", int64(ev.ActionID))
	e.strOmit("action", ev.Action)
	e.intOmit("disposition_id", int64(ev.DispositionID))
	e.strOmit("disposition", ev.Disposition)
	if p := ev.Policy; p != nil {
		e.key("policy")
		e.open()
		e.strOmit("name", p.Name)
		e.strOmit("uid", p.UID)
		e.strOmit("version", p.Version)
		e.strOmit("desc", p.Desc)
		if p.IsApplied {
			e.boolean("is_applied", true)
		}
		e.close()
	}
	if ev.IsAlert != nil {
		e.boolean("is_alert", *ev.IsAlert)
	}
	if ev.Unmapped != nil {
		e.key("unmapped")
		e.open()
		e.key("warden")
		e.warden(&ev.Unmapped.Warden)
		e.close()
	}
	e.close()
	return e.b, e.err
}

// sep writes the comma between two members of an object or array: after
// anything but the opening bracket.
func (e *jsonEnc) sep() {
	if n := len(e.b); n > 0 {
		if c := e.b[n-1]; c != '{' && c != '[' {
			e.b = append(e.b, ',')
		}
	}
}

func (e *jsonEnc) strings(ss []string) {
	e.b = append(e.b, '[')
	for i, s := range ss {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = appendJSONString(e.b, s)
	}
	e.b = append(e.b, ']')
}

func (e *jsonEnc) metadata(m *metadata) {
	e.open()
	e.str("version", m.Version)
	e.key("product")
	e.product(&m.Product)
	e.str("uid", m.UID)
	e.strOmit("original_event_uid", m.OriginalEventUID)
	e.strOmit("correlation_uid", m.CorrelationUID)
	e.strOmit("event_code", m.EventCode)
	e.strOmit("log_name", m.LogName)
	e.strOmit("log_provider", m.LogProvider)
	e.intOmit("logged_time", m.LoggedTime)
	if len(m.Profiles) > 0 {
		e.key("profiles")
		e.strings(m.Profiles)
	}
	e.close()
}

func (e *jsonEnc) product(p *product) {
	e.open()
	e.str("name", p.Name)
	e.strOmit("vendor_name", p.VendorName)
	e.strOmit("version", p.Version)
	e.strOmit("uid", p.UID)
	e.close()
}

func (e *jsonEnc) user(u *user) {
	e.open()
	e.strOmit("uid", u.UID)
	e.strOmit("name", u.Name)
	e.strOmit("domain", u.Domain)
	e.intOmit("type_id", int64(u.TypeID))
	e.strOmit("type", u.Type)
	e.strOmit("credential_uid", u.CredentialUID)
	if len(u.Groups) > 0 {
		e.key("groups")
		e.b = append(e.b, '[')
		for i := range u.Groups {
			e.sep()
			e.open()
			e.str("name", u.Groups[i].Name)
			e.close()
		}
		e.b = append(e.b, ']')
	}
	e.close()
}

func (e *jsonEnc) service(s *service) {
	e.open()
	e.strOmit("name", s.Name)
	e.strOmit("uid", s.UID)
	e.close()
}

func (e *jsonEnc) entity(m *managedEntity) {
	e.open()
	e.strOmit("uid", m.UID)
	e.strOmit("name", m.Name)
	e.strOmit("type", m.Type)
	e.intOmit("type_id", int64(m.TypeID))
	e.strOmit("version", m.Version)
	if len(m.Data) > 0 {
		e.key("data")
		e.anyMap(m.Data)
	}
	e.close()
}

func (e *jsonEnc) warden(w *wardenFields) {
	e.open()
	e.int("mapping", int64(w.Mapping))
	e.str("origin", w.Origin)
	if w.Seq != nil {
		e.int("seq", *w.Seq)
	}
	if w.LeafHash != nil {
		e.key("leaf_hash")
		e.hash(*w.LeafHash)
	}
	e.str("kind", w.Kind)
	e.strOmit("request_id", w.RequestID)
	e.strOmit("instance", w.Instance)
	e.strOmit("route", w.Route)
	e.strOmit("model", w.Model)
	e.strOmit("outcome", w.Outcome)
	e.strOmit("request_sha256", w.RequestSHA256)
	e.strOmit("response_sha256", w.ResponseSHA256)
	e.strOmit("recording_digest", w.Recording)
	e.intOmit("bytes_in", w.BytesIn)
	e.intOmit("bytes_out", w.BytesOut)
	e.intOmit("upstream_ns", w.UpstreamNS)
	e.intOmit("gateway_ns", w.GatewayNS)
	e.strOmit("approval_id", w.ApprovalID)
	e.strOmit("grant_id", w.GrantID)
	e.strOmit("issuer", w.Issuer)
	e.strOmit("auth_method", w.AuthMethod)
	e.strOmit("decision", w.Decision)
	if len(w.MaskedEntities) > 0 {
		e.key("masked_entities")
		e.open()
		var buf [16]string
		for _, k := range sortedKeysIn(buf[:0], w.MaskedEntities) {
			e.sep()
			e.b = appendJSONString(e.b, k)
			e.b = append(e.b, ':')
			e.b = strconv.AppendInt(e.b, int64(w.MaskedEntities[k]), 10)
		}
		e.close()
	}
	if len(w.Masking) > 0 {
		e.key("masking")
		e.b = append(e.b, '[')
		for i := range w.Masking {
			a := &w.Masking[i]
			e.sep()
			e.open()
			e.str("rule", a.Rule)
			e.strOmit("entity", a.Entity)
			e.strOmit("location", a.Location)
			e.int("count", int64(a.Count))
			e.strOmit("fingerprint", a.Fingerprint)
			e.close()
		}
		e.b = append(e.b, ']')
	}
	if len(w.Details) > 0 {
		e.key("details")
		e.anyMap(w.Details)
	}
	if w.ParamsDropped {
		e.boolean("params_dropped", true)
	}
	if c := w.Checkpoint; c != nil {
		e.key("checkpoint")
		e.open()
		e.int("size", c.Size)
		e.key("hash")
		e.hash(c.Hash)
		e.str("time", c.Time)
		e.str("note", c.Note)
		e.close()
	}
	if len(w.Entry) > 0 {
		e.key("entry")
		e.raw(w.Entry)
	}
	if len(w.Frontier) > 0 {
		e.key("frontier")
		e.frontier(w.Frontier)
	}
	e.close()
}

func (e *jsonEnc) frontier(fr []tlog.Hash) {
	e.b = append(e.b, '[')
	for i, h := range fr {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.hash(h)
	}
	e.b = append(e.b, ']')
}

// raw appends an embedded JSON value as encoding/json does a
// json.RawMessage: compacted. Canonical entries are compact already, so
// the common case is a copy after one scan for whitespace outside
// strings; anything else (and invalid JSON, which must fail as it does
// with encoding/json) goes through json.Compact.
func (e *jsonEnc) raw(v []byte) {
	if isCompactJSON(v) {
		e.b = append(e.b, v...)
		return
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		e.fail(err)
		return
	}
	e.b = append(e.b, buf.Bytes()...)
}

func (e *jsonEnc) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// isCompactJSON reports whether v looks like a compact JSON object or
// array: no whitespace outside strings, no control characters inside
// them, brackets and quotes balanced, nothing after the end. It does not
// re-validate the grammar: the entry bytes the mapper embeds were parsed
// by audit.DecodeEntry or produced by audit.Marshal (Mapper.Entry's
// contract), and a second full validation would cost as much as the
// compaction it avoids. Whatever it refuses goes through json.Compact,
// which also rejects invalid JSON.
func isCompactJSON(v []byte) bool {
	if len(v) < 2 || (v[0] != '{' && v[0] != '[') {
		return false
	}
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"':
			for i++; ; i++ {
				if i >= len(v) {
					return false
				}
				c := v[i]
				if c == '\\' {
					i++
					continue
				}
				if c < 0x20 {
					return false
				}
				if c == '"' {
					break
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 || (depth == 0 && i != len(v)-1) {
				return false
			}
		case ' ', '\t', '\n', '\r':
			return false
		}
	}
	return depth == 0
}

// anyMap encodes a map[string]any with sorted keys.
func (e *jsonEnc) anyMap(m map[string]any) {
	e.open()
	var buf [16]string
	for _, k := range sortedKeysIn(buf[:0], m) {
		e.sep()
		e.b = appendJSONString(e.b, k)
		e.b = append(e.b, ':')
		e.any(m[k])
	}
	e.close()
}

// any encodes a value decoded from JSON (strings, json.Number, bools,
// nil, maps, slices); other types go through encoding/json itself.
func (e *jsonEnc) any(v any) {
	switch v := v.(type) {
	case nil:
		e.b = append(e.b, "null"...)
	case string:
		e.b = appendJSONString(e.b, v)
	case bool:
		e.b = strconv.AppendBool(e.b, v)
	case json.Number:
		s := string(v)
		if s == "" {
			s = "0"
		}
		if !audit.ValidNumber(s) {
			e.fail(errors.New("json: invalid number literal " + strconv.Quote(s)))
			return
		}
		e.b = append(e.b, s...)
	case int:
		e.b = strconv.AppendInt(e.b, int64(v), 10)
	case int64:
		e.b = strconv.AppendInt(e.b, v, 10)
	case float64:
		// Go numbers are in the entries the log feeds (entryFed); the
		// exporter meets float64 parameters (temperature, top_p) there.
		if math.IsNaN(v) || math.IsInf(v, 0) {
			e.viaEncodingJSON(v) // its error
			return
		}
		e.b = appendJSONFloat(e.b, v)
	case []string:
		if v == nil {
			e.b = append(e.b, "null"...)
			return
		}
		e.strings(v)
	case map[string]any:
		if v == nil {
			e.b = append(e.b, "null"...)
			return
		}
		e.anyMap(v)
	case []any:
		if v == nil {
			e.b = append(e.b, "null"...)
			return
		}
		e.b = append(e.b, '[')
		for i, x := range v {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.any(x)
		}
		e.b = append(e.b, ']')
	default:
		e.viaEncodingJSON(v)
	}
}

// viaEncodingJSON appends what encoding/json writes for v (HTML escaping
// off), or fails with its error.
func (e *jsonEnc) viaEncodingJSON(v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		e.fail(err)
		return
	}
	e.b = append(e.b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// appendJSONFloat appends finite f as encoding/json writes a float64
// (its floatEncoder): the shortest representation, in exponent form
// below 1e-6 and from 1e21 on, with a one-digit negative exponent
// written without its leading zero (1e-07 becomes 1e-7).
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// sortedKeysIn appends m's keys to keys (a caller's stack buffer for
// the usual small maps) and sorts them.
func sortedKeysIn[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does with HTML
// escaping off (its appendString): ", \ and control characters escaped
// (\b \f \n \r \t short), invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
