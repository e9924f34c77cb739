package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bodyFactsRef is BodyFacts as it was before decision 041 (encoding/json
// into map[string]json.RawMessage, then one Unmarshal per fact): the
// reference the streaming pass must agree with on every input.
func bodyFactsRef(body []byte) map[string]any {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil
	}
	f := map[string]any{}
	str := func(key, out string) {
		var s string
		if v, ok := raw[key]; ok && json.Unmarshal(v, &s) == nil {
			f[out] = s
		}
	}
	integer := func(key, out string) {
		var n float64
		if v, ok := raw[key]; ok && json.Unmarshal(v, &n) == nil && n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			f[out] = int64(n)
		}
	}
	str("model", "model")
	str("user", "user")
	if v, ok := raw["stream"]; ok {
		var b bool
		if json.Unmarshal(v, &b) == nil {
			f["stream"] = b
		}
	}
	integer("n", "n")
	for _, key := range []string{"max_output_tokens", "max_completion_tokens", "max_tokens"} {
		prev, had := f["max_tokens"]
		integer(key, "max_tokens")
		if had && prev.(int64) > f["max_tokens"].(int64) {
			f["max_tokens"] = prev
		}
	}
	if v, ok := raw["temperature"]; ok {
		var t float64
		if json.Unmarshal(v, &t) == nil {
			f["temperature"] = t
		}
	}
	if v, ok := raw["messages"]; ok {
		var msgs []json.RawMessage
		if json.Unmarshal(v, &msgs) == nil {
			f["message_count"] = int64(len(msgs))
		}
	}
	if v, ok := raw["input"]; ok {
		var s string
		var list []json.RawMessage
		switch {
		case json.Unmarshal(v, &s) == nil:
			f["input_count"] = int64(1)
		case json.Unmarshal(v, &list) == nil:
			f["input_count"] = int64(len(list))
		}
	}
	var names []string
	hasTools := false
	for _, key := range []string{"tools", "functions"} {
		v, ok := raw[key]
		if !ok {
			continue
		}
		var tools []struct {
			Name     string `json:"name"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(v, &tools) != nil {
			continue
		}
		if len(tools) > 0 {
			hasTools = true
		}
		for _, t := range tools {
			n := t.Function.Name
			if n == "" {
				n = t.Name
			}
			if n != "" && len(names) < maxTools {
				names = append(names, n)
			}
		}
	}
	f["has_tools"] = hasTools
	if names == nil {
		names = []string{}
	}
	f["tools"] = names
	return f
}

// sameFacts compares two fact maps exactly: same keys, same dynamic
// types, floats bit for bit (so -0 and 0 differ).
func sameFacts(a, b map[string]any) error {
	if (a == nil) != (b == nil) {
		return fmt.Errorf("nil mismatch: %#v vs %#v", a, b)
	}
	if len(a) != len(b) {
		return fmt.Errorf("keys differ: %#v vs %#v", a, b)
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			return fmt.Errorf("%s missing: %#v vs %#v", k, a, b)
		}
		if fa, ok := va.(float64); ok {
			if fb, ok := vb.(float64); !ok || math.Float64bits(fa) != math.Float64bits(fb) {
				return fmt.Errorf("%s = %#v vs %#v", k, va, vb)
			}
			continue
		}
		if !reflect.DeepEqual(va, vb) {
			return fmt.Errorf("%s = %#v vs %#v", k, va, vb)
		}
	}
	return nil
}

func nest(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func manyTools(n int, key string) string {
	var b strings.Builder
	b.WriteString(`{"` + key + `":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"function","function":{"name":"t%d"}}`, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

// bodyFactsCases are the edge cases encoding/json's decoding has; they
// also seed FuzzBodyFacts.
var bodyFactsCases = []string{
	// not one JSON object
	``, ` `, `null`, ` null `, `[]`, `[1,2]`, `"s"`, `1`, `true`, `not json`,
	`{`, `}`, `{}`, ` {} `, "{}\n\t\r ", `{} {}`, `{}x`, `{},`, `{}]`, `{"a":1}{"b":2}`, `{} null`,
	"\ufeff{}", `{"model":"m",}`, `{"model" "m"}`, `{'model':'m'}`, `{"model":"m"`, `{model:"m"}`,
	`{"a":[1,2,}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":+1}`, `{"a":NaN}`, `{"a":Infinity}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":"\x}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\t\"}",
	`{"a":{"b":[}]}}`, `{"a":1 "b":2}`, "{\"a\":1}\x00",
	// invalid JSON deep inside an unknown field still makes the whole body invalid
	`{"model":"m","x":[1,2,{"y":}]}`, `{"model":"m","x":"\q"}`,
	// the typical bodies
	`{"model":"m","stream":false,"n":3,"max_completion_tokens":50,"temperature":0.5,"messages":[{"role":"user","content":"secret 4111"}],"functions":[{"name":"f1"}],"user":"u1"}`,
	`{"model":"e","input":["a","b","c"]}`,
	`{"model":"m","messages":[{}],"tools":[{"function":{"name":"a"}}],"input":"x","n":2}`,
	`{"tools":"x","n":1.5,"stream":"yes"}`,
	// duplicates: the last copy wins, even when it has the wrong type
	`{"model":"a","model":"b"}`, `{"model":"a","model":1}`, `{"model":1,"model":"a"}`, `{"model":"a","model":null}`,
	`{"n":1,"n":"2"}`, `{"max_tokens":9,"max_tokens":1}`, `{"stream":true,"stream":"x"}`,
	`{"tools":[{"name":"a"}],"tools":[]}`, `{"tools":[{"name":"a"}],"tools":"x"}`, `{"tools":[],"tools":[{"name":"b"}]}`,
	`{"messages":[1,2],"messages":[3]}`, `{"input":"x","input":[1,2]}`, `{"temperature":1,"temperature":null}`,
	// escaped names match after unquoting
	`{"mod\u0065l":"m","\u006e":2,"tool\u0073":[{"n\u0061me":"x"}]}`, `{"MODEL":"m","Model":"m"}`,
	// null is the zero value
	`{"model":null,"user":null,"stream":null,"n":null,"max_tokens":null,"temperature":null,"messages":null,"input":null,"tools":null,"functions":null}`,
	`{"max_tokens":null,"max_completion_tokens":-5}`, `{"max_tokens":-3,"max_output_tokens":null}`,
	// wrong types
	`{"model":1,"user":true,"stream":0,"n":"1","max_tokens":"8000","temperature":"0.5","messages":{},"input":3,"tools":{},"functions":"f"}`,
	`{"model":{},"user":[],"stream":{},"n":[],"temperature":[],"messages":"m","input":{},"input":true}`,
	// numbers
	`{"n":1e3}`, `{"n":8000.0}`, `{"n":-0}`, `{"n":-0.0}`, `{"temperature":-0}`, `{"temperature":-0.0}`, `{"temperature":0}`,
	`{"n":9007199254740991}`, `{"n":9007199254740992}`, `{"n":-9007199254740991}`, `{"n":-9007199254740992}`,
	`{"n":9007199254740993}`, `{"n":1e400}`, `{"temperature":1e400}`, `{"temperature":-1e400}`, `{"n":1e-400}`, `{"temperature":1e-400}`,
	`{"n":1.5}`, `{"n":0.1e1}`, `{"n":1E2}`, `{"n":1e+2}`, `{"n":100e-2}`, `{"max_tokens":4.5e15}`, `{"max_tokens":1e16}`,
	`{"temperature":0.30000000000000004}`, `{"temperature":123456789012345678901234567890}`,
	`{"max_tokens":10,"max_completion_tokens":20,"max_output_tokens":15}`, `{"max_tokens":30,"max_completion_tokens":"x","max_output_tokens":1.5}`,
	`{"max_output_tokens":7}`, `{"max_completion_tokens":-1,"max_tokens":-2}`,
	// strings: invalid UTF-8 becomes U+FFFD, escapes and surrogates
	"{\"model\":\"a\xffb\",\"user\":\"\xc3\"}", "{\"model\":\"\xed\xa0\x80\"}", "{\"model\":\"\xf0\x9f\x98\"}",
	`{"model":"\ud800"}`, `{"model":"\ud800\u0041"}`, `{"model":"\ud83d\ude00"}`, `{"model":"\udc00\ud800"}`, `{"model":"\ud800\ud800"}`,
	`{"model":"\u0000"}`, `{"model":"a\/b\"c\\d\b\f\n\r\t"}`, "{\"m\xffodel\":\"x\",\"model\":\"y\"}",
	"{\"tools\":[{\"name\":\"a\xfe\"}]}", "{\"tools\":[{\"na\xffme\":\"a\"}]}",
	// tools and functions
	`{"tools":[]}`, `{"tools":[null]}`, `{"tools":[{}]}`, `{"tools":[{"name":""}]}`, `{"tools":[1]}`, `{"tools":["x"]}`, `{"tools":[[]]}`,
	`{"tools":[{"name":"a"},1]}`, `{"tools":[{"name":1}]}`, `{"tools":[{"name":"a","name":null}]}`, `{"tools":[{"name":null,"name":"b"}]}`,
	`{"tools":[{"name":"a","name":"b"}]}`, `{"tools":[{"function":{"name":"f"},"name":"n"}]}`, `{"tools":[{"function":{"name":""},"name":"n"}]}`,
	`{"tools":[{"function":"f"}]}`, `{"tools":[{"function":[]}]}`, `{"tools":[{"function":null,"name":"n"}]}`,
	`{"tools":[{"function":{"name":"x"},"function":{"other":1}}]}`, `{"tools":[{"function":{"name":"x"},"function":null}]}`,
	`{"tools":[{"function":{"name":"x"},"function":{"name":"y"}}]}`, `{"tools":[{"function":{"name":2}}]}`, `{"tools":[{"function":{"name":null}}]}`,
	`{"tools":[{"NAME":"a"}]}`, `{"tools":[{"Name":"a","name":"b"}]}`, `{"tools":[{"name":"b","NaMe":"a"}]}`, `{"tools":[{"FUNCTION":{"NAME":"f"}}]}`,
	`{"tools":[{"nam\u0065":"e"}]}`, `{"tools":[{"name ":"a"}]}`, "{\"tools\":[{\"\u017fname\":\"a\"}]}",
	`{"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}]}`,
	`{"tools":[{"name":"a"}],"functions":[{"name":"b"}]}`, `{"functions":[{"name":"b"}],"tools":[{"name":"a"}]}`,
	`{"tools":[],"functions":[null]}`, `{"tools":"bad","functions":[{"name":"f"}]}`, `{"tools":[{"name":"a"}],"functions":[1]}`,
	`{"tools":[{"name":"a","extra":[1,{"x":"\u00e9"}]}]}`,
	// nesting at encoding/json's limit (10000) and one past it
	`{"x":` + nest(9998) + `}`, `{"x":` + nest(9999) + `}`, `{"x":` + nest(10000) + `}`, `{"messages":` + nest(9999) + `}`,
	`{"tools":[{"function":{"x":` + nest(9996) + `}}]}`, `{"tools":[{"function":{"x":` + nest(9997) + `}}]}`,
	// huge lists: the names are capped at maxTools over tools and functions together
	manyTools(maxTools+10, "tools"), manyTools(maxTools, "functions"),
	`{"tools":` + manyTools(maxTools-1, "x")[5:len(manyTools(maxTools-1, "x"))-1] + `,"functions":[{"name":"a"},{"name":"b"}]}`,
	`{"messages":[` + strings.Repeat(`{"role":"user","content":"hi"},`, 5000) + `{}]}`,
	`{"input":[` + strings.Repeat(`1,`, 100000) + `1]}`,
	// CheckOpenAIBody's type checks (CheckOpenAIBodyFacts)
	`{"best_of":1.5}`, `{"best_of":2}`, `{"logprobs":3}`, `{"logprobs":true}`, `{"logprobs":0.5}`, `{"top_p":1e400}`,
	`{"stream_options":{}}`, `{"stream_options":[]}`, `{"tool_choice":"auto"}`, `{"tool_choice":{"type":"function"}}`, `{"tool_choice":1}`,
	`{"stop":null,"seed":null,"prompt":["a"]}`, `{"prompt":{}}`, `{"x":{"a":1,"a":2}}`, `{"tools":[{"name":"a","name":"b"}],"model":"m"}`,
	`{"model":"m","n":2,"n":3}`, `{"model":"m","max_tokens":1,"max_tokens":"x"}`, `{"model":"m","temperature":"x"}`, `{"model":"m","temperature":1e999}`,
	`{"model":"m","n":1.5}`, `{"model":"m","max_tokens":1e3}`, `{"model":"m","max_tokens":9007199254740992}`, `{"model":"m","max_tokens":-1e400}`,
}

func TestBodyFactsMatchesReference(t *testing.T) {
	for _, c := range bodyFactsCases {
		want, got := bodyFactsRef([]byte(c)), BodyFacts([]byte(c))
		if err := sameFacts(want, got); err != nil {
			name := c
			if len(name) > 120 {
				name = name[:120] + "…"
			}
			t.Errorf("BodyFacts(%q): reference vs streaming: %v", name, err)
		}
		if err := sameCheck([]byte(c)); err != nil {
			t.Errorf("CheckOpenAIBodyFacts(%.120q): %v", c, err)
		}
	}
}

// sameCheck: CheckOpenAIBodyFacts gives CheckOpenAIBody's error and, when
// that is nil, BodyFacts's facts.
func sameCheck(body []byte) error {
	want := CheckOpenAIBody(body)
	facts, err := CheckOpenAIBodyFacts(body)
	switch {
	case (err == nil) != (want == nil):
		return fmt.Errorf("error %v, CheckOpenAIBody says %v", err, want)
	case err != nil:
		if err.Error() != want.Error() || reflect.TypeOf(err) != reflect.TypeOf(want) {
			return fmt.Errorf("error %#v, CheckOpenAIBody says %#v", err, want)
		}
		if facts != nil {
			return fmt.Errorf("facts %v with error %v", facts, err)
		}
		return nil
	}
	return sameFacts(BodyFacts(body), facts)
}

// TestBodyFactsCases pins a few facts directly, so the table also
// checks something if the reference were wrong in the same way.
func TestBodyFactsCases(t *testing.T) {
	tests := []struct {
		body string
		key  string
		want any // nil: absent
	}{
		{`{"model":"a","model":"b"}`, "model", "b"},
		{`{"model":"a","model":1}`, "model", nil},
		{`{"model":null}`, "model", ""},
		{`{"n":1e3}`, "n", int64(1000)},
		{`{"n":8000.0}`, "n", int64(8000)},
		{`{"n":9007199254740992}`, "n", nil},
		{`{"n":9007199254740991}`, "n", int64(9007199254740991)},
		{`{"input":null}`, "input_count", int64(1)},
		{`{"max_tokens":10,"max_completion_tokens":20,"max_output_tokens":15}`, "max_tokens", int64(20)},
		{"{\"model\":\"a\xffb\"}", "model", "a\ufffdb"},
		{`{"model":"\ud800\u0041"}`, "model", "\ufffdA"},
		{`{"tools":[{"NAME":"a"}]}`, "tools", []string{"a"}},
		{`{"tools":[{"function":{"name":"x"},"function":{"other":1}}]}`, "tools", []string{"x"}},
		{`{"tools":[null]}`, "has_tools", true},
		{`{"tools":[{"name":1}]}`, "has_tools", false},
	}
	for _, tt := range tests {
		f := BodyFacts([]byte(tt.body))
		got, ok := f[tt.key]
		if tt.want == nil {
			if ok {
				t.Errorf("BodyFacts(%s)[%s] = %#v, want absent", tt.body, tt.key, got)
			}
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("BodyFacts(%s)[%s] = %#v, want %#v", tt.body, tt.key, got, tt.want)
		}
	}
	if f := BodyFacts([]byte(`{"x":` + nest(10000) + `}`)); f != nil {
		t.Errorf("nesting past encoding/json's limit: %v, want nil", f)
	}
	if f := BodyFacts([]byte(manyTools(maxTools+10, "tools"))); len(f["tools"].([]string)) != maxTools {
		t.Errorf("%d tool names, want %d", len(f["tools"].([]string)), maxTools)
	}
}

// TestBodyFactsPoolIsolation: a pooled scanner carries nothing from one
// body to the next.
func TestBodyFactsPoolIsolation(t *testing.T) {
	for range 3 {
		BodyFacts([]byte(`{"model":"a","user":"u","n":2,"tools":[{"name":"t"}],"functions":[{"name":"f"}],"messages":[1],"input":"x","stream":true,"temperature":1,"max_tokens":5}`))
		f := BodyFacts([]byte(`{}`))
		if err := sameFacts(f, map[string]any{"has_tools": false, "tools": []string{}}); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzBodyFacts: the streaming pass gives exactly the reference's facts
// for every input, within the policy input bounds, and
// CheckOpenAIBodyFacts agrees with CheckOpenAIBody and BodyFacts.
func FuzzBodyFacts(f *testing.F) {
	for _, c := range bodyFactsCases {
		if len(c) < 4096 {
			f.Add([]byte(c))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, got := bodyFactsRef(body), BodyFacts(body)
		if err := sameFacts(want, got); err != nil {
			t.Fatalf("BodyFacts(%q): reference vs streaming: %v", body, err)
		}
		if err := sameCheck(body); err != nil {
			t.Fatalf("CheckOpenAIBodyFacts(%q): %v", body, err)
		}
		if len(got) > 16 {
			t.Fatalf("%d facts", len(got))
		}
	})
}

// benchBodies: the harness's chat completion (bench/runner chatRequest),
// a long conversation, and a request declaring tools with schemas.
func benchBodies() []struct {
	name string
	body []byte
} {
	chat := `{"model":"warden-demo-pii","stream":false,"messages":[{"role":"user","content":"Summarise the customer record in two sentences."}]}`
	var large strings.Builder
	large.WriteString(`{"model":"gpt-4o","temperature":0.2,"max_tokens":1024,"messages":[`)
	for i := range 200 {
		if i > 0 {
			large.WriteByte(',')
		}
		fmt.Fprintf(&large, `{"role":"user","content":"Message %d: %s"}`, i, strings.Repeat("lorem ipsum dolor sit amet, ", 8))
	}
	large.WriteString(`],"user":"u-123"}`)
	var tools strings.Builder
	tools.WriteString(`{"model":"gpt-4o","stream":true,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the weather in Paris?"}],"tools":[`)
	for i := range 16 {
		if i > 0 {
			tools.WriteByte(',')
		}
		fmt.Fprintf(&tools, `{"type":"function","function":{"name":"tool_%d","description":"Looks something up.","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}}}`, i)
	}
	tools.WriteString(`],"tool_choice":"auto","max_completion_tokens":500}`)
	return []struct {
		name string
		body []byte
	}{{"chat", []byte(chat)}, {"large", []byte(large.String())}, {"tools", []byte(tools.String())}}
}

// benchProcessCPU is the process's user and system CPU time so far
// (garbage collection included), steadier than wall time on a loaded
// machine.
func benchProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBodyFacts runs the reference (old) and the streaming pass
// (new) on the same bodies in one binary, alternating per body, and
// reports cpu-ns/op (process CPU from getrusage) beside ns/op.
func BenchmarkBodyFacts(b *testing.B) {
	for _, bb := range benchBodies() {
		for _, impl := range []struct {
			name string
			fn   func([]byte) map[string]any
		}{{"old", bodyFactsRef}, {"new", BodyFacts}} {
			b.Run(bb.name+"/"+impl.name, func(b *testing.B) {
				if err := sameFacts(bodyFactsRef(bb.body), impl.fn(bb.body)); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(bb.body)))
				b.ReportAllocs()
				cpu0 := benchProcessCPU()
				for b.Loop() {
					impl.fn(bb.body)
				}
				b.ReportMetric(float64((benchProcessCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkCheckAndFacts is the gateway's admission work on an OpenAI
// JSON body: main's CheckOpenAIBody then the old BodyFacts ("main"),
// CheckOpenAIBody then the streaming BodyFacts ("twopass"), and
// CheckOpenAIBodyFacts ("onepass").
func BenchmarkCheckAndFacts(b *testing.B) {
	for _, bb := range benchBodies() {
		for _, impl := range []struct {
			name string
			fn   func([]byte) (map[string]any, error)
		}{
			{"main", func(body []byte) (map[string]any, error) {
				if err := CheckOpenAIBody(body); err != nil {
					return nil, err
				}
				return bodyFactsRef(body), nil
			}},
			{"twopass", func(body []byte) (map[string]any, error) {
				if err := CheckOpenAIBody(body); err != nil {
					return nil, err
				}
				return BodyFacts(body), nil
			}},
			{"onepass", CheckOpenAIBodyFacts},
		} {
			b.Run(bb.name+"/"+impl.name, func(b *testing.B) {
				f, err := impl.fn(bb.body)
				if err != nil {
					b.Fatal(err)
				}
				if err := sameFacts(bodyFactsRef(bb.body), f); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(bb.body)))
				b.ReportAllocs()
				cpu0 := benchProcessCPU()
				for b.Loop() {
					impl.fn(bb.body)
				}
				b.ReportMetric(float64((benchProcessCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
