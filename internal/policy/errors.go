package policy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/wardenhq/warden/internal/safeyaml"
)

// LoadError is one problem found while loading a policy. Load returns
// one LoadError, or several joined with errors.Join.
type LoadError struct {
	// File is the name given to Load (usually the path).
	File string
	// Line and Column locate the problem in the YAML (1-based; 0 when
	// unknown).
	Line, Column int
	// RuleIndex is the 0-based index of the rule concerned, or -1.
	RuleIndex int
	// Rule is the rule's name, when the problem concerns a rule.
	Rule string
	// Field is the key concerned, e.g. "when" or "approvals.x.mode".
	Field string
	// ExprLine and ExprColumn locate a CEL error inside the expression
	// (1-based; 0 when not an expression error).
	ExprLine, ExprColumn int
	// Msg says what is wrong.
	Msg string
}

// Error formats the problem as "file:line:col: rule[i] "name": field: msg".
func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.RuleIndex >= 0 {
		fmt.Fprintf(&b, "rule[%d]", e.RuleIndex)
		if e.Rule != "" {
			b.WriteString(" " + strconv.Quote(e.Rule))
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	if e.ExprLine > 0 {
		fmt.Fprintf(&b, " (expression %d:%d)", e.ExprLine, e.ExprColumn)
	}
	return b.String()
}

// positions finds YAML positions of keys in a policy document.
type positions struct {
	data []byte
	file *ast.File
}

func newPositions(data []byte) *positions {
	f, err := safeyaml.ParseBytes(data)
	if err != nil {
		return &positions{data: data}
	}
	return &positions{data: data, file: f}
}

// node returns the node at a goccy path such as "$.rules[2].when".
func (p *positions) node(path string) ast.Node {
	if p.file == nil {
		return nil
	}
	return safeyaml.Lookup(p.file, path)
}

// at returns line and column of the node at path, walking up the path
// until a node exists (a missing key is reported at its parent).
func (p *positions) at(path string) (int, int) {
	for path != "" && path != "$" {
		if n := p.node(path); n != nil {
			if t := n.GetToken(); t != nil && t.Position != nil {
				return t.Position.Line, t.Position.Column
			}
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			break
		}
		path = path[:i]
	}
	return 0, 0
}

// exprAt maps a position inside a rule's "when" expression (exprLine
// 1-based, exprCol 0-based) to a YAML line and column. For block scalars
// (| and >) each expression line is a YAML line; for single-line
// scalars the column is offset from the scalar's start.
func (p *positions) exprAt(path string, exprLine, exprCol int) (int, int) {
	n := p.node(path)
	if n == nil {
		return p.at(path)
	}
	t := n.GetToken()
	if t == nil || t.Position == nil {
		return 0, 0
	}
	line, col := t.Position.Line, t.Position.Column
	switch t.Type {
	case token.LiteralType, token.FoldedType:
		l := line + exprLine
		return l, p.indent(l) + exprCol + 1
	case token.SingleQuoteType, token.DoubleQuoteType:
		if exprLine == 1 {
			return line, col + 1 + exprCol
		}
		return line, col
	default:
		if exprLine == 1 {
			return line, col + exprCol
		}
		return line, col
	}
}

// indent returns the number of leading spaces of 1-based line l.
func (p *positions) indent(l int) int {
	lines := bytes.Split(p.data, []byte("\n"))
	if l < 1 || l > len(lines) {
		return 0
	}
	s := lines[l-1]
	return len(s) - len(bytes.TrimLeft(s, " "))
}

// yamlError converts a goccy decode error into a LoadError.
func yamlError(name string, err error) *LoadError {
	le := &LoadError{File: name, RuleIndex: -1, Msg: safeyaml.Message(err)}
	var te interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if asErr(err, &te) {
		if t := te.GetToken(); t != nil && t.Position != nil {
			le.Line, le.Column = t.Position.Line, t.Position.Column
		}
	}
	return le
}
