package mask

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// stringHook lets a caller take over the masking of particular string values
// (the SSE masker routes delta fields to their channel). It returns the new
// value and true when it handled the value. It is only offered object
// members whose name is in hookNames.
type stringHook func(ptr jsontext.Pointer, val string) (string, bool)

// hookNames are the member names that can hold channel text.
var hookNames = map[string]bool{"content": true, "reasoning_content": true, "reasoning": true, "refusal": true, "text": true, "arguments": true, "delta": true}

// errNotOneValue: the text holds more than one JSON value.
var errNotOneValue = errors.New("mask: json: more than one JSON value")

// MaskJSON masks a JSON document: every decoded string value (and member
// name) is scanned, json_paths rules replace whole fields, numbers long
// enough to be an identifier are scanned as text (a masked number becomes a
// string). Only the rewritten values change; every other byte of in is kept.
// When nothing is masked, in itself is returned. Invalid JSON, and text
// holding more than one JSON value, is an error.
func (m *Masker) MaskJSON(in []byte, rec *Recorder) ([]byte, error) {
	out, changed, err := m.rewriteJSON(string(in), rec, "", nil)
	if err != nil || !changed {
		return in, err
	}
	return []byte(out), nil
}

// RedactJSONForLog masks a request body for logging and recording with the
// same detectors; a body that is not JSON is masked as text. The actions
// are returned rather than recorded, since they concern the request.
func (m *Masker) RedactJSONForLog(body []byte) ([]byte, []Action) {
	rec := NewRecorder()
	out, err := m.MaskJSON(body, rec)
	if err != nil {
		rec = NewRecorder()
		out = []byte(m.MaskText(string(body), "request:body", rec))
	}
	acts := rec.Actions()
	for i := range acts {
		acts[i].Location = "request:" + acts[i].Location
	}
	return out, acts
}

// jsonDecoder is a pooled decoder with its reader.
type jsonDecoder struct {
	r   strings.Reader
	dec *jsontext.Decoder
}

var decoderPool = sync.Pool{New: func() any {
	d := new(jsonDecoder)
	d.dec = jsontext.NewDecoder(&d.r, jsontext.AllowDuplicateNames(true))
	return d
}}

// rewriteJSON masks the JSON text in; changed is false when out == in.
func (m *Masker) rewriteJSON(in string, rec *Recorder, locPrefix string, hook stringHook) (out string, changed bool, err error) {
	b, changed, err := m.rewriteJSONInto(nil, in, rec, locPrefix, hook)
	switch {
	case err != nil:
		return "", false, err
	case !changed:
		return in, false, nil
	}
	return string(b), true, nil
}

// rewriteJSONInto is rewriteJSON writing the masked text into dst's
// storage (grown as needed): callers with a pooled buffer avoid allocating
// the output. When nothing changes it returns dst[:0] and false.
func (m *Masker) rewriteJSONInto(dst []byte, in string, rec *Recorder, locPrefix string, hook stringHook) (out []byte, changed bool, err error) {
	jd := decoderPool.Get().(*jsonDecoder)
	defer decoderPool.Put(jd)
	jd.r.Reset(in)
	dec := jd.dec
	dec.Reset(&jd.r, jsontext.AllowDuplicateNames(true))
	b := dst[:0]
	started := false
	last := 0
	lastName := "" // the member name of the value being read, in objects
	var pre lookback
	values := 0 // top-level values read
	replace := func(start, end int, s string) error {
		if !started {
			started = true
			if cap(b) < len(in)+64 {
				b = make([]byte, 0, len(in)+64)
			}
		}
		b = append(b, in[last:start]...)
		var err error
		b, err = jsontext.AppendQuote(b, s)
		last = end
		return err
	}
	for {
		kind := dec.PeekKind()
		if kind == 0 {
			_, err := dec.ReadToken()
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, false, fmt.Errorf("mask: json: %w", err)
		}
		depth := dec.StackDepth()
		if depth == 0 {
			// A second top-level value ("4111 1111 1111 1111" reads as four
			// numbers) would let a value hide in pieces: refused.
			if values > 0 {
				return nil, false, errNotOneValue
			}
			values++
		}
		top, length := dec.StackIndex(depth)
		isName := top == '{' && length%2 == 0
		switch kind {
		case '}', ']':
			if _, err := dec.ReadToken(); err != nil {
				return nil, false, fmt.Errorf("mask: json: %w", err)
			}
			continue
		case '{', '[':
			if _, err := dec.ReadToken(); err != nil {
				return nil, false, fmt.Errorf("mask: json: %w", err)
			}
			if len(m.pathRules) == 0 {
				continue
			}
			ptr := dec.StackPointer()
			r := m.matchPath(ptr)
			if r == nil {
				continue
			}
			start := int(dec.InputOffset()) - 1
			for dec.StackDepth() > depth {
				if _, err := dec.ReadToken(); err != nil {
					return nil, false, fmt.Errorf("mask: json: %w", err)
				}
			}
			end := int(dec.InputOffset())
			if err := replace(start, end, m.maskField(r, in[start:end], locPrefix+pointerPath(ptr), rec)); err != nil {
				return nil, false, err
			}
			continue
		}
		rawv, err := dec.ReadValue()
		if err != nil {
			return nil, false, fmt.Errorf("mask: json: %w", err)
		}
		end := int(dec.InputOffset())
		start := end - len(rawv)
		raw := in[start:end]
		var ptr jsontext.Pointer
		havePtr := false
		if !isName && len(m.pathRules) > 0 {
			ptr, havePtr = dec.StackPointer(), true
			if r := m.matchPath(ptr); r != nil {
				val := raw
				if kind == '"' {
					val = unquote(raw)
				}
				if err := replace(start, end, m.maskField(r, val, locPrefix+pointerPath(ptr), rec)); err != nil {
					return nil, false, err
				}
				continue
			}
		}
		var val string
		switch kind {
		case '"':
			val = unquote(raw)
			if isName {
				lastName = val
			}
		case '0':
			if len(raw) < 9 {
				continue // too short to be an identifier (9 digits: a labelled SSN)
			}
			val = raw
		default:
			continue
		}
		if hook != nil && !isName && top == '{' && hookNames[lastName] {
			if !havePtr {
				ptr, havePtr = dec.StackPointer(), true
			}
			if nv, ok := hook(ptr, val); ok {
				if nv != val {
					if err := replace(start, end, nv); err != nil {
						return nil, false, err
					}
				}
				continue
			}
		}
		var o scanOpts
		if !isName && top == '{' && lastName != "" {
			// The member name is the label before the value: {"ssn":"…"}.
			pre.set(lastName)
			pre.push(": ")
			o.pre = &pre
		}
		edits, _ := m.scan(val, true, nil, o)
		if len(edits) == 0 {
			continue
		}
		if !havePtr {
			ptr = dec.StackPointer()
		}
		loc := locPrefix + pointerPath(ptr)
		if isName {
			loc += "(name)"
		}
		record(rec, loc, edits)
		if err := replace(start, end, applyString(val, edits)); err != nil {
			return nil, false, err
		}
	}
	if !started {
		return dst[:0], false, nil
	}
	return append(b, in[last:]...), true, nil
}

// unquote decodes a raw JSON string token (already validated by the decoder).
func unquote(raw string) string {
	if strings.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1]
	}
	b, err := jsontext.AppendUnquote(nil, raw)
	if err != nil {
		return string(raw)
	}
	return string(b)
}

func (m *Masker) matchPath(ptr jsontext.Pointer) *rule {
	for _, pr := range m.pathRules {
		if pr.match(ptr) {
			return pr.rule
		}
	}
	return nil
}

// maskField replaces a whole field matched by a json_paths rule.
func (m *Masker) maskField(r *rule, val, loc string, rec *Recorder) string {
	canon := canonical(r.entity, val, val, false)
	fp := m.fingerprint(r.entity, canon)
	rec.add(Action{Rule: r.name, Entity: r.entity, Location: loc, Count: 1, Fingerprint: fp})
	return replacement(r.style, r.entity, canon, fp)
}
