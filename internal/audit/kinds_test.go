package audit_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

// kindLike is the shape of an entry kind.
var kindLike = regexp.MustCompile(`^[a-z]+\.[a-z_]+$`)

// kindAreas are the areas of catalogued kinds: a literal "area.event" in
// one of them is taken for a kind unless listed in notKinds.
var kindAreas = map[string]bool{"request": true, "approval": true, "grant": true, "gateway": true, "recording": true}

// notKinds are literals of kind shape in kindAreas that are something
// else (CEL variable paths, log components).
var notKinds = map[string]string{
	"request.query":     "CEL variable path (policy bounds)",
	"request.headers":   "CEL variable path (policy bounds)",
	"approval.postgres": "log component name",
}

// TestKindCatalogue fails when code writes a kind the catalogue does not
// list, or spells a catalogued kind as a literal instead of using its
// constant. It reads every non-test Go file of the module: string
// literals given as an Entry's Kind field, assigned to .Kind, declared as
// Kind* constants, passed to a parameter named kind, or of kind shape in
// a kind area.
func TestKindCatalogue(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range scanKinds(t, root) {
		t.Error(f)
	}
}

// scanKinds returns the kind problems of the Go files under root.
func scanKinds(t *testing.T, root string) []string {
	var findings []string
	catalogued := map[string]bool{}
	for _, k := range audit.Kinds() {
		if catalogued[k.Kind] {
			t.Errorf("kind %s catalogued twice", k.Kind)
		}
		catalogued[k.Kind] = true
		if !kindLike.MatchString(k.Kind) || k.Category == "" || k.Description == "" || k.Writer == "" {
			t.Errorf("catalogue row %+v is incomplete", k)
		}
	}
	fset := token.NewFileSet()
	files := map[string][]*ast.File{} // by directory (package)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n != "." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		if strings.HasSuffix(f.Name.Name, "test") { // test helper packages
			return nil
		}
		files[filepath.Dir(path)] = append(files[filepath.Dir(path)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	catalogueFile := filepath.Join(root, "internal", "audit", "kinds.go")
	check := func(lit ast.Expr, why string, structural bool) {
		bl, ok := lit.(*ast.BasicLit)
		if !ok || bl.Kind != token.STRING {
			return
		}
		s, err := strconv.Unquote(bl.Value)
		if err != nil {
			return
		}
		pos := fset.Position(bl.Pos())
		if pos.Filename == catalogueFile {
			return
		}
		if !structural {
			area, _, _ := strings.Cut(s, ".")
			if !kindLike.MatchString(s) || !kindAreas[area] || notKinds[s] != "" {
				return
			}
		}
		rel, _ := filepath.Rel(root, pos.Filename)
		if catalogued[s] {
			findings = append(findings, fmt.Sprintf("%s:%d: kind %q written as a literal (%s); use its audit.Kind* constant", rel, pos.Line, s, why))
		} else {
			findings = append(findings, fmt.Sprintf("%s:%d: kind %q (%s) is not in the audit catalogue (internal/audit/kinds.go)", rel, pos.Line, s, why))
		}
	}
	for _, fs := range files {
		// Functions of this package with a parameter named kind.
		kindParam := map[string]int{}
		for _, f := range fs {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok {
					continue
				}
				i := 0
				for _, p := range fd.Type.Params.List {
					for _, n := range p.Names {
						if strings.EqualFold(n.Name, "kind") {
							kindParam[fd.Name.Name] = i
						}
						i++
					}
				}
			}
		}
		for _, f := range fs {
			ast.Inspect(f, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.KeyValueExpr:
					if id, ok := x.Key.(*ast.Ident); ok && id.Name == "Kind" {
						// identity.Kind values ("user") are not entry kinds.
						if bl, ok := x.Value.(*ast.BasicLit); ok && strings.Contains(bl.Value, ".") {
							check(x.Value, "Kind field", true)
						}
					}
				case *ast.AssignStmt:
					for i, l := range x.Lhs {
						if se, ok := l.(*ast.SelectorExpr); ok && se.Sel.Name == "Kind" && i < len(x.Rhs) {
							if bl, ok := x.Rhs[i].(*ast.BasicLit); ok && strings.Contains(bl.Value, ".") {
								check(x.Rhs[i], ".Kind assignment", true)
							}
						}
					}
				case *ast.ValueSpec:
					for i, id := range x.Names {
						if strings.HasPrefix(strings.ToLower(id.Name), "kind") && i < len(x.Values) {
							if bl, ok := x.Values[i].(*ast.BasicLit); ok && strings.Contains(bl.Value, ".") {
								check(x.Values[i], "Kind constant", true)
							}
						}
					}
				case *ast.CallExpr:
					name := ""
					switch fn := x.Fun.(type) {
					case *ast.Ident:
						name = fn.Name
					case *ast.SelectorExpr:
						name = fn.Sel.Name
					}
					if i, ok := kindParam[name]; ok && i < len(x.Args) {
						check(x.Args[i], "kind argument of "+name, true)
					}
				case *ast.BasicLit:
					check(x, "literal", false)
				}
				return true
			})
		}
	}
	return findings
}

// TestKindCatalogueCatches checks the scanner itself on a small tree:
// each way of writing a kind is found, and harmless literals are not.
func TestKindCatalogueCatches(t *testing.T) {
	dir := t.TempDir()
	src := `package x

const kindOdd = "request.odd"

type E struct{ Kind string }

func record(a int, kind string) {}

func f(e *E) {
	_ = E{Kind: "approval.whatever"}
	e.Kind = "grant.odd"
	record(1, "request.pending_approval")
	_ = "gateway.rebooted"
	_ = "request.query"
	_ = "audit.db"
	_ = E{Kind: "user"}
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(scanKinds(t, dir), "\n")
	for _, want := range []string{`"request.odd" (Kind constant) is not`, `"approval.whatever" (Kind field) is not`,
		`"grant.odd" (.Kind assignment) is not`, `"request.pending_approval" written as a literal (kind argument of record)`,
		`"gateway.rebooted" (literal) is not`} {
		if !strings.Contains(got, want) {
			t.Errorf("scanner missed %s; findings:\n%s", want, got)
		}
	}
	for _, not := range []string{"request.query", "audit.db", `"user"`} {
		if strings.Contains(got, not) {
			t.Errorf("scanner flagged %s; findings:\n%s", not, got)
		}
	}
}

func TestKindCatalogueLookup(t *testing.T) {
	if !audit.IsTerminal(audit.KindRequestCompleted) || !audit.IsTerminal(audit.KindRequestAbandoned) {
		t.Error("completed and abandoned must be terminal")
	}
	if audit.IsTerminal(audit.KindRequestAdmitted) || audit.IsTerminal("no.such") {
		t.Error("admitted / unknown kinds are not terminal")
	}
	if _, ok := audit.LookupKind("approval.granted"); ok {
		t.Error("approval.granted is written by nothing and must not be catalogued")
	}
}

// TestKindsDocumented: docs/audit.md has a row for every catalogued kind.
func TestKindsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range audit.Kinds() {
		if !strings.Contains(string(b), "| `"+k.Kind+"` |") {
			t.Errorf("docs/audit.md has no row for kind %s", k.Kind)
		}
	}
}
