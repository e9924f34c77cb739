package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestIndexFields pins what Index makes of an entry (the index writer
// and Query.Matches both use it): the text in its stable order, scalars
// formatted as fmt.Sprint does, and the distinct mask rules in order.
func TestIndexFields(t *testing.T) {
	var many []any
	var manyText []string
	for i := range 40 { // past Index's stack buffer of parts
		many = append(many, fmt.Sprintf("w%d", i))
		manyText = append(manyText, fmt.Sprintf("w%d", i))
	}
	tests := []struct {
		name  string
		e     Entry
		text  string
		rules []string
	}{
		{"empty", Entry{}, "", nil},
		{"reason and params", Entry{Decision: &Decision{Action: "deny", Reason: "too many"}, Params: map[string]any{"stream": false, "n": json.Number("3"), "model": "m"}},
			"too many model m n 3 stream false", nil},
		{"scalars", Entry{Params: map[string]any{"t": true, "f": 1.5, "i": int64(-2), "z": nil}}, "f 1.5 i -2 t true z", nil},
		{"nested", Entry{Params: map[string]any{"a": []any{"x", map[string]any{"b": true}}}, Details: map[string]any{"d": "e"}}, "a x b true d e", nil},
		{"many", Entry{Params: map[string]any{"k": many}}, "k " + strings.Join(manyText, " "), nil},
		{"rules", Entry{Masking: []MaskAction{{Rule: "email"}, {Rule: "card"}, {Rule: "email"}, {Rule: ""}}}, "", []string{"email", "card", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Index(&tt.e)
			if f.Text != tt.text || !slices.Equal(f.MaskRules, tt.rules) || (tt.rules == nil) != (f.MaskRules == nil) {
				t.Errorf("Index = %q %q, want %q %q", f.Text, f.MaskRules, tt.text, tt.rules)
			}
		})
	}
}
