package policy

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
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
//
// The facts are those encoding/json gives when the body is decoded into
// map[string]json.RawMessage and each field into its Go type (the
// implementation until decision 041, kept as the reference in the
// tests): the whole body must be valid JSON, the last copy of a
// duplicated field wins, invalid UTF-8 in strings becomes U+FFFD, null
// decodes as the zero value, and tool objects match "name" and
// "function" case-insensitively. It reads the body in one streaming pass.
func BodyFacts(body []byte) map[string]any {
	f, _ := scanFacts(body, false)
	return f
}

// CheckOpenAIBodyFacts is CheckOpenAIBody and BodyFacts in one pass over
// body: its error is CheckOpenAIBody(body), and when that is nil its
// facts are BodyFacts(body) (a body that passes the check has no
// duplicate names and valid UTF-8, so strict and lenient decoding read
// it alike). On a refused body the facts are nil and the check runs
// again on its own, so the error is CheckOpenAIBody's to the letter.
func CheckOpenAIBodyFacts(body []byte) (map[string]any, error) {
	f, err := scanFacts(body, true)
	if err != nil {
		return nil, CheckOpenAIBody(body)
	}
	return f, nil
}

// scanFacts reads body once. With check it decodes strictly, as
// CheckOpenAIBody does, and also checks the field types
// (OpenAIFieldTypes); else it decodes as encoding/json does.
func scanFacts(body []byte, check bool) (map[string]any, error) {
	s := factScanners.Get().(*factScanner)
	defer s.release()
	s.buf = *bytes.NewBuffer(body)
	s.check = check
	if check {
		s.dec.Reset(&s.buf)
	} else {
		s.dec.Reset(&s.buf, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	}
	return s.scan()
}

var factScanners = sync.Pool{New: func() any { return &factScanner{dec: jsontext.NewDecoder(bytes.NewReader(nil))} }}

var emptyReader = bytes.NewReader(nil)

// factScanner holds one pass's decoder and what the last copy of each
// field said.
type factScanner struct {
	dec   *jsontext.Decoder
	buf   bytes.Buffer
	check bool // strict decoding and OpenAIFieldTypes checks

	model, user              optString
	stream                   optBool
	n                        optInt
	maxOut, maxCompl, maxTok optInt
	temperature              optFloat
	messages, input          optInt
	tools, functions         toolList
}

type optString struct {
	ok bool
	v  string
}
type optBool struct{ ok, v bool }
type optInt struct {
	ok bool
	v  int64
}
type optFloat struct {
	ok bool
	v  float64
}

// toolList is what one "tools" or "functions" value decodes to: ok when
// it decodes into a list of {name, function: {name}} (null included),
// n elements, and their non-empty names (at most maxTools).
type toolList struct {
	ok    bool
	n     int
	names []string
}

func (s *factScanner) release() {
	tools, functions := s.tools.names[:0], s.functions.names[:0]
	clear(tools[:cap(tools)])
	clear(functions[:cap(functions)])
	*s = factScanner{dec: s.dec, tools: toolList{names: tools}, functions: toolList{names: functions}}
	s.dec.Reset(emptyReader) // drop the decoder's alias of the body
	factScanners.Put(s)
}

// errNotObject: the body is not one JSON object (BodyFacts returns nil).
var errNotObject = errors.New("request body is not one JSON object")

// scan returns the facts, or an error when the body is not one JSON
// object (or, with check, fails a type check).
func (s *factScanner) scan() (map[string]any, error) {
	d := s.dec
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, errNotObject
	}
	for d.PeekKind() != '}' {
		name, err := d.ReadToken()
		if err != nil {
			return nil, err
		}
		if err := s.field(name.String()); err != nil {
			return nil, err
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return nil, err
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return nil, errNotObject // trailing data or a syntax error after the object
	}
	return s.facts(), nil
}

// checkType applies CheckOpenAIBody's type check to the value of the
// known field name. Numbers need their literal: a number is read here and
// returned (nil for other kinds, which the caller then reads).
func (s *factScanner) checkType(name string, want []string) (jsontext.Value, error) {
	d := s.dec
	k := d.PeekKind()
	var got string
	var num jsontext.Value
	switch k {
	case 'n':
		return nil, nil // null: as absent
	case '0':
		v, err := d.ReadValue()
		if err != nil {
			return nil, err
		}
		num, got = v, kindName(k, string(v))
	default:
		got = kindName(k, "")
	}
	if !typeAllowed(got, want) {
		return nil, &FieldTypeError{Field: strings.Clone(name), Want: want, Got: got} // name may be on the stack
	}
	return num, nil
}

// field reads the value of the top-level field name.
func (s *factScanner) field(name string) error {
	d := s.dec
	if s.check {
		if want, known := OpenAIFieldTypes[name]; known {
			num, err := s.checkType(name, want)
			if err != nil {
				return err
			}
			if num != nil {
				s.number(name, num)
				return nil
			}
		}
	}
	switch name {
	case "model":
		return s.str(&s.model)
	case "user":
		return s.str(&s.user)
	case "stream":
		v, err := d.ReadValue()
		if err != nil {
			return err
		}
		switch v.Kind() {
		case 't', 'f', 'n':
			s.stream = optBool{true, v.Kind() == 't'}
		default:
			s.stream = optBool{}
		}
		return nil
	case "n":
		return s.integer(&s.n)
	case "max_output_tokens":
		return s.integer(&s.maxOut)
	case "max_completion_tokens":
		return s.integer(&s.maxCompl)
	case "max_tokens":
		return s.integer(&s.maxTok)
	case "temperature":
		v, err := d.ReadValue()
		if err != nil {
			return err
		}
		s.temperature = floatFact(v)
		return nil
	case "messages":
		return s.count(&s.messages, false)
	case "input":
		return s.count(&s.input, true)
	case "tools":
		return s.toolList(&s.tools)
	case "functions":
		return s.toolList(&s.functions)
	}
	return d.SkipValue()
}

// str: a string, or "" for null (encoding/json leaves a string alone on
// null).
func (s *factScanner) str(out *optString) error {
	d := s.dec
	switch d.PeekKind() {
	case '"':
		tok, err := d.ReadToken()
		if err != nil {
			return err
		}
		*out = optString{true, tok.String()}
		return nil
	case 'n':
		*out = optString{ok: true}
	default:
		*out = optString{}
	}
	return d.SkipValue()
}

// integer reads an integer fact.
func (s *factScanner) integer(out *optInt) error {
	v, err := s.dec.ReadValue()
	if err != nil {
		return err
	}
	*out = intFact(v)
	return nil
}

// intFact: a JSON number decoded as float64 (so 1e3 and 8000.0 count)
// with no fractional part within ±2^53; null is 0.
func intFact(v jsontext.Value) optInt {
	switch v.Kind() {
	case 'n':
		return optInt{ok: true}
	case '0':
		if n, err := strconv.ParseFloat(string(v), 64); err == nil && n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return optInt{true, int64(n)}
		}
	}
	return optInt{}
}

// floatFact: a JSON number within float64's range; null is 0.
func floatFact(v jsontext.Value) optFloat {
	switch v.Kind() {
	case 'n':
		return optFloat{ok: true}
	case '0':
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return optFloat{true, f}
		}
	}
	return optFloat{}
}

// number sets the fact of field name from the number v checkType read.
// The fields whose type admits a number are the numeric facts and fields
// with no fact.
func (s *factScanner) number(name string, v jsontext.Value) {
	switch name {
	case "n":
		s.n = intFact(v)
	case "max_output_tokens":
		s.maxOut = intFact(v)
	case "max_completion_tokens":
		s.maxCompl = intFact(v)
	case "max_tokens":
		s.maxTok = intFact(v)
	case "temperature":
		s.temperature = floatFact(v)
	}
}

// count: the length of an array, 0 for null; when stringIsOne (input),
// 1 for a string and for null (null decodes into the string first).
func (s *factScanner) count(out *optInt, stringIsOne bool) error {
	d := s.dec
	*out = optInt{}
	switch d.PeekKind() {
	case 'n':
		*out = optInt{ok: true}
		if stringIsOne {
			*out = optInt{true, 1}
		}
	case '"':
		if stringIsOne {
			*out = optInt{true, 1}
		}
	case '[':
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		var n int64
		for d.PeekKind() != ']' {
			if err := d.SkipValue(); err != nil {
				return err
			}
			n++
		}
		if _, err := d.ReadToken(); err != nil {
			return err
		}
		*out = optInt{true, n}
		return nil
	}
	return d.SkipValue()
}

// toolList decodes a "tools" or "functions" value as encoding/json
// decodes it into []struct{Name string; Function struct{Name string}}:
// elements must be objects or null, and "name" (a string or null) and
// "function" (an object or null) match case-insensitively; any other
// type makes the whole list undecodable.
func (s *factScanner) toolList(out *toolList) error {
	d := s.dec
	out.ok, out.n, out.names = false, 0, out.names[:0]
	switch d.PeekKind() {
	case 'n':
		out.ok = true
		return d.SkipValue()
	case '[':
	default:
		return d.SkipValue()
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	ok := true
	for {
		k := d.PeekKind()
		if k == ']' {
			break
		}
		out.n++
		switch k {
		case 'n':
			if err := d.SkipValue(); err != nil {
				return err
			}
		case '{':
			name, fname, good, err := s.toolObject()
			if err != nil {
				return err
			}
			ok = ok && good
			if fname != "" {
				name = fname
			}
			if name != "" && len(out.names) < maxTools {
				out.names = append(out.names, name)
			}
		default:
			ok = false
			if err := d.SkipValue(); err != nil {
				return err
			}
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return err
	}
	out.ok = ok
	return nil
}

// toolObject reads one tool object: its "name", its "function"'s "name"
// (the last non-null copy of each), and whether they had usable types.
func (s *factScanner) toolObject() (name, fname string, ok bool, err error) {
	d := s.dec
	if _, err := d.ReadToken(); err != nil {
		return "", "", false, err
	}
	ok = true
	for d.PeekKind() != '}' {
		key, err := d.ReadToken()
		if err != nil {
			return "", "", false, err
		}
		switch k := key.String(); {
		case strings.EqualFold(k, "name"):
			good, err := s.nameValue(&name)
			if err != nil {
				return "", "", false, err
			}
			ok = ok && good
		case strings.EqualFold(k, "function"):
			switch d.PeekKind() {
			case 'n':
				if err := d.SkipValue(); err != nil {
					return "", "", false, err
				}
			case '{':
				if _, err := d.ReadToken(); err != nil {
					return "", "", false, err
				}
				for d.PeekKind() != '}' {
					key, err := d.ReadToken()
					if err != nil {
						return "", "", false, err
					}
					if !strings.EqualFold(key.String(), "name") {
						if err := d.SkipValue(); err != nil {
							return "", "", false, err
						}
						continue
					}
					good, err := s.nameValue(&fname)
					if err != nil {
						return "", "", false, err
					}
					ok = ok && good
				}
				if _, err := d.ReadToken(); err != nil {
					return "", "", false, err
				}
			default:
				ok = false
				if err := d.SkipValue(); err != nil {
					return "", "", false, err
				}
			}
		default:
			if err := d.SkipValue(); err != nil {
				return "", "", false, err
			}
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return "", "", false, err
	}
	return name, fname, ok, nil
}

// nameValue reads a "name" value: a string replaces *out, null leaves it,
// anything else is a type error (ok false).
func (s *factScanner) nameValue(out *string) (ok bool, err error) {
	d := s.dec
	switch d.PeekKind() {
	case '"':
		tok, err := d.ReadToken()
		if err != nil {
			return false, err
		}
		*out = tok.String()
		return true, nil
	case 'n':
		return true, d.SkipValue()
	}
	return false, d.SkipValue()
}

func (s *factScanner) facts() map[string]any {
	f := make(map[string]any, 8) // one map group: most bodies have at most 8 facts
	if s.model.ok {
		f["model"] = s.model.v
	}
	if s.user.ok {
		f["user"] = s.user.v
	}
	if s.stream.ok {
		f["stream"] = s.stream.v
	}
	if s.n.ok {
		f["n"] = s.n.v
	}
	// Servers differ on which of these wins when several are sent (vLLM
	// prefers max_completion_tokens, others max_tokens): a cap rule must
	// see the largest.
	maxTok := optInt{}
	for _, m := range []optInt{s.maxOut, s.maxCompl, s.maxTok} {
		if m.ok && (!maxTok.ok || m.v > maxTok.v) {
			maxTok = m
		}
	}
	if maxTok.ok {
		f["max_tokens"] = maxTok.v
	}
	if s.temperature.ok {
		f["temperature"] = s.temperature.v
	}
	if s.messages.ok {
		f["message_count"] = s.messages.v
	}
	if s.input.ok {
		f["input_count"] = s.input.v
	}
	hasTools := false
	names := []string{}
	for _, l := range []*toolList{&s.tools, &s.functions} {
		if !l.ok {
			continue
		}
		if l.n > 0 {
			hasTools = true
		}
		for _, n := range l.names {
			if len(names) < maxTools {
				names = append(names, n)
			}
		}
	}
	f["has_tools"] = hasTools
	f["tools"] = names
	return f
}
