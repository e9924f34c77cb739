package policy

import (
	"encoding/json"
	"math"
)

// maxTools bounds the tool names BodyFacts reports.
const maxTools = estMaxListSize

// BodyFacts derives the facts rules may test from an OpenAI-style JSON
// request body (chat/completions, completions, embeddings, responses).
// It returns nil when body is not a JSON object. Keys are present only
// when the body has the corresponding field, except has_tools and tools,
// which are always present for a JSON object:
//
//	model          string
//	stream         bool
//	n              int
//	max_tokens     int (the largest of max_tokens, max_completion_tokens and max_output_tokens)
//	temperature    double
//	message_count  int   (len(messages))
//	input_count    int   (embeddings/responses "input": 1 for a string, else its length)
//	has_tools      bool  (true when tools or functions is a non-empty list)
//	tools          list of string (tool/function names, at most 256)
//	user           string
//
// Message contents are never copied into the facts. A field of the wrong
// type yields no fact: callers check the types first (CheckOpenAIBody) and
// refuse such a body, so a rule never mistakes "8000" for absent.
func BodyFacts(body []byte) map[string]any {
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
	// Servers differ on which of these wins when several are sent (vLLM
	// prefers max_completion_tokens, others max_tokens): a cap rule must
	// see the largest.
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
