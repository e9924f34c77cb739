package export

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// referenceJSON is how events were encoded before decision 020: the
// reflection encoder of encoding/json, HTML escaping off. The
// hand-written encoder must produce exactly these bytes.
func referenceJSON(ev *ocsfEvent) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// sameAsReference fails t unless ev encodes to the reference bytes (or
// both encoders refuse it).
func sameAsReference(t *testing.T, name string, ev *ocsfEvent) {
	t.Helper()
	want, werr := referenceJSON(ev)
	got, gerr := appendEventJSON(nil, ev)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%s: encoding/json error %v, hand-written encoder error %v", name, werr, gerr)
	}
	if werr == nil && !bytes.Equal(got, want) {
		t.Fatalf("%s: encoders differ\nencoding/json: %s\nhand-written:  %s", name, want, got)
	}
}

var testFrontier = []tlog.Hash{{1, 2, 3}, {0xff, 0xfe}, {}}

// oddEntry holds every string and value shape the encoders must agree
// on: escapes, control characters, invalid UTF-8, U+2028/2029, HTML
// characters, nested maps and lists, numbers of every Go type, nil, a
// type only encoding/json knows.
func oddEntry() *audit.Entry {
	s := "<b>&amp;</b> \"q\" \\ \x00\x01\x1f\x7f \b\f\n\r\t \xff\xfe é 😀 \u2028\u2029 \u00e9"
	return &audit.Entry{V: 1, Time: t0, Kind: audit.KindRequestCompleted, ID: s, RequestID: s, Instance: s,
		Principal: &identity.Principal{Issuer: s, Subject: s, Kind: "user", Name: s, Groups: []string{s, ""}, AuthMethod: s},
		Route:     s, Method: s, Path: s, Model: s, Status: 599, Outcome: s,
		Params: map[string]any{s: s, "n": json.Number("-1.5e+10"), "z": json.Number(""), "f": 0.000001, "g": 1e21, "h": -0.0,
			"i": 7, "j": int64(-9), "nil": nil, "t": true, "list": []any{1.5, "x", nil, []any{}, map[string]any{}},
			"m": map[string]any{"b": "<>", "a": []string{"x", s}}, "typed": map[string]int{"b": 2, "a": 1}},
		Details:  map[string]any{"recording_digest": s, "reason": s, "client_ip": "::1", "user_agent": s},
		Masking:  []audit.MaskAction{{Rule: s, Entity: s, Location: s, Count: 3, Fingerprint: s}, {Rule: "r"}},
		Decision: &audit.Decision{Action: s, Rule: s, PolicyVersion: s, Reason: s}, BytesIn: 1, BytesOut: -2,
		Upstream: time.Nanosecond, Gateway: -time.Second, ApprovalID: s, GrantID: s}
}

// TestEncoderMatchesEncodingJSON: for every catalogue kind (and unknown
// kinds), with and without parameters, with and without a frontier, as
// built in memory and as decoded from the log (json.Number), and for
// checkpoints, the hand-written encoder writes the bytes encoding/json
// writes.
func TestEncoderMatchesEncodingJSON(t *testing.T) {
	var entries []*audit.Entry
	for _, k := range append(catalogue, "x.y") {
		entries = append(entries, sampleEntries(k)...)
	}
	entries = append(entries, oddEntry())
	for i, e := range entries {
		e.Seq = int64(i)
		data, err := audit.Marshal(e)
		if err != nil {
			t.Fatalf("entry %d (%s): %v", i, e.Kind, err)
		}
		decoded, err := audit.DecodeEntry(e.Seq, data)
		if err != nil {
			t.Fatalf("entry %d (%s): %v", i, e.Kind, err)
		}
		for _, drop := range []bool{false, true} {
			m := Mapper{Origin: "warden-audit", ProductVersion: "v1", DropParams: drop}
			for _, fr := range [][]tlog.Hash{nil, {}, testFrontier} {
				for form, x := range []*audit.Entry{e, decoded} {
					ev := m.entryEvent(x, data, fr)
					sameAsReference(t, e.Kind+"/"+[]string{"built", "decoded"}[form], &ev)
				}
			}
		}
	}
	m := Mapper{Origin: "warden-audit", ProductVersion: "v1"}
	for _, fr := range [][]tlog.Hash{nil, testFrontier} {
		ev := m.checkpointEvent(audit.Checkpoint{Size: 12, Hash: tlog.Hash{9}, Time: t0, Note: []byte("o\n12\nAAA=\n\n— o sig\n")}, fr)
		sameAsReference(t, "checkpoint", &ev)
	}
}

// TestEncoderEmbeddedEntry: the embedded entry is copied when compact and
// compacted (as encoding/json does) when not; unbalanced JSON fails both
// encoders. (Balanced but otherwise invalid bytes, e.g. {"a":tru}, are
// outside Mapper.Entry's contract: the bytes were parsed by
// audit.DecodeEntry or written by audit.Marshal.)
func TestEncoderEmbeddedEntry(t *testing.T) {
	for _, raw := range []string{
		`{"a":"x y","b":[1,{"c":"\" ]}"}]}`,
		`{ "a" : "x y" ,` + "\n\t" + `"b":[ 1 ] }`,
		`{"a":"tab	inside"}`,
		`{"a":1}}`,
		`{"a":1`,
		`{"a":"\\"}`,
		`[]`,
		`{"a":"unterminated}`,
	} {
		ev := ocsfEvent{Unmapped: &unmapped{Warden: wardenFields{Kind: "k", Entry: json.RawMessage(raw)}}}
		sameAsReference(t, raw, &ev)
	}
}

// TestWithFrontierMatchesMapping: adding the frontier to a shared event
// gives the bytes of mapping with the frontier.
func TestWithFrontierMatchesMapping(t *testing.T) {
	m := Mapper{Origin: "warden-audit", ProductVersion: "v1"}
	for _, k := range catalogue {
		for _, e := range sampleEntries(k) {
			e.Seq = 4
			plain, err := m.Entry(e, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, err := m.Entry(e, nil, testFrontier)
			if err != nil {
				t.Fatal(err)
			}
			got, err := withFrontier(plain, testFrontier)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.JSON, want.JSON) {
				t.Fatalf("%s:\nwant %s\ngot  %s", k, want.JSON, got.JSON)
			}
			if same, _ := withFrontier(plain, nil); !bytes.Equal(same.JSON, plain.JSON) {
				t.Fatalf("%s: an empty frontier changed the event", k)
			}
		}
	}
	if _, err := withFrontier(Event{UID: "x", JSON: []byte(`{"a":1}`)}, testFrontier); err == nil {
		t.Fatal("an event without unmapped.warden at its end was accepted")
	}
}

// FuzzEncoder: for any entry the log could hold, the hand-written encoder
// and encoding/json agree byte for byte, built and decoded.
func FuzzEncoder(f *testing.F) {
	for _, k := range append(catalogue, "x.y") {
		for _, e := range sampleEntries(k) {
			if b, err := audit.Marshal(e); err == nil {
				f.Add(b)
			}
		}
	}
	if b, err := audit.Marshal(oddEntry()); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"kind":"request.completed","params":{"a":[1,2.5e300,"\u2028",{"b":null}],"c":-0},"details":{"x":{"y":"<&>"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, data, ok := fuzzedEntry(b)
		if !ok {
			return
		}
		decoded, err := audit.DecodeEntry(7, data)
		if err != nil {
			t.Fatalf("decode what Marshal wrote: %v", err)
		}
		for _, drop := range []bool{false, true} {
			m := Mapper{Origin: "o", ProductVersion: "v", DropParams: drop}
			for _, x := range []*audit.Entry{e, decoded} {
				ev := m.entryEvent(x, data, testFrontier)
				sameAsReference(t, strings.ToValidUTF8(string(b), "?"), &ev)
			}
		}
	})
}

// TestJSONFloat: appendJSONFloat writes every float64 as encoding/json
// does (entries fed at commit carry Go floats; entryFed encodes them
// directly).
func TestJSONFloat(t *testing.T) {
	vals := []float64{0, 1, -1, 0.2, 0.7, 3, 1e20, 1e21, 1e22, 123456789.125, 1e-6, 9.99e-7, 1e-7, 1.5e-7, 5e-324,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-10, 1.23e-100, 1e100, -2.5e-8, math.Copysign(0, -1)}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		f := math.Float64frombits(r.Uint64())
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			vals = append(vals, f)
		}
	}
	for _, f := range vals {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONFloat(nil, f); !bytes.Equal(got, want) {
			t.Fatalf("%v (%x): got %s, want %s", f, math.Float64bits(f), got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		e := jsonEnc{}
		e.any(f)
		if e.err == nil {
			t.Fatalf("%v encoded as %s without the error encoding/json returns", f, e.b)
		}
	}
}
