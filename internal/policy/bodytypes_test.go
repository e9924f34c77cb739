package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestCheckOpenAIBody: the known fields of an OpenAI request body must
// have their types; the error names the field and both types.
func TestCheckOpenAIBody(t *testing.T) {
	cases := []struct {
		body  string
		field string // "" valid; "-" a non-FieldTypeError error
		msg   string
	}{
		{`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":8000,"stream":true,"temperature":0.2,"top_p":1,"n":2}`, "", ""},
		{`{"model":"m","max_tokens":null,"stop":null}`, "", ""},
		{`{"model":"m","input":"x"}`, "", ""},
		{`{"model":"m","input":["x","y"],"dimensions":256}`, "", ""},
		{`{"model":"m","temperature":1}`, "", ""},
		{`{"model":"m","max_tokens":8000.0}`, "", ""},
		{`{"model":"m","unknown_field":"anything","extra":{"a":[1,"b"]}}`, "", ""},
		{`{"model":"m","max_tokens":"8000"}`, "max_tokens", `field "max_tokens" must be an integer, got a string`},
		{`{"model":"m","max_completion_tokens":"8000"}`, "max_completion_tokens", "integer"},
		{`{"model":"m","max_output_tokens":[8000]}`, "max_output_tokens", "got an array"},
		{`{"model":"m","n":"4"}`, "n", "integer"},
		{`{"model":"m","n":2.5}`, "n", "got a number"},
		{`{"model":"m","n":1e300}`, "n", "got a number"},
		{`{"model":"m","temperature":1e400}`, "temperature", "got a number out of range"},
		{`{"model":"m","max_tokens":-1e999}`, "max_tokens", "out of range"},
		{`{"model":["a","b"]}`, "model", `field "model" must be a string, got an array`},
		{`{"model":7}`, "model", "got an integer"},
		{`{"model":"m","stream":"true"}`, "stream", `field "stream" must be a boolean, got a string`},
		{`{"model":"m","stream":1}`, "stream", "boolean"},
		{`{"model":"m","temperature":"0.2"}`, "temperature", "must be a number"},
		{`{"model":"m","top_p":false}`, "top_p", "number"},
		{`{"model":"m","messages":{"role":"user"}}`, "messages", "must be an array, got an object"},
		{`{"model":"m","messages":"hi"}`, "messages", "array"},
		{`{"model":"m","tools":{}}`, "tools", "array"},
		{`{"model":"m","user":42}`, "user", "string"},
		{`{"model":"m","stop":5}`, "stop", "must be a string or array"},
		{`{"model":"m","tool_choice":true}`, "tool_choice", "string or object"},
		{`{"model":"m","max_tokens":10,"max_tokens":100000}`, "max_tokens", "more than once"},
		{`{"model":"m","messages":[{"content":"a","content":"b"}]}`, "/messages/0/content", "more than once"},
		{`[1,2]`, "", "must be a JSON object, got an array"},
		{`"x"`, "", "got a string"},
		{`{"model":"m"`, "-", ""},
		{`{"model":"m"} {}`, "-", ""},
	}
	for _, tc := range cases {
		err := CheckOpenAIBody([]byte(tc.body))
		var fe *FieldTypeError
		switch {
		case tc.field == "" && tc.msg == "":
			if err != nil {
				t.Errorf("%s: %v", tc.body, err)
			}
		case tc.field == "-":
			if err == nil || errors.As(err, &fe) {
				t.Errorf("%s: %v, want a syntax error", tc.body, err)
			}
		default:
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s: %v, want field %q and %q", tc.body, err, tc.field, tc.msg)
			}
		}
	}
}

// TestStringCapDoesNotSlipPastPolicy: the case. A rule capping
// max_tokens sees the number; the same cap sent as a string is refused by
// CheckOpenAIBody before policy, so the rule's absence-of-fact can no
// longer be used to pass it. Several max-token fields: the largest counts.
func TestStringCapDoesNotSlipPastPolicy(t *testing.T) {
	p, err := Load("cap.yaml", []byte(`version: 1
rules:
  - name: cap
    when: has(body.max_tokens) && body.max_tokens > 4096
    action: deny
  - name: rest
    when: "true"
    action: allow
`))
	if err != nil {
		t.Fatal(err)
	}
	decide := func(body string) Action {
		return p.Decide(&Input{Body: BodyFacts([]byte(body))}).Action
	}
	if a := decide(`{"max_tokens":8000}`); a != ActionDeny {
		t.Fatalf("numeric cap: %s", a)
	}
	if err := CheckOpenAIBody([]byte(`{"max_tokens":"8000"}`)); err == nil {
		t.Fatal(`"8000" passed the type check (policy would see no max_tokens and allow)`)
	}
	for _, body := range []string{
		`{"max_tokens":10,"max_completion_tokens":8000}`,
		`{"max_completion_tokens":8000,"max_tokens":10}`,
		`{"max_output_tokens":8000,"max_tokens":10}`,
	} {
		if a := decide(body); a != ActionDeny {
			t.Fatalf("%s: %s; the largest cap field must count", body, a)
		}
	}
}

// FuzzCheckOpenAIBody: no body makes the check panic; a body it accepts
// is valid JSON, and every known field it holds with a non-null value is
// a fact of the type policy expects (so a rule never sees a field as
// absent because of its type).
func FuzzCheckOpenAIBody(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","max_tokens":8000}`, `{"max_tokens":"8000"}`, `{"n":2.5,"stream":true}`,
		`{"a":1,"a":2}`, `[1]`, `{"messages":[{"content":"x"}],"temperature":0.2}`, `{"model":"\ud800"}`,
		`{"max_tokens":1e400}`, `{"temperature":1e400}`, `{"input":["a"],"user":"u"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if CheckOpenAIBody(body) != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatalf("accepted %q, not an object: %v", body, err)
		}
		facts := BodyFacts(body)
		for field, fact := range map[string]string{"model": "model", "stream": "stream", "n": "n", "max_tokens": "max_tokens", "temperature": "temperature", "messages": "message_count", "user": "user"} {
			if v, ok := raw[field]; ok && string(v) != "null" {
				if _, has := facts[fact]; !has {
					t.Fatalf("accepted %q but policy sees no %s", body, fact)
				}
			}
		}
	})
}
