package recording

import (
	"bytes"
	"testing"
	"time"
)

// sampleMeta is a meta with every field set.
func sampleMeta() Meta {
	return Meta{
		V: FormatVersion, ID: "0190abcdef0123456789abcdef0", RequestID: "req_01", Principal: "alice", Route: "openai",
		Level: LevelFull, StartedAt: time.Date(2026, 12, 1, 2, 3, 4, 5, time.UTC), DurationNS: 123456789,
		Request: RequestMeta{
			Method: "POST", Scheme: "https", Host: "gw.example", Path: "/v1/chat/completions", Query: "a=1&key=[REDACTED]",
			Header: []Field{{"Accept", "*/*"}, {"Content-Type", "application/json"}}, BodySize: 42, Body: BodyRedacted,
		},
		Response: ResponseMeta{
			Status: 200, Header: []Field{{"Content-Type", "text/event-stream"}}, HeaderAtNS: 1000, BodySize: 900,
			Body: BodyFull, SSE: true, Events: 3, Marks: 4,
		},
	}
}

// TestAppendMetaMatchesJSON: the hand-written encoder writes exactly what
// encoding/json writes (the canonical form's definition), for the values
// where the two could part: escapes, non-ASCII, invalid UTF-8, omitted
// empty fields, nil and empty headers, zero and far times, extremes.
func TestAppendMetaMatchesJSON(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Meta)
	}{
		{"full", func(*Meta) {}},
		{"zero", func(m *Meta) { *m = Meta{} }},
		{"omitempty fields empty", func(m *Meta) {
			m.Principal, m.Route, m.Request.Scheme, m.Request.Host, m.Request.Query = "", "", "", "", ""
		}},
		{"nil headers", func(m *Meta) { m.Request.Header, m.Response.Header = nil, nil }},
		{"empty headers", func(m *Meta) { m.Request.Header, m.Response.Header = []Field{}, []Field{} }},
		{"quotes and backslashes", func(m *Meta) { m.Principal = `a"b\c`; m.Request.Path = `/x\"y` }},
		{"control characters", func(m *Meta) {
			m.Request.Header = []Field{{"X-A", "a\tb\nc\rd\x00e\x1f\bf\fg\x7f"}}
		}},
		{"html characters", func(m *Meta) { m.Request.Query = "a=<b>&c=d'e" }},
		{"non-ascii", func(m *Meta) { m.Principal = "zoë 東京 \u2028 \u2029 😀" }},
		{"invalid utf-8", func(m *Meta) { m.Route = "a\xffb\xc3"; m.Request.Header = []Field{{"X-\xfe", "\xed\xa0\x80"}} }},
		{"non-utc time", func(m *Meta) { m.StartedAt = time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600)) }},
		{"whole-second time", func(m *Meta) { m.StartedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }},
		{"zero time", func(m *Meta) { m.StartedAt = time.Time{} }},
		{"year 9999", func(m *Meta) { m.StartedAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) }},
		{"negative numbers", func(m *Meta) {
			m.V, m.DurationNS, m.Request.BodySize, m.Response.Status, m.Response.Events = -1, -2, -3, -4, -5
		}},
		{"extreme numbers", func(m *Meta) {
			m.DurationNS, m.Response.BodySize, m.Response.HeaderAtNS = 1<<63-1, -1<<63, 1<<62
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := sampleMeta()
			tc.edit(&m)
			want, err := marshalMetaJSON(&m)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := appendMeta(nil, &m)
			if !ok {
				t.Fatal("appendMeta declined")
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("appendMeta:\n%s\nencoding/json:\n%s", got, want)
			}
			if got2, err := MarshalMeta(&m); err != nil || !bytes.Equal(got2, want) {
				t.Fatalf("MarshalMeta = %s, %v", got2, err)
			}
		})
	}
}

// TestMarshalMetaOutOfRangeYear: a year encoding/json refuses is refused
// as before (appendMeta leaves it to encoding/json).
func TestMarshalMetaOutOfRangeYear(t *testing.T) {
	for _, y := range []int{-1, 10000} {
		m := sampleMeta()
		m.StartedAt = time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		if _, ok := appendMeta(nil, &m); ok {
			t.Errorf("year %d: appendMeta accepted it", y)
		}
		if _, err := MarshalMeta(&m); err == nil {
			t.Errorf("year %d: MarshalMeta succeeded", y)
		}
	}
}

// FuzzAppendMeta: for any strings and numbers, appendMeta and
// encoding/json agree.
func FuzzAppendMeta(f *testing.F) {
	f.Add("alice", "openai", "/v1/x", "a=1", "Content-Type", "application/json", int64(5), int64(1700000000123456789))
	f.Add("\x00\"\\", "\xff", "\u2028", "<>&", "X-\x7f", "é\xc3", int64(-1), int64(0))
	f.Fuzz(func(t *testing.T, principal, route, path, query, hname, hval string, n, ns int64) {
		m := sampleMeta()
		m.Principal, m.Route, m.Request.Path, m.Request.Query = principal, route, path, query
		m.Request.Header = []Field{{hname, hval}}
		m.Response.Header = []Field{{hval, hname}}
		m.DurationNS, m.Response.BodySize = n, -n
		m.StartedAt = time.Unix(0, ns)
		want, err := marshalMetaJSON(&m)
		got, ok := appendMeta(nil, &m)
		if err != nil {
			if ok {
				t.Fatalf("encoding/json refused (%v), appendMeta wrote %s", err, got)
			}
			return
		}
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("appendMeta (ok=%v):\n%s\nencoding/json:\n%s", ok, got, want)
		}
	})
}

// BenchmarkMarshalMeta: the meta of a chat call, by appendMeta and by
// encoding/json (its definition).
func BenchmarkMarshalMeta(b *testing.B) {
	m := sampleMeta()
	b.Run("appendMeta", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			MarshalMeta(&m)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			marshalMetaJSON(&m)
		}
	})
}
