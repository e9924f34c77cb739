package mask

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestMaskJSON(t *testing.T) {
	m, _ := newSet(t, Config{Profiles: map[string]Profile{"p": {
		JSONPaths: []PathRule{
			{Name: "mrn", Path: "$.data[*].patient.mrn", Entity: "MRN"},
			{Name: "notes", Path: "$.data[*].notes"},
		},
	}}}).Profile("p")
	tests := []struct {
		name, in, want string
	}{
		{"untouched bytes",
			`{ "a" : 1,"b":[true,null,  "plain text"],"c":"x"}`,
			`{ "a" : 1,"b":[true,null,  "plain text"],"c":"x"}`},
		{"unicode escapes cannot hide digits",
			`{"msg":"card \u0034\u0031\u0031\u0031 1111 1111 1111 ok", "n":  2}`,
			`{"msg":"card [REDACTED:CREDIT_CARD] ok", "n":  2}`},
		{"escaped at sign",
			`{"to":"jane\u0040example.com"}`,
			`{"to":"[REDACTED:EMAIL_ADDRESS]"}`},
		{"number that is a card",
			`{"pan":4111111111111111,"qty":3}`,
			`{"pan":"[REDACTED:CREDIT_CARD]","qty":3}`},
		{"member name",
			`{"jane@example.com":true}`,
			`{"[REDACTED:EMAIL_ADDRESS]":true}`},
		{"json paths",
			`{"data":[{"patient":{"mrn":"A-77","name":"x"},"notes":{"t":"secret"}},{"patient":{"mrn":12345}}]}`,
			`{"data":[{"patient":{"mrn":"[REDACTED:MRN]","name":"x"},"notes":"[REDACTED:FIELD]"},{"patient":{"mrn":"[REDACTED:MRN]"}}]}`},
		{"openai response",
			`{"choices":[{"index":0,"message":{"role":"assistant","content":"Call (415) 555-2671.\nBye"}}],"usage":{"total_tokens":12}}`,
			`{"choices":[{"index":0,"message":{"role":"assistant","content":"Call [REDACTED:PHONE_NUMBER].\nBye"}}],"usage":{"total_tokens":12}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := NewRecorder()
			got, err := m.MaskJSON([]byte(tt.in), rec)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Fatal("output is not valid JSON")
			}
			if tt.in != tt.want && rec.Total() == 0 {
				t.Fatal("nothing recorded")
			}
		})
	}
	rec := NewRecorder()
	m.MaskJSON([]byte(`{"choices":[{"message":{"content":"a@b.io"}}],"data":[{"patient":{"mrn":"1"}}]}`), rec)
	locs := map[string]bool{}
	for _, a := range rec.Actions() {
		locs[a.Location+" "+a.Rule] = true
	}
	for _, want := range []string{"$.choices[0].message.content entities.EMAIL_ADDRESS", "$.data[0].patient.mrn json_paths.mrn"} {
		if !locs[want] {
			t.Errorf("missing action %q in %v", want, locs)
		}
	}
	for _, bad := range []string{`{"a":`, `{"a":1}}`, "{\"a\":\"\xff\"}"} {
		if _, err := m.MaskJSON([]byte(bad), nil); err == nil {
			t.Errorf("MaskJSON(%q) accepted invalid JSON", bad)
		}
	}
}

func TestRedactJSONForLog(t *testing.T) {
	m := defaultMasker(t)
	body := `{"model":"m","messages":[{"role":"user","content":"my card is 4111 1111 1111 1111"}]}`
	out, acts := m.RedactJSONForLog([]byte(body))
	if strings.Contains(string(out), "4111") || len(acts) != 1 || acts[0].Location != "request:$.messages[0].content" {
		t.Fatalf("out %s acts %+v", out, acts)
	}
	out, acts = m.RedactJSONForLog([]byte("not json jane@example.com"))
	if string(out) != "not json [REDACTED:EMAIL_ADDRESS]" || len(acts) != 1 {
		t.Fatalf("text body: %s %+v", out, acts)
	}
}

func TestParseJSONPath(t *testing.T) {
	good := map[string]int{"$.a": 1, "$.data[*].patient.mrn": 4, "$['a b'][0].*": 3}
	for p, n := range good {
		segs, err := parseJSONPath(p)
		if err != nil || len(segs) != n {
			t.Errorf("parseJSONPath(%q) = %v, %v", p, segs, err)
		}
	}
	for _, p := range []string{"", "$", "a.b", "$..a", "$.a[", "$.a[x]", "$.", "$.a..b"} {
		if _, err := parseJSONPath(p); err == nil {
			t.Errorf("parseJSONPath(%q) accepted", p)
		}
	}
}

func jsontextValid(b []byte) bool { return jsontext.Value(b).IsValid() }
