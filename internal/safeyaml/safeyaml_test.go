package safeyaml

import (
	"errors"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

type doc struct {
	Version int      `yaml:"version"`
	Rules   []string `yaml:"rules"`
	Meta    map[string]string
}

// TestNoPanic: documents that make goccy/go-yaml v1.19.2 panic (issue
// #735 and the shape found in the trials, `rules:  ! `) come back as an
// error with the tag's line and column.
func TestNoPanic(t *testing.T) {
	for _, tc := range []struct {
		in         string
		line, col  int
		wantSubstr string
	}{
		{"rules:  ! \n", 1, 9, `found "!"`},
		{"version: 1\nrules: !00\n00000\n", 2, 8, "tags are not supported"},
		{"version: !!int 1\n", 1, 10, "tags are not supported"},
		{"meta:\n  a: !custom b\n", 2, 6, `found "!custom"`},
	} {
		var d doc
		err := UnmarshalStrict([]byte(tc.in), &d)
		if err == nil {
			t.Fatalf("%q: no error", tc.in)
		}
		var ye yaml.Error
		if !errors.As(err, &ye) || ye.GetToken() == nil {
			t.Fatalf("%q: %v is not a positioned yaml.Error", tc.in, err)
		}
		if p := ye.GetToken().Position; p.Line != tc.line || p.Column != tc.col {
			t.Errorf("%q: at %d:%d, want %d:%d", tc.in, p.Line, p.Column, tc.line, tc.col)
		}
		if !strings.Contains(err.Error(), tc.wantSubstr) {
			t.Errorf("%q: %v does not say %q", tc.in, err, tc.wantSubstr)
		}
	}
}

// TestLibraryStillPanics documents why this package exists: if a future
// go-yaml release stops panicking on the trial's input, this test says
// the tag refusal is now only a nicety, not a safety net.
func TestLibraryStillPanics(t *testing.T) {
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		var d doc
		_ = yaml.UnmarshalWithOptions([]byte("rules:  ! \n"), &d, yaml.Strict())
		return false
	}()
	if !panicked {
		t.Skip("goccy/go-yaml no longer panics on `rules:  ! ` (issue #735 fixed); safeyaml's recover stays as a backstop")
	}
}

// TestRecover: a panic inside the library on a tree that passed the tag
// check still comes back as an error.
func TestRecover(t *testing.T) {
	err := NodeToValue(nil, &doc{})
	if err == nil {
		t.Skip("the library handles a nil node")
	}
	t.Log(err)
}

func TestDecodes(t *testing.T) {
	var d doc
	if err := UnmarshalStrict([]byte("version: 1\nrules: [a, b]\n"), &d); err != nil {
		t.Fatal(err)
	}
	if d.Version != 1 || len(d.Rules) != 2 {
		t.Fatalf("%+v", d)
	}
	if err := UnmarshalStrict([]byte("version: 1\nbogus: 2\n"), &d); err == nil {
		t.Fatal("unknown key accepted")
	}
	f, err := ParseBytes([]byte("version: 1\nrules: [a, b]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n := Lookup(f, "$.rules[1]"); n == nil || n.GetToken().Position.Line != 2 {
		t.Fatalf("Lookup: %v", n)
	}
	if n := Lookup(f, "$[[["); n != nil {
		t.Fatalf("bad path: %v", n)
	}
}

// FuzzParse: no input makes ParseBytes, NodeToValue or UnmarshalStrict
// panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("rules:  ! \n"))
	f.Add([]byte("version: 1\nrules: [a, b]\nmeta: {a: b}\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		_ = UnmarshalStrict(data, &d)
		if file, err := ParseBytes(data); err == nil && len(file.Docs) > 0 && file.Docs[0].Body != nil {
			_ = NodeToValue(file.Docs[0].Body, &d, yaml.DisallowUnknownField())
			_ = Lookup(file, "$.rules[0]")
		}
	})
}
