package safeyaml

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Message returns what a decode error means to the person who wrote the
// file, without Go type or struct names: "expected a duration with a
// unit (30s, 5m, 1h), got the number 5". Errors it does not know keep
// their library message. The position is the caller's business (GetToken
// on the yaml.Error, when there is one).
func Message(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		got := describeSrc(te.SrcType)
		if tk := te.Token; tk != nil && isScalar(te.SrcType) {
			got = describeValue(te.SrcType, tk.Value)
		}
		msg := fmt.Sprintf("expected %s, got %s", describeDst(te.DstType), got)
		if te.DstType == durationType && isNumber(te.SrcType) {
			msg += " (a bare number has no unit: write e.g. " + te.Token.Value + "s)"
		}
		return msg
	}
	var oe *yaml.OverflowError
	if errors.As(err, &oe) {
		return fmt.Sprintf("%s is out of range for %s", oe.SrcNum, describeDst(oe.DstType))
	}
	var ne *yaml.UnexpectedNodeTypeError
	if errors.As(err, &ne) {
		return fmt.Sprintf("expected %s, got %s", describeNode(ne.Expected), describeNode(ne.Actual))
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		return ye.GetMessage()
	}
	msg := err.Error()
	if m := badDuration.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("expected %s, got %q", describeDst(durationType), m[1])
	}
	return msg
}

// badDuration matches time.ParseDuration's errors, which reach us without
// a token through the Duration decoder.
var badDuration = regexp.MustCompile(`^time: .*duration "([^"]*)"$`)

var durationType = reflect.TypeFor[time.Duration]()

func describeDst(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if t == durationType {
		return "a duration with a unit (30s, 5m, 1h)"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping (key: value lines)"
	}
	return "a " + t.Kind().String()
}

func describeSrc(t reflect.Type) string {
	if t == nil {
		return "nothing"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	}
	if isNumber(t) {
		return "a number"
	}
	return "a " + t.Kind().String()
}

func describeValue(t reflect.Type, v string) string {
	switch {
	case isNumber(t):
		return "the number " + v
	case t.Kind() == reflect.Bool:
		return "the boolean " + v
	}
	return fmt.Sprintf("the string %q", v)
}

func isNumber(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func isScalar(t reflect.Type) bool {
	return t != nil && (isNumber(t) || t.Kind() == reflect.Bool || t.Kind() == reflect.String)
}

// NodeKind says what a node is in the words of Message: "a list",
// "a mapping (key: value lines)", "a number" …
func NodeKind(n ast.Node) string {
	if n == nil {
		return "nothing"
	}
	return describeNode(n.Type())
}

func describeNode(t ast.NodeType) string {
	switch t {
	case ast.MappingType, ast.MappingValueType, ast.MappingKeyType:
		return "a mapping (key: value lines)"
	case ast.SequenceType, ast.SequenceEntryType:
		return "a list"
	case ast.IntegerType, ast.FloatType, ast.InfinityType, ast.NanType:
		return "a number"
	case ast.StringType, ast.LiteralType:
		return "a string"
	case ast.BoolType:
		return "a boolean"
	case ast.NullType:
		return "nothing (null)"
	}
	return strings.ToLower(t.String())
}
