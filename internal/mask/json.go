package mask

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/go-json-experiment/json/jsontext"
)

// stringHook lets a caller take over the masking of particular string values
// (the SSE masker routes delta fields to their channel). It returns the new
// value and true when it handled the value.
type stringHook func(ptr jsontext.Pointer, val string) (string, bool)

// MaskJSON masks a JSON document: every decoded string value (and member
// name) is scanned, json_paths rules replace whole fields, numbers long
// enough to be an identifier are scanned as text (a masked number becomes a
// string). Only the rewritten values change; every other byte of in is kept.
// When nothing is masked, in itself is returned. Invalid JSON is an error.
func (m *Masker) MaskJSON(in []byte, rec *Recorder) ([]byte, error) {
	return m.rewriteJSON(in, rec, "", nil)
}

// RedactJSONForLog masks a request body for logging and recording with the
// same detectors; a body that is not JSON is masked as text. The actions
// are returned rather than recorded, since they concern the request.
func (m *Masker) RedactJSONForLog(body []byte) ([]byte, []Action) {
	rec := NewRecorder()
	out, err := m.rewriteJSON(body, rec, "request:", nil)
	if err != nil {
		rec = NewRecorder()
		out = []byte(m.MaskText(string(body), "request:body", rec))
	}
	return out, rec.Actions()
}

func (m *Masker) rewriteJSON(in []byte, rec *Recorder, locPrefix string, hook stringHook) ([]byte, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(in), jsontext.AllowDuplicateNames(true))
	var out []byte
	last := 0
	replace := func(start, end int, s string) error {
		if out == nil {
			out = make([]byte, 0, len(in)+64)
		}
		out = append(out, in[last:start]...)
		var err error
		out, err = jsontext.AppendQuote(out, s)
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
			return nil, fmt.Errorf("mask: json: %w", err)
		}
		depth := dec.StackDepth()
		top, length := dec.StackIndex(depth)
		isName := top == '{' && length%2 == 0
		switch kind {
		case '}', ']':
			if _, err := dec.ReadToken(); err != nil {
				return nil, fmt.Errorf("mask: json: %w", err)
			}
			continue
		case '{', '[':
			if _, err := dec.ReadToken(); err != nil {
				return nil, fmt.Errorf("mask: json: %w", err)
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
					return nil, fmt.Errorf("mask: json: %w", err)
				}
			}
			end := int(dec.InputOffset())
			if err := replace(start, end, m.maskField(r, string(in[start:end]), locPrefix+pointerPath(ptr), rec)); err != nil {
				return nil, err
			}
			continue
		}
		raw, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("mask: json: %w", err)
		}
		end := int(dec.InputOffset())
		start := end - len(raw)
		var ptr jsontext.Pointer
		havePtr := false
		if !isName && len(m.pathRules) > 0 {
			ptr, havePtr = dec.StackPointer(), true
			if r := m.matchPath(ptr); r != nil {
				val := string(raw)
				if kind == '"' {
					val = unquote(raw)
				}
				if err := replace(start, end, m.maskField(r, val, locPrefix+pointerPath(ptr), rec)); err != nil {
					return nil, err
				}
				continue
			}
		}
		var val string
		switch kind {
		case '"':
			val = unquote(raw)
		case '0':
			if len(raw) < 12 {
				continue
			}
			val = string(raw)
		default:
			continue
		}
		if hook != nil && !isName {
			if !havePtr {
				ptr, havePtr = dec.StackPointer(), true
			}
			if nv, ok := hook(ptr, val); ok {
				if nv != val {
					if err := replace(start, end, nv); err != nil {
						return nil, err
					}
				}
				continue
			}
		}
		edits, _ := m.scan(val, true, "", nil, nil)
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
		if err := replace(start, end, m.MaskText(val, loc, rec)); err != nil {
			return nil, err
		}
	}
	if out == nil {
		return in, nil
	}
	return append(out, in[last:]...), nil
}

// unquote decodes a raw JSON string token (already validated by the decoder).
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
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
	canon := canonical(r.entity, val)
	fp := m.fingerprint(r.entity, canon)
	rec.add(Action{Rule: r.name, Entity: r.entity, Location: loc, Count: 1, Fingerprint: fp})
	return replacement(r.style, r.entity, canon, fp)
}
