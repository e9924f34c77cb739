package safeyaml

import (
	"fmt"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Error is a problem found by this package (a refused tag, or a library
// panic turned into an error). It satisfies yaml.Error.
type Error struct {
	// Token is the offending token, or nil when unknown.
	Token *token.Token
	// Msg says what is wrong.
	Msg string
}

var _ yaml.Error = (*Error)(nil)

func (e *Error) Error() string {
	if e.Token != nil && e.Token.Position != nil {
		return fmt.Sprintf("[%d:%d] %s", e.Token.Position.Line, e.Token.Position.Column, e.Msg)
	}
	return e.Msg
}

// GetToken returns the offending token (nil when unknown).
func (e *Error) GetToken() *token.Token { return e.Token }

// GetMessage returns the message without position.
func (e *Error) GetMessage() string { return e.Msg }

// FormatError formats the error; colours and source are not offered.
func (e *Error) FormatError(bool, bool) string { return e.Error() }

// recovered turns a library panic into an *Error. It must be deferred
// directly by the function whose named error result it sets.
func recovered(err *error) {
	if r := recover(); r != nil {
		*err = &Error{Msg: fmt.Sprintf("malformed YAML: the parser failed on this document (%v); look for a stray tag (!) or broken indentation", r)}
	}
}

// ParseBytes parses data into a syntax tree and refuses tags.
func ParseBytes(data []byte) (*ast.File, error) {
	f, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if err := RefuseTags(f); err != nil {
		return nil, err
	}
	return f, nil
}

// Parse parses data into a syntax tree, tags and all. Call RefuseTags
// before decoding the tree; Parse is separate so a caller can index the
// tree first and name the key a refused tag sits under.
func Parse(data []byte) (f *ast.File, err error) {
	defer recovered(&err)
	return parser.ParseBytes(data, 0)
}

// NodeToValue decodes a node of a tree from ParseBytes into v.
func NodeToValue(n ast.Node, v any, opts ...yaml.DecodeOption) (err error) {
	defer recovered(&err)
	return yaml.NodeToValue(n, v, opts...)
}

// UnmarshalStrict decodes data into v, refusing unknown keys, duplicate
// keys and tags.
func UnmarshalStrict(data []byte, v any) (err error) {
	defer recovered(&err)
	if _, err := ParseBytes(data); err != nil {
		return err
	}
	// The tree only told us the document holds no tag; decoding from the
	// bytes keeps the library's own handling of empty documents.
	return yaml.UnmarshalWithOptions(data, v, yaml.Strict())
}

// Lookup returns the node at a YAML path such as "$.rules[2].when", or
// nil when there is none (or the path does not parse).
func Lookup(f *ast.File, path string) (n ast.Node) {
	if f == nil {
		return nil
	}
	defer func() {
		if recover() != nil {
			n = nil
		}
	}()
	yp, err := yaml.PathString(path)
	if err != nil {
		return nil
	}
	n, err = yp.FilterFile(f)
	if err != nil {
		return nil
	}
	return n
}

// RefuseTags returns an *Error for the first tag in the tree.
func RefuseTags(f *ast.File) (err error) {
	defer recovered(&err)
	v := &tagFinder{}
	for _, d := range f.Docs {
		ast.Walk(v, d)
		if v.tag != nil {
			return &Error{Token: v.tag, Msg: fmt.Sprintf("YAML tags are not supported here (found %q): write the plain value", v.tag.Value)}
		}
	}
	return nil
}

type tagFinder struct{ tag *token.Token }

func (t *tagFinder) Visit(n ast.Node) ast.Visitor {
	if t.tag != nil {
		return nil
	}
	if tn, ok := n.(*ast.TagNode); ok {
		t.tag = tn.Start
		return nil
	}
	return t
}
