package recording

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sampleRecording is a small streamed chat, as the gateway records it.
func sampleRecording() *Recording {
	body := "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n" +
		"data: [DONE]\n\n"
	e1 := int64(len("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"))
	e2 := e1 + int64(len("data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"))
	return &Recording{
		Meta: Meta{
			V: FormatVersion, ID: "0193a4f5c2e1a9f8e7d6c5b4a39210000", RequestID: "req-1", Principal: "alice",
			Route: "openai", Level: LevelFull, StartedAt: time.Date(2026, 5, 6, 7, 8, 9, 10, time.UTC),
			DurationNS: 250_000_000,
			Request: RequestMeta{
				Method: "POST", Scheme: "http", Host: "127.0.0.1:8080", Path: "/v1/chat/completions",
				Header:   []Field{{"Accept", "text/event-stream"}, {"Content-Type", "application/json"}},
				BodySize: 61, Body: BodyRedacted,
			},
			Response: ResponseMeta{
				Status: 200, Header: []Field{{"Content-Type", "text/event-stream"}, {"X-Request-Id", "req-1"}},
				HeaderAtNS: 12_000_000, BodySize: int64(len(body)), Body: BodyFull, SSE: true, Events: 3, Marks: 3,
			},
		},
		RequestBody:  []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi [REDACTED:EMAIL]"}]}`),
		Marks:        []Mark{{e1, 20_000_000}, {e2, 120_000_000}, {int64(len(body)), 240_000_000}},
		ResponseBody: []byte(body),
	}
}

// golden is the canonical form of sampleRecording. It must never change:
// every digest already in an audit log was computed over this layout.
const golden = "warden-recording v1\nmeta 644\n{\"v\":1,\"id\":\"0193a4f5c2e1a9f8e7d6c5b4a39210000\",\"request_id\":\"req-1\",\"principal\":\"alice\",\"route\":\"openai\",\"level\":\"full\",\"started_at\":\"2026-05-06T07:08:09.00000001Z\",\"duration_ns\":250000000,\"request\":{\"method\":\"POST\",\"scheme\":\"http\",\"host\":\"127.0.0.1:8080\",\"path\":\"/v1/chat/completions\",\"header\":[{\"name\":\"Accept\",\"value\":\"text/event-stream\"},{\"name\":\"Content-Type\",\"value\":\"application/json\"}],\"body_size\":61,\"body\":\"redacted\"},\"response\":{\"status\":200,\"header\":[{\"name\":\"Content-Type\",\"value\":\"text/event-stream\"},{\"name\":\"X-Request-Id\",\"value\":\"req-1\"}],\"header_at_ns\":12000000,\"body_size\":111,\"body\":\"full\",\"sse\":true,\"events\":3,\"marks\":3}}\nrequest-body 88\n{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi [REDACTED:EMAIL]\"}]}\ntiming 39\n49 20000000\n97 120000000\n111 240000000\n\nresponse-body 111\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\n\n"

const goldenDigest = "sha256:81e64f5ae2a58f02d549391628d9da74625e5009d98f3f605a29cceac48beaf0"

func encodeBytes(t *testing.T, rec *Recording) ([]byte, Digest) {
	t.Helper()
	var buf bytes.Buffer
	d, err := rec.Encode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), d
}

func TestCanonicalGolden(t *testing.T) {
	b, d := encodeBytes(t, sampleRecording())
	if string(b) != golden {
		t.Errorf("canonical form\n%q\nwant\n%q", b, golden)
	}
	if got := d.String(); got != goldenDigest {
		t.Errorf("digest %s, want %s (the canonical form changed: that breaks every recorded digest)", got, goldenDigest)
	}
	again, d2 := encodeBytes(t, sampleRecording())
	if !bytes.Equal(b, again) || d != d2 {
		t.Error("encoding is not deterministic")
	}
}

func TestCanonicalRoundTrip(t *testing.T) {
	in := sampleRecording()
	b, d := encodeBytes(t, in)
	out, d2, err := ReadAll(bytes.NewReader(b), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if d != d2 {
		t.Errorf("ReadAll digest %s, Encode digest %s", d2, d)
	}
	b2, _ := encodeBytes(t, out)
	if !bytes.Equal(b, b2) {
		t.Error("ReadAll then Encode does not reproduce the bytes")
	}
	evs := out.Events()
	if len(evs) != 3 || string(evs[1].Data) != "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n" || evs[2].At != 240*time.Millisecond {
		t.Errorf("events %+v", evs)
	}
}

// TestCanonicalEveryByteMangled: flipping any single byte either makes the
// form unparseable or yields a different recording whose own encoding is
// exactly the mangled bytes — a parser never accepts two encodings of one
// recording, so the digest identifies the content.
func TestCanonicalEveryByteMangled(t *testing.T) {
	b, d := encodeBytes(t, sampleRecording())
	accepted := 0
	for i := range b {
		for _, x := range []byte{0x01, 0x20, 0x80} {
			m := bytes.Clone(b)
			m[i] ^= x
			rec, md, err := ReadAll(bytes.NewReader(m), 1<<20)
			if err != nil {
				continue
			}
			accepted++
			if md == d {
				t.Fatalf("byte %d ^ %#x: same digest", i, x)
			}
			again, _ := encodeBytes(t, rec)
			if !bytes.Equal(again, m) {
				t.Fatalf("byte %d ^ %#x: accepted a non-canonical form", i, x)
			}
		}
	}
	if accepted == 0 {
		t.Error("no mangling was accepted: body bytes should be (they are content)")
	}
}

func TestCanonicalTruncatedOrExtended(t *testing.T) {
	b, _ := encodeBytes(t, sampleRecording())
	for n := 0; n < len(b); n++ {
		if _, _, err := ReadAll(bytes.NewReader(b[:n]), 1<<20); err == nil {
			t.Fatalf("truncated to %d of %d bytes: accepted", n, len(b))
		}
	}
	for _, tail := range []string{"x", "\n", "meta 0\n\n"} {
		if _, _, err := ReadAll(bytes.NewReader(append(bytes.Clone(b), tail...)), 1<<20); err == nil {
			t.Errorf("extended by %q: accepted", tail)
		}
	}
}

func TestCanonicalRejects(t *testing.T) {
	good := sampleRecording()
	cases := []struct {
		name string
		edit func(r *Recording)
	}{
		{"marks out of order", func(r *Recording) { r.Marks[0], r.Marks[1] = r.Marks[1], r.Marks[0] }},
		{"time going back", func(r *Recording) { r.Marks[1].AtNS = 1 }},
		{"marks short of the body", func(r *Recording) { r.Marks = r.Marks[:2]; r.Meta.Response.Marks = 2; r.Meta.Response.Events = 2 }},
		{"mark count mismatch", func(r *Recording) { r.Meta.Response.Marks = 4 }},
		{"events without SSE", func(r *Recording) { r.Meta.Response.SSE = false }},
		{"bad version", func(r *Recording) { r.Meta.V = 2 }},
		{"bad id", func(r *Recording) { r.Meta.ID = "UPPER-case-id-123" }},
		{"empty request id", func(r *Recording) { r.Meta.RequestID = "" }},
		{"bad level", func(r *Recording) { r.Meta.Level = "everything" }},
		{"body at metadata level", func(r *Recording) { r.Meta.Level = LevelMetadata }},
		{"unsorted headers", func(r *Recording) {
			r.Meta.Request.Header[0], r.Meta.Request.Header[1] = r.Meta.Request.Header[1], r.Meta.Request.Header[0]
		}},
		{"omitted body with bytes", func(r *Recording) { r.Meta.Request.Body = BodyOmitted }},
		{"response size mismatch", func(r *Recording) { r.Meta.Response.BodySize++ }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := *good
			r.Meta.Request.Header = append([]Field(nil), good.Meta.Request.Header...)
			r.Marks = append([]Mark(nil), good.Marks...)
			tc.edit(&r)
			var buf bytes.Buffer
			if _, err := r.Encode(&buf); err != nil {
				return // refused already when writing
			}
			_, _, err := ReadAll(&buf, 1<<20)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("ReadAll = %v, want a FormatError", err)
			}
		})
	}
}

func TestCanonicalNonCanonicalMeta(t *testing.T) {
	b, _ := encodeBytes(t, sampleRecording())
	// Same meaning, other spelling: a space after a colon, a time zone
	// offset instead of Z, an unknown field.
	for _, tc := range []struct{ from, to string }{
		{`"v":1`, `"v": 1`},
		{`"2026-05-06T07:08:09.00000001Z"`, `"2026-05-06T07:08:09.00000001+00:00"`},
		{`{"v":1,`, `{"x":0,"v":1,`},
	} {
		m := strings.Replace(string(b), tc.from, tc.to, 1)
		n := len(tc.to) - len(tc.from)
		m = strings.Replace(m, "meta 644\n", "meta "+strconv.Itoa(644+n)+"\n", 1)
		if _, _, err := ReadAll(strings.NewReader(m), 1<<20); err == nil {
			t.Errorf("%q → %q: accepted", tc.from, tc.to)
		}
	}
}

func TestDigestString(t *testing.T) {
	_, d := encodeBytes(t, sampleRecording())
	s := d.String()
	back, err := ParseDigest(s)
	if err != nil || back != d {
		t.Fatalf("ParseDigest(%s) = %v, %v", s, back, err)
	}
	for _, bad := range []string{"", "sha256:", strings.ToUpper(s), s[:len(s)-1], "md5:" + s[7:], s + "0"} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
}

func FuzzReader(f *testing.F) {
	var buf bytes.Buffer
	sampleRecording().Encode(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(magic + "meta 2\n{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, d, err := ReadAll(bytes.NewReader(b), 1<<20)
		if err != nil {
			return
		}
		var again bytes.Buffer
		d2, err := rec.Encode(&again)
		if err != nil {
			t.Fatalf("accepted form does not re-encode: %v", err)
		}
		if !bytes.Equal(again.Bytes(), b) || d != d2 {
			t.Fatal("accepted a non-canonical form")
		}
	})
}
