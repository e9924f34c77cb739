package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// TestMarshalFastPath checks the sorted-mirror encoding against the
// reference canonicalisation on many varied entries, including strings
// that need escaping, HTML characters, invalid UTF-8, floats, json.Number
// and nested maps.
func TestMarshalFastPath(t *testing.T) {
	strs := []string{"", "a", "<script>&amp;", "line\nbreak\t\"q\"", "\u2028\u2029", "caf\u00e9 \U0001F600", "\x00\x1f", "ü", "\ufffd literal",
		"\b\f\r\x7f", `back\slash \u0041`, "x\u2029y\u2028", `\ufffd`, "\u00e9\u0301\u4e16\u754c", "tab\tand\x01\x02\x1e"}
	nums := []any{0.0, 1.5, -3.0, 1e21, 1e-7, 123456789.0, json.Number("42"), json.Number("1.50"), 7, int64(-9),
		math.Copysign(0, -1), 1e20, 9.999999e-7, 1e-6, 0.1, math.MaxFloat64, math.SmallestNonzeroFloat64, 1 << 53,
		float32(0.1), float32(1e21), float32(1e-7), float32(-2.5), float32(16777216),
		int32(-7), uint(7), uint32(1 << 31), uint64(math.MaxUint64), int64(math.MinInt64), math.MaxInt,
		json.Number(""), json.Number("-0"), json.Number("1e+10"), json.Number("2E-3"), json.Number("0.5e1")}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	var value func(depth int) any
	value = func(depth int) any {
		switch k := r.IntN(7); {
		case k == 0:
			return pick(strs)
		case k == 1:
			return nums[r.IntN(len(nums))]
		case k == 2:
			return r.IntN(2) == 0
		case k == 3:
			return nil
		case k == 4 && depth < 3:
			m := map[string]any{}
			for i := 0; i < r.IntN(4); i++ {
				m[pick(strs)+pick([]string{"z", "a", "B", "_"})] = value(depth + 1)
			}
			return m
		case k == 5 && depth < 3:
			var xs []any
			for i := 0; i < r.IntN(4); i++ {
				xs = append(xs, value(depth+1))
			}
			return xs
		case k == 6 && depth < 3 && r.IntN(3) == 0:
			// the other plain shapes, nil and empty included
			switch r.IntN(6) {
			case 0:
				return map[string]string{pick(strs): pick(strs), pick(strs) + "k": pick(strs)}
			case 1:
				return map[string]any{}
			case 2:
				return map[string]any(nil)
			case 3:
				return []any(nil)
			case 4:
				return []string(nil)
			default:
				return map[string]string(nil)
			}
		default:
			return []string{pick(strs), pick(strs)}
		}
	}
	fastHits := 0
	for i := 0; i < 6000; i++ {
		e := &Entry{
			V: SchemaVersion, Kind: pick([]string{KindRequestAdmitted, KindRequestCompleted, "x.y"}), ID: pick(strs) + "id",
			Time:      time.Unix(int64(r.IntN(2e9)), int64(r.IntN(1e9))).In(time.FixedZone("x", 3600)),
			RequestID: pick(strs), Instance: pick(strs), Route: pick(strs), Method: pick(strs), Path: pick(strs),
			Model: pick(strs), RequestSHA256: pick(strs), ApprovalID: pick(strs), GrantID: pick(strs),
			Status: r.IntN(600), BytesIn: int64(r.IntN(3)), BytesOut: r.Int64(), Upstream: time.Duration(r.IntN(5)),
			Gateway: time.Duration(r.Int64()), ResponseSHA256: pick(strs),
		}
		if r.IntN(2) == 0 {
			e.Principal = &identity.Principal{Issuer: pick(strs), Subject: pick(strs), Kind: identity.Kind(pick(strs)), Name: pick(strs), CredentialID: pick(strs), Groups: []string{pick(strs)}, AuthMethod: pick(strs)}
		}
		if r.IntN(2) == 0 {
			e.Decision = &Decision{Action: pick(strs), Rule: pick(strs), PolicyVersion: pick(strs), Reason: pick(strs)}
		}
		if r.IntN(2) == 0 {
			e.Masking = []MaskAction{{Rule: pick(strs), Entity: pick(strs), Location: pick(strs), Count: r.IntN(3), Fingerprint: pick(strs)}}
		}
		if m, ok := value(0).(map[string]any); ok {
			e.Params = m
		}
		if m, ok := value(0).(map[string]any); ok {
			e.Details = m
		}
		if _, ok, _ := marshalFast(e); ok {
			fastHits++
		}
		fast, err := Marshal(e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		slow, err := marshalSlow(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("entry %d differs:\nfast %s\nslow %s", i, fast, slow)
		}
	}
	if fastHits < 2000 {
		t.Fatalf("fast path taken for only %d of 6000 entries: the comparison proves little", fastHits)
	}
	// Invalid UTF-8 falls back to the reference (which writes U+FFFD).
	for _, bad := range []*Entry{
		{V: SchemaVersion, Kind: "x.y", ID: "bad\xffutf8", Params: map[string]any{"k": "v\xfe"}},
		{V: SchemaVersion, Kind: "x.y", ID: "i", Principal: &identity.Principal{Issuer: "i", Subject: "s", Groups: []string{"g\xc3"}}},
		{V: SchemaVersion, Kind: "x.y", ID: "i", Decision: &Decision{Action: "allow", Reason: "\xe2\x80"}},
	} {
		if _, ok, _ := marshalFast(bad); ok {
			t.Fatalf("fast path accepted invalid UTF-8 in %+v", bad)
		}
		if fb, err := Marshal(bad); err != nil {
			t.Fatal(err)
		} else if sb, _ := marshalSlow(bad); !bytes.Equal(fb, sb) {
			t.Fatalf("invalid UTF-8: %s != %s", fb, sb)
		}
	}
	// Values that are not plain fall back to the reference encoding.
	e := &Entry{V: SchemaVersion, Kind: "x.y", ID: "i", Params: map[string]any{"body": json.RawMessage(`{"b":1,"a":2}`)}}
	if _, ok, _ := marshalFast(e); ok {
		t.Fatal("fast path accepted a RawMessage")
	}
	b, err := Marshal(e)
	if err != nil || !bytes.Contains(b, []byte(`{"a":2,"b":1}`)) {
		t.Fatalf("fallback not canonical: %s %v", b, err)
	}
}

// TestMarshalFastEdges: what the fast path must hand to the reference
// (and the reference then encodes or refuses) and the shapes at its
// limits, each compared with the reference.
func TestMarshalFastEdges(t *testing.T) {
	deep := map[string]any{"leaf": 1.0}
	for range maxPlainDepth + 2 {
		deep = map[string]any{"d": []any{"x", deep}}
	}
	type custom struct{ B, A int }
	for _, c := range []struct {
		name     string
		e        Entry
		fast     bool // the fast path encodes it
		slowFail bool // the reference refuses it
	}{
		{"minimal", Entry{Kind: "k", V: 1}, true, false},
		{"every field", Entry{Kind: "k", V: 1, ID: "i", ApprovalID: "a", BytesIn: -1, BytesOut: 1 << 62, Gateway: 1, GrantID: "g",
			Instance: "in", Method: "M", Model: "m", Outcome: "ok", Path: "/p", RequestID: "r", RequestSHA256: "h", ResponseSHA256: "h2",
			Route: "ro", Status: 200, Upstream: -5, Time: time.Date(2026, 12, 1, 10, 0, 0, 120, time.FixedZone("x", -3600)),
			Decision:  &Decision{Action: "allow"},
			Masking:   []MaskAction{{Rule: "r"}, {Rule: "s", Count: 2, Entity: "EMAIL", Location: "response:content", Fingerprint: "f"}},
			Principal: &identity.Principal{Issuer: "i", Subject: "s", Groups: []string{}},
			Params:    map[string]any{"a": []any{}, "b": map[string]any{}, "c": []string{}}}, true, false},
		{"empty maps omitted", Entry{Kind: "k", Params: map[string]any{}, Details: map[string]any{}}, true, false},
		{"deep details", Entry{Kind: "k", Details: deep}, false, false},
		{"struct value", Entry{Kind: "k", Params: map[string]any{"s": custom{1, 2}}}, false, false},
		{"pointer value", Entry{Kind: "k", Params: map[string]any{"p": new(int)}}, false, false},
		{"int map", Entry{Kind: "k", Details: map[string]any{"m": map[int]string{2: "b", 10: "a"}}}, false, false},
		{"NaN", Entry{Kind: "k", Details: map[string]any{"f": math.NaN()}}, false, true},
		{"Inf32", Entry{Kind: "k", Details: map[string]any{"f": float32(math.Inf(-1))}}, false, true},
		{"bad number", Entry{Kind: "k", Params: map[string]any{"n": json.Number("01")}}, false, true},
		{"bad number text", Entry{Kind: "k", Params: map[string]any{"n": json.Number("1e")}}, false, true},
		{"invalid key", Entry{Kind: "k", Params: map[string]any{"k\xff": 1}}, false, false},
		{"invalid string map value", Entry{Kind: "k", Params: map[string]any{"m": map[string]string{"k": "\xc3("}}}, false, false},
		{"year 10000", Entry{Kind: "k", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, false, true},
		{"year -1", Entry{Kind: "k", Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, ok, _ := marshalFast(&c.e)
			if ok != c.fast {
				t.Errorf("fast path taken: %v, want %v", ok, c.fast)
			}
			got, err := Marshal(&c.e)
			want, serr := marshalSlow(&c.e)
			if c.slowFail {
				if err == nil || serr == nil {
					t.Fatalf("want both refused: Marshal %v, reference %v", err, serr)
				}
				return
			}
			if err != nil || serr != nil {
				t.Fatalf("Marshal %v, reference %v", err, serr)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("differs:\nfast %s\nslow %s", got, want)
			}
		})
	}
}

// TestMarshalOwnsBytes: the bytes Marshal returns are the caller's: the
// next encodings (which reuse the encoder's buffer) leave them alone.
func TestMarshalOwnsBytes(t *testing.T) {
	e := &Entry{Kind: "k", ID: "first", Params: map[string]any{"a": "b"}}
	b1, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	keep := string(b1)
	for i := range 100 {
		e2 := &Entry{Kind: "k", ID: strings.Repeat("x", i), Details: map[string]any{"n": i}}
		if _, err := Marshal(e2); err != nil {
			t.Fatal(err)
		}
	}
	if string(b1) != keep {
		t.Fatalf("bytes changed: %s, were %s", b1, keep)
	}
}

func BenchmarkMarshal(b *testing.B) {
	e := &Entry{V: SchemaVersion, Kind: KindRequestAdmitted, ID: "0190c1a2-7b3c-7d4e-8f90-123456789abc", Time: time.Now(),
		RequestID: "3f0c9a1b2c3d4e5f60718293a4b5c6d7", Instance: "gw-1", Route: "openai", Method: "POST", Path: "/v1/chat/completions",
		Model: "warden-demo-small", RequestSHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		Principal: &identity.Principal{Issuer: "https://idp.example.com", Subject: "alice", Kind: "user", Groups: []string{"ml-users"}, AuthMethod: "oidc"},
		Decision:  &Decision{Action: "allow", Rule: "chat-approved-models", PolicyVersion: "sha256:a36cf9e268d1276bd0bc39b4fd5b94c934b649dd12c9824735418fd9a50af16d"},
		Params:    map[string]any{"model": "warden-demo-small", "stream": true, "message_count": 3.0}}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Marshal(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshalSlow(e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPlain8: the word-at-a-time check agrees with the byte rule for
// every byte value at every position of an otherwise plain word, and on
// random words.
func TestPlain8(t *testing.T) {
	plainByte := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	check := func(w []byte) {
		want := true
		for _, c := range w {
			want = want && plainByte(c)
		}
		if got := plain8(string(w)); got != want {
			t.Fatalf("plain8(%q) = %v, want %v", w, got, want)
		}
	}
	for _, base := range []string{"abcdefgh", "        ", "!#[]~~~~", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", "]]]]]]]]", "####$$$$"} {
		for pos := range 8 {
			for c := range 256 {
				w := []byte(base)
				w[pos] = byte(c)
				check(w)
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		var w [8]byte
		for i := range w {
			// mostly near the boundaries the check tests
			switch r.IntN(4) {
			case 0:
				w[i] = byte(r.IntN(256))
			case 1:
				w[i] = byte(0x1e + r.IntN(6)) // around 0x20 and '"'
			case 2:
				w[i] = byte(0x5a + r.IntN(5)) // around '\\'
			default:
				w[i] = byte(0x7d + r.IntN(6)) // around 0x80
			}
		}
		check(w[:])
	}
}

// TestStrMatchesEncodingJSON: str (word-at-a-time and byte loop) writes
// what encoding/json writes without HTML escaping, for strings whose
// special characters fall at every offset.
func TestStrMatchesEncodingJSON(t *testing.T) {
	pieces := []string{"a", "Zz", "0123456", "\"", "\\", "\n", "\x00", "\x1f", "\x7f", "é", "€", "😀", "\u2028", "\u2029", "<&>", " ", "~"}
	r := rand.New(rand.NewPCG(5, 6))
	var w encoder
	for range 50000 {
		var sb strings.Builder
		for range r.IntN(12) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := sb.String()
		var ref bytes.Buffer
		enc := json.NewEncoder(&ref)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		w.ok = true
		got := w.str(nil, s)
		if !w.ok || !bytes.Equal(got, bytes.TrimSuffix(ref.Bytes(), []byte("\n"))) {
			t.Fatalf("str(%q) = %s (ok %v), encoding/json %s", s, got, w.ok, ref.Bytes())
		}
	}
}

// BenchmarkStr: str on the strings of a request entry (ids, digests,
// policy version, path), with and without the eight-byte check (the
// byte loop alone is str before decision 049: plain8 never true).
func BenchmarkStr(b *testing.B) {
	strs := []string{"0190c1a2-7b3c-7d4e-8f90-123456789abc", "3f0c9a1b2c3d4e5f60718293a4b5c6d7", "gw-1", "openai", "POST",
		"/v1/chat/completions", "warden-demo-small", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"https://idp.example.com", "alice", "allow", "chat-approved-models",
		"sha256:a36cf9e268d1276bd0bc39b4fd5b94c934b649dd12c9824735418fd9a50af16d", "request.admitted"}
	for _, words := range []bool{false, true} {
		name := "bytewise"
		if words {
			name = "words"
		}
		b.Run(name, func(b *testing.B) {
			defer func(old bool) { strWords = old }(strWords)
			strWords = words
			var w encoder
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				buf = buf[:0]
				for _, s := range strs {
					buf = w.str(buf, s)
				}
			}
		})
	}
}
