package audit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IndexFields are what an entry contributes to a store's search indexes.
// Stores index them for Query; verification never trusts them (it reads
// only the canonical bytes).
type IndexFields struct {
	// Subject is the principal's subject ("" without a principal).
	Subject string
	// Action is the decision's action ("" without a decision).
	Action string
	// Text is the full-text document: the decision reason, then the keys
	// and scalar values of Params and Details in a stable order.
	Text string
	// MaskRules are the distinct masking rules of the entry, in order.
	MaskRules []string
}

// Index returns e's search index fields. Every store uses it, so a query
// finds the same entries whichever store holds them.
func Index(e *Entry) IndexFields {
	var f IndexFields
	if e.Principal != nil {
		f.Subject = e.Principal.Subject
	}
	// Most entries have a few text parts: on the stack, not grown on the
	// heap (the index writer calls Index for every entry, decision 050).
	var buf [16]string
	text := buf[:0]
	if e.Decision != nil {
		f.Action = e.Decision.Action
		if e.Decision.Reason != "" {
			text = append(text, e.Decision.Reason)
		}
	}
	text = flattenText(text, e.Params)
	text = flattenText(text, e.Details)
	f.Text = strings.Join(text, " ")
	if len(e.Masking) > 0 {
		f.MaskRules = make([]string, 0, len(e.Masking))
	}
	for _, m := range e.Masking {
		if !slices.Contains(f.MaskRules, m.Rule) {
			f.MaskRules = append(f.MaskRules, m.Rule)
		}
	}
	return f
}

// flattenText appends the keys and scalar values found in v, in a stable
// order.
func flattenText(out []string, v any) []string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, k)
			out = flattenText(out, x[k])
		}
	case []any:
		for _, y := range x {
			out = flattenText(out, y)
		}
	case string:
		out = append(out, x)
	case json.Number:
		out = append(out, x.String())
	case bool:
		out = append(out, strconv.FormatBool(x)) // as fmt.Sprint, without its printer
	case nil:
	default:
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// Matches reports whether e meets q's filters, all but Text (which is the
// index's tokenizer's to decide). Log.Search applies it to what the index
// selected, so an altered index row cannot put an entry into results it
// does not belong to (it can still leave one out: warden index check).
func (q Query) Matches(e *Entry) bool {
	f := Index(e)
	eq := func(want, got string) bool { return want == "" || want == got }
	switch {
	case !eq(q.Principal, f.Subject), !eq(q.Route, e.Route), !eq(q.Model, e.Model),
		!eq(q.Kind, e.Kind), !eq(q.RequestID, e.RequestID), !eq(q.ApprovalID, e.ApprovalID),
		!eq(q.Action, f.Action):
		return false
	case !q.From.IsZero() && e.Time.Before(q.From), !q.To.IsZero() && !e.Time.Before(q.To):
		return false
	case e.Seq < q.Start, q.End > 0 && e.Seq >= q.End:
		return false
	case q.MaskRule != "" && !slices.Contains(f.MaskRules, q.MaskRule):
		return false
	}
	return true
}
