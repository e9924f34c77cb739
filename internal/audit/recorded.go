package audit

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// OnCommit sets f to receive every batch this process commits to the
// log, right after the batch is durable and its appends are answered:
// consecutive records with Seq, Data (the canonical bytes) and Entry
// (the entry as appended, before the encoding; see Entry.Recorded) set.
// nil removes it. f runs on the goroutine that answers the appends (the
// log's writer, or on SQLite the one that flushes: decision 026), so it
// must not block or take long (hand the records over and return), and it
// must treat the records as read-only.
//
// It is an optimisation for readers that follow the log in the same
// process (the exporter): they must not depend on it. Batches committed
// by other processes or replicas, batches committed while the log was
// catching up with its store, and queued (PostgreSQL replica) appends
// are not fed; the store has every record.
func (l *Log) OnCommit(f func([]Record)) {
	if f == nil {
		l.onCommit.Store(nil)
		return
	}
	l.onCommit.Store(&f)
}

// fedCommit hands a committed batch to the OnCommit function, if any.
func (l *Log) fedCommit(recs []Record) {
	if f := l.onCommit.Load(); f != nil {
		(*f)(recs)
	}
}

// Recorded returns the entry exactly as DecodeEntry returns it from e's
// canonical encoding (Marshal) — the principal reduced to what entries
// record, the time in UTC, numbers in Params and Details as json.Number
// with the text Marshal writes, []string and map[string]string as
// []any and map[string]any, empty optional fields nil — without
// encoding and decoding. ok is false when it cannot tell cheaply (a
// string that is not valid UTF-8, a value of another type in Params or
// Details); then decode the bytes instead. e is not modified; the result
// shares nothing mutable with it except unchanged strings.
func (e *Entry) Recorded() (r *Entry, ok bool) {
	c := *e
	c.Time = e.Time.UTC()
	if !validStrings(c.Kind, c.ID, c.RequestID, c.Instance, c.Route, c.Method, c.Path, c.Model,
		c.RequestSHA256, c.ApprovalID, c.GrantID, c.ResponseSHA256, c.Outcome) {
		return nil, false
	}
	if p := e.Principal; p != nil {
		if !validStrings(p.AuthMethod, p.CredentialID, p.Issuer, string(p.Kind), p.Name, p.Subject) ||
			!validStrings(p.Groups...) {
			return nil, false
		}
		c.Principal = recordPrincipal(p).principal()
		c.Principal.Groups = nilIfEmpty(slices.Clone(p.Groups))
	}
	if d := e.Decision; d != nil {
		if !validStrings(d.Action, d.Rule, d.PolicyVersion, d.Reason) {
			return nil, false
		}
		cd := *d
		c.Decision = &cd
	}
	c.Masking = nil
	if len(e.Masking) > 0 {
		c.Masking = make([]MaskAction, len(e.Masking))
		for i, m := range e.Masking {
			if !validStrings(m.Rule, m.Entity, m.Location, m.Fingerprint) {
				return nil, false
			}
			c.Masking[i] = m
		}
	}
	if c.Params, ok = recordedMap(e.Params, 0); !ok {
		return nil, false
	}
	if c.Details, ok = recordedMap(e.Details, 0); !ok {
		return nil, false
	}
	return &c, true
}

// recordedMap converts a top-level Params or Details map (empty: nil, as
// omitempty leaves it out).
func recordedMap(m map[string]any, depth int) (map[string]any, bool) {
	if len(m) == 0 {
		return nil, true
	}
	v, ok := recordedValue(m, depth)
	if !ok {
		return nil, false
	}
	return v.(map[string]any), true
}

// recordedValue returns v as encoding/json decodes (with UseNumber) what
// encoding/json wrote for it.
func recordedValue(v any, depth int) (any, bool) {
	if depth > 32 {
		return nil, false
	}
	switch x := v.(type) {
	case nil, bool:
		return x, true
	case string:
		return x, utf8.ValidString(x)
	case json.Number:
		if x == "" {
			return json.Number("0"), true
		}
		return x, true
	case int:
		return json.Number(strconv.FormatInt(int64(x), 10)), true
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), true
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10)), true
	case uint:
		return json.Number(strconv.FormatUint(uint64(x), 10)), true
	case uint64:
		return json.Number(strconv.FormatUint(x, 10)), true
	case uint32:
		return json.Number(strconv.FormatUint(uint64(x), 10)), true
	case float64, float32:
		b, err := json.Marshal(x) // encoding/json's float format, exactly
		if err != nil {
			return nil, false
		}
		return json.Number(b), true
	case []string:
		if x == nil {
			return nil, true
		}
		out := make([]any, len(x))
		for i, s := range x {
			if !utf8.ValidString(s) {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	case map[string]string:
		if x == nil {
			return nil, true
		}
		out := make(map[string]any, len(x))
		for k, s := range x {
			if !utf8.ValidString(k) || !utf8.ValidString(s) {
				return nil, false
			}
			out[k] = s
		}
		return out, true
	case []any:
		if x == nil {
			return nil, true
		}
		out := make([]any, len(x))
		for i, y := range x {
			var ok bool
			if out[i], ok = recordedValue(y, depth+1); !ok {
				return nil, false
			}
		}
		return out, true
	case map[string]any:
		if x == nil {
			return nil, true
		}
		out := make(map[string]any, len(x))
		for k, y := range x {
			if !utf8.ValidString(k) {
				return nil, false
			}
			var ok bool
			if out[k], ok = recordedValue(y, depth+1); !ok {
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

func validStrings(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// Recordable reports whether Recorded(e) succeeds, without building the
// copy: every string valid UTF-8 and every value in Params and Details
// of a type Recorded converts. For a recordable entry, each field holds
// what the decoded entry holds up to representation: the same strings
// (the principal's unrecorded fields aside), and in Params and Details
// values that encoding/json writes exactly as it writes their decoded
// form (int as the json.Number of its digits, []string as []any of the
// strings, …). Readers that only encode or compare strings (the
// exporter's mapping) can then use e itself.
func (e *Entry) Recordable() bool {
	if !validStrings(e.Kind, e.ID, e.RequestID, e.Instance, e.Route, e.Method, e.Path, e.Model,
		e.RequestSHA256, e.ApprovalID, e.GrantID, e.ResponseSHA256, e.Outcome) {
		return false
	}
	if p := e.Principal; p != nil {
		if !validStrings(p.AuthMethod, p.CredentialID, p.Issuer, string(p.Kind), p.Name, p.Subject) ||
			!validStrings(p.Groups...) {
			return false
		}
	}
	if d := e.Decision; d != nil && !validStrings(d.Action, d.Rule, d.PolicyVersion, d.Reason) {
		return false
	}
	for _, m := range e.Masking {
		if !validStrings(m.Rule, m.Entity, m.Location, m.Fingerprint) {
			return false
		}
	}
	return recordableMap(e.Params, 0) && recordableMap(e.Details, 0)
}

func recordableMap(m map[string]any, depth int) bool {
	for k, v := range m {
		if !utf8.ValidString(k) || !recordableValue(v, depth+1) {
			return false
		}
	}
	return true
}

// recordableValue reports whether recordedValue(v, depth) succeeds.
func recordableValue(v any, depth int) bool {
	if depth > 32 {
		return false
	}
	switch x := v.(type) {
	case nil, bool, json.Number, int, int64, int32, uint, uint64, uint32:
		return true
	case string:
		return utf8.ValidString(x)
	case float64:
		return !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0)
	case []string:
		return validStrings(x...)
	case map[string]string:
		for k, s := range x {
			if !utf8.ValidString(k) || !utf8.ValidString(s) {
				return false
			}
		}
		return true
	case []any:
		for _, y := range x {
			if !recordableValue(y, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		return recordableMap(x, depth)
	}
	return false
}
