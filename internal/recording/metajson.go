package recording

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendMeta appends the canonical JSON of m — byte for byte what
// encoding/json (HTML escaping off) writes for Meta, which defined the
// canonical form and still checks it in tests (TestAppendMetaMatchesJSON,
// FuzzAppendMeta) — without reflection: the meta section was ~11% of a
// recording's CPU (decision 028). ok is false for what only encoding/json
// reports correctly (a year outside 0–9999, which it refuses).
func appendMeta(dst []byte, m *Meta) (b []byte, ok bool) {
	t := m.StartedAt.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, false
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(m.V), 10)
	dst = append(dst, `,"id":`...)
	dst = appendJSONString(dst, m.ID)
	dst = append(dst, `,"request_id":`...)
	dst = appendJSONString(dst, m.RequestID)
	if m.Principal != "" {
		dst = append(dst, `,"principal":`...)
		dst = appendJSONString(dst, m.Principal)
	}
	if m.Route != "" {
		dst = append(dst, `,"route":`...)
		dst = appendJSONString(dst, m.Route)
	}
	dst = append(dst, `,"level":`...)
	dst = appendJSONString(dst, string(m.Level))
	dst = append(dst, `,"started_at":"`...)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","duration_ns":`...)
	dst = strconv.AppendInt(dst, m.DurationNS, 10)

	rq := &m.Request
	dst = append(dst, `,"request":{"method":`...)
	dst = appendJSONString(dst, rq.Method)
	if rq.Scheme != "" {
		dst = append(dst, `,"scheme":`...)
		dst = appendJSONString(dst, rq.Scheme)
	}
	if rq.Host != "" {
		dst = append(dst, `,"host":`...)
		dst = appendJSONString(dst, rq.Host)
	}
	dst = append(dst, `,"path":`...)
	dst = appendJSONString(dst, rq.Path)
	if rq.Query != "" {
		dst = append(dst, `,"query":`...)
		dst = appendJSONString(dst, rq.Query)
	}
	dst = append(dst, `,"header":`...)
	dst = appendFields(dst, rq.Header)
	dst = append(dst, `,"body_size":`...)
	dst = strconv.AppendInt(dst, rq.BodySize, 10)
	dst = append(dst, `,"body":`...)
	dst = appendJSONString(dst, string(rq.Body))

	rs := &m.Response
	dst = append(dst, `},"response":{"status":`...)
	dst = strconv.AppendInt(dst, int64(rs.Status), 10)
	dst = append(dst, `,"header":`...)
	dst = appendFields(dst, rs.Header)
	dst = append(dst, `,"header_at_ns":`...)
	dst = strconv.AppendInt(dst, rs.HeaderAtNS, 10)
	dst = append(dst, `,"body_size":`...)
	dst = strconv.AppendInt(dst, rs.BodySize, 10)
	dst = append(dst, `,"body":`...)
	dst = appendJSONString(dst, string(rs.Body))
	dst = append(dst, `,"sse":`...)
	dst = strconv.AppendBool(dst, rs.SSE)
	dst = append(dst, `,"events":`...)
	dst = strconv.AppendInt(dst, int64(rs.Events), 10)
	dst = append(dst, `,"marks":`...)
	dst = strconv.AppendInt(dst, int64(rs.Marks), 10)
	return append(dst, "}}"...), true
}

// metaSizeHint is about the size of m's JSON when nothing needs escaping:
// the fixed part and the strings.
func metaSizeHint(m *Meta) int {
	n := 450 + len(m.ID) + len(m.RequestID) + len(m.Principal) + len(m.Route) + len(m.Request.Method) +
		len(m.Request.Scheme) + len(m.Request.Host) + len(m.Request.Path) + len(m.Request.Query)
	for _, hs := range [2][]Field{m.Request.Header, m.Response.Header} {
		for _, f := range hs {
			n += 22 + len(f.Name) + len(f.Value)
		}
	}
	return n
}

// appendFields appends fs as a JSON array ([] when empty or nil, as
// MarshalMeta normalises it).
func appendFields(dst []byte, fs []Field) []byte {
	dst = append(dst, '[')
	for i, f := range fs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendJSONString(dst, f.Name)
		dst = append(dst, `,"value":`...)
		dst = appendJSONString(dst, f.Value)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendJSONString appends s as a JSON string. Printable ASCII other
// than '"' and '\\' is copied as is; anything else (control characters,
// non-ASCII, which encoding/json may escape or replace) goes through
// encoding/json so the bytes stay exactly its own.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return appendJSONStringSlow(dst, s)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendJSONStringSlow(dst []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
