package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// JSON value types a known OpenAI request field may have.
const (
	TypeString  = "string"
	TypeInteger = "integer"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeArray   = "array"
	TypeObject  = "object"
)

// OpenAIFieldTypes are the types CheckOpenAIBody accepts for the known
// top-level fields of OpenAI-style request bodies (chat/completions,
// completions, embeddings, responses). A field may also be null (the API
// treats null as absent). Fields not listed are not checked.
var OpenAIFieldTypes = map[string][]string{
	"model":                 {TypeString},
	"messages":              {TypeArray},
	"input":                 {TypeString, TypeArray},
	"prompt":                {TypeString, TypeArray},
	"instructions":          {TypeString},
	"stream":                {TypeBoolean},
	"stream_options":        {TypeObject},
	"n":                     {TypeInteger},
	"max_tokens":            {TypeInteger},
	"max_completion_tokens": {TypeInteger},
	"max_output_tokens":     {TypeInteger},
	"best_of":               {TypeInteger},
	"seed":                  {TypeInteger},
	"top_logprobs":          {TypeInteger},
	"dimensions":            {TypeInteger},
	"temperature":           {TypeNumber},
	"top_p":                 {TypeNumber},
	"presence_penalty":      {TypeNumber},
	"frequency_penalty":     {TypeNumber},
	"logprobs":              {TypeBoolean, TypeInteger}, // chat: bool; legacy completions: int
	"echo":                  {TypeBoolean},
	"store":                 {TypeBoolean},
	"parallel_tool_calls":   {TypeBoolean},
	"user":                  {TypeString},
	"stop":                  {TypeString, TypeArray},
	"tools":                 {TypeArray},
	"functions":             {TypeArray},
	"tool_choice":           {TypeString, TypeObject},
	"function_call":         {TypeString, TypeObject},
	"response_format":       {TypeObject},
	"logit_bias":            {TypeObject},
	"metadata":              {TypeObject},
	"reasoning":             {TypeObject},
	"reasoning_effort":      {TypeString},
	"encoding_format":       {TypeString},
	"previous_response_id":  {TypeString},
}

// FieldTypeError says which field of a request body has the wrong type.
// Its message names the field, the types allowed and the type found, and
// never the value.
type FieldTypeError struct {
	// Field is the top-level field name ("" when the body itself is wrong).
	Field string
	// Want are the allowed types.
	Want []string
	// Got is the JSON type found ("duplicate" for a field given twice).
	Got string
}

func (e *FieldTypeError) Error() string {
	switch {
	case e.Field == "":
		return "request body must be a JSON object, got " + article(e.Got) + " " + e.Got
	case e.Got == "duplicate":
		return fmt.Sprintf("field %q appears more than once", e.Field)
	}
	want := e.Want[0]
	for i := 1; i < len(e.Want); i++ {
		sep := ", "
		if i == len(e.Want)-1 {
			sep = " or "
		}
		want += sep + e.Want[i]
	}
	return fmt.Sprintf("field %q must be %s %s, got %s", e.Field, article(want), want, article(e.Got)+" "+e.Got)
}

func article(s string) string {
	if s != "" && bytes.ContainsRune([]byte("aeiou"), rune(s[0])) {
		return "an"
	}
	return "a"
}

// CheckOpenAIBody checks the types of the known fields of an OpenAI-style
// JSON request body (OpenAIFieldTypes) before policy sees it, so a rule
// comparing body.max_tokens with a number cannot be passed by sending
// "8000" as a string. It also refuses a body that is not one JSON object
// and any field given twice (parsers disagree on which copy wins). It
// returns nil, a *FieldTypeError, or a syntax error for invalid JSON.
//
// Integers are JSON numbers with no fractional part within ±2^53.
func CheckOpenAIBody(body []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	tok, err := dec.ReadToken()
	if err != nil {
		return syntaxOrDuplicate("", err)
	}
	if tok.Kind() != '{' {
		return &FieldTypeError{Got: kindName(tok.Kind(), "")}
	}
	for dec.PeekKind() != '}' {
		nameTok, err := dec.ReadToken()
		if err != nil {
			return syntaxOrDuplicate("", err)
		}
		name := nameTok.String()
		want, known := OpenAIFieldTypes[name]
		if !known {
			if err := dec.SkipValue(); err != nil {
				return syntaxOrDuplicate(name, err)
			}
			continue
		}
		k := dec.PeekKind()
		var got string
		switch k {
		case '{', '[':
			got = kindName(k, "")
			if err := dec.SkipValue(); err != nil {
				return syntaxOrDuplicate(name, err)
			}
		default:
			v, err := dec.ReadToken()
			if err != nil {
				return syntaxOrDuplicate(name, err)
			}
			if k == 'n' {
				continue // null: as absent
			}
			got = kindName(k, v.String())
		}
		if !typeAllowed(got, want) {
			return &FieldTypeError{Field: name, Want: want, Got: got}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return syntaxOrDuplicate("", err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return errors.New("request body holds more than one JSON value")
	}
	return nil
}

func typeAllowed(got string, want []string) bool {
	for _, w := range want {
		if got == w || (w == TypeNumber && got == TypeInteger) {
			return true
		}
	}
	return false
}

// kindName is the JSON type of a token; numbers are "integer" when the
// literal is integral within ±2^53, else "number".
func kindName(k jsontext.Kind, lit string) string {
	switch k {
	case '"':
		return TypeString
	case 't', 'f':
		return TypeBoolean
	case '{':
		return TypeObject
	case '[':
		return TypeArray
	case 'n':
		return "null"
	case '0':
		f, err := strconv.ParseFloat(lit, 64)
		switch {
		case err != nil:
			// 1e400: policy could not hold it as a number at all.
			return "number out of range"
		case f == math.Trunc(f) && math.Abs(f) < 1<<53:
			return TypeInteger
		}
		return TypeNumber
	}
	return "invalid"
}

// maxFieldName bounds the (client-chosen) name an error repeats.
const maxFieldName = 128

// syntaxOrDuplicate turns a decoder error into a duplicate-field error
// when that is what it is.
func syntaxOrDuplicate(field string, err error) error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) && errors.Is(se.Err, jsontext.ErrDuplicateName) {
		name := field
		if p := se.JSONPointer; len(p) > 1 {
			name = p.LastToken()
			if strings.Count(string(p), "/") > 1 {
				name = string(p) // nested: the JSON pointer says where
			}
		}
		if len(name) > maxFieldName {
			name = name[:maxFieldName] + "…"
		}
		return &FieldTypeError{Field: name, Got: "duplicate"}
	}
	return err
}
