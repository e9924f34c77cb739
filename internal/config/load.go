package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"

	"github.com/wardenhq/warden/internal/config/field"
	"github.com/wardenhq/warden/internal/safeyaml"
)

// Error is a configuration error located in the file.
type Error struct {
	File   string // path of the config file ("" when loaded from memory)
	Line   int    // 1-based line, 0 when unknown
	Column int    // 1-based column, 0 when unknown
	Key    string // key path, e.g. "routes[0].upstream"; "" when unknown
	Msg    string // what is wrong
	Err    error  // the cause, when the problem came from elsewhere (KeyError)
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("config")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, expands, strictly decodes, defaults and validates the file at
// path. Every error is an *Error (several are joined with errors.Join).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for bytes already read; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	var cfg Config
	if err := decodeStrict(name, data, &cfg); err != nil {
		return nil, err
	}
	cfg.file, cfg.src = name, data
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, locate(name, data, err)
	}
	return &cfg, nil
}

// decodeStrict parses data, expands ${VAR} in string scalars and decodes
// into v, refusing unknown keys.
func decodeStrict(name string, data []byte, v any) error {
	f, err := safeyaml.Parse(data)
	if err != nil {
		return yamlError(name, nil, nil, err)
	}
	idx, vals := indexKeys(f)
	if err := safeyaml.RefuseTags(f); err != nil {
		return yamlError(name, idx, vals, err)
	}
	var expErrs []error
	for _, d := range f.Docs {
		ast.Walk(&expander{name: name, idx: idx, errs: &expErrs}, d)
	}
	if len(expErrs) > 0 {
		return errors.Join(expErrs...)
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return &Error{File: name, Msg: "file is empty"}
	}
	if len(f.Docs) > 1 {
		return &Error{File: name, Msg: "more than one YAML document"}
	}
	if err := safeyaml.NodeToValue(f.Docs[0].Body, v, yaml.DisallowUnknownField()); err != nil {
		return yamlError(name, idx, vals, err)
	}
	return nil
}

// yamlError turns a go-yaml error into an *Error with line and key.
func yamlError(name string, idx map[pos]string, vals map[pos]string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		tk := ye.GetToken()
		e := &Error{File: name, Msg: safeyaml.Message(err)}
		if tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
			e.Key = idx[pos{e.Line, e.Column}]
		}
		if u := (*yaml.UnknownFieldError)(nil); errors.As(err, &u) {
			e.Msg = strings.Replace(e.Msg, "unknown field", "unknown key", 1) + " (misspelled, or not valid here)"
		}
		return e
	}
	// Errors without a token (e.g. a bad duration, `time: unknown unit " s"
	// in duration "5 s"`): locate the scalar the message quotes.
	e := &Error{File: name, Msg: safeyaml.Message(err)}
	if m := quoted.FindAllStringSubmatch(err.Error(), -1); len(m) > 0 {
		want := m[len(m)-1][1]
		for p, key := range idx {
			if vals[p] == want {
				e.Line, e.Column, e.Key = p.line, p.col, key
				break
			}
		}
	}
	return e
}

var quoted = regexp.MustCompile(`"([^"]*)"`)

type pos struct{ line, col int }

// indexKeys maps the position of every key and value token to its key
// path, and the position of every scalar value to its text.
func indexKeys(f *ast.File) (map[pos]string, map[pos]string) {
	idx, vals := map[pos]string{}, map[pos]string{}
	var walk func(n ast.Node, path string)
	mark := func(tk *token.Token, path string) {
		if tk != nil && tk.Position != nil {
			idx[pos{tk.Position.Line, tk.Position.Column}] = path
			vals[pos{tk.Position.Line, tk.Position.Column}] = tk.Value
		}
	}
	walk = func(n ast.Node, path string) {
		switch n := n.(type) {
		case *ast.MappingNode:
			for _, mv := range n.Values {
				walk(mv, path)
			}
		case *ast.MappingValueNode:
			p := n.Key.String()
			if path != "" {
				p = path + "." + p
			}
			mark(n.Key.GetToken(), p)
			mark(n.Value.GetToken(), p)
			walk(n.Value, p)
		case *ast.SequenceNode:
			for i, v := range n.Values {
				p := path + "[" + strconv.Itoa(i) + "]"
				mark(v.GetToken(), p)
				walk(v, p)
			}
		case *ast.DocumentNode:
			walk(n.Body, path)
		case *ast.TagNode:
			walk(n.Value, path)
		case *ast.AnchorNode:
			walk(n.Value, path)
		}
	}
	for _, d := range f.Docs {
		walk(d, "")
	}
	return idx, vals
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

type expander struct {
	name string
	idx  map[pos]string
	errs *[]error
}

func (x *expander) Visit(n ast.Node) ast.Visitor {
	s, ok := n.(*ast.StringNode)
	if !ok || !strings.Contains(s.Value, "${") {
		return x
	}
	s.Value = envRef.ReplaceAllStringFunc(s.Value, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if v, ok := os.LookupEnv(m[1]); ok {
			return v
		}
		if m[2] != "" {
			return m[3]
		}
		e := &Error{File: x.name, Msg: fmt.Sprintf("environment variable %s is not set (referenced as ${%s})", m[1], m[1])}
		if tk := s.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
			e.Key = x.idx[pos{e.Line, e.Column}]
		}
		*x.errs = append(*x.errs, e)
		return ""
	})
	return x
}

// KeyError locates a problem found after loading (a policy file that
// does not exist, a store that cannot be reached) at the key that
// configures it: "warden.yaml:12:9: policy.file: <err>". key is a path
// such as "policy.file" or "audit.dsn"; a key the file does not set is
// reported at its nearest parent, or without a line.
func (c *Config) KeyError(key string, err error) *Error {
	e := &Error{File: c.file, Key: key, Msg: err.Error(), Err: err}
	if f, perr := safeyaml.Parse(c.src); perr == nil {
		e.Line, e.Column = lineOf(f, key)
	}
	return e
}

// locate turns *field.Error values inside err into *Error with the line of
// the key they name (or of its nearest existing parent).
func locate(name string, data []byte, err error) error {
	f, perr := safeyaml.ParseBytes(data)
	var errs []error
	for _, e := range flatten(err) {
		var fe *field.Error
		if !errors.As(e, &fe) {
			errs = append(errs, &Error{File: name, Msg: e.Error()})
			continue
		}
		ce := &Error{File: name, Key: fe.Path, Msg: fe.Msg}
		if perr == nil {
			ce.Line, ce.Column = lineOf(f, fe.Path)
		}
		errs = append(errs, ce)
	}
	return errors.Join(errs...)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// lineOf finds the node for a key path, trimming the path until a node
// exists (a missing key is reported at its parent).
func lineOf(f *ast.File, keyPath string) (int, int) {
	p := keyPath
	for p != "" {
		if n := safeyaml.Lookup(f, "$."+p); n != nil {
			if tk := n.GetToken(); tk != nil && tk.Position != nil {
				return tk.Position.Line, tk.Position.Column
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0, 0
}
