package admin_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoHandlersInDomainPackages: the domain packages offer Go services
// and serve no HTTP — no handler, mux or ResponseWriter outside tests —
// so that every admin endpoint is registered here. (They may still be
// HTTP clients: webhooks, OIDC discovery.)
func TestNoHandlersInDomainPackages(t *testing.T) {
	forbidden := map[string]bool{"ResponseWriter": true, "Handler": true, "HandlerFunc": true, "ServeMux": true, "Handle": true, "HandleFunc": true}
	for _, dir := range []string{"../audit", "../approval", "../policy", "../identity", "../mask"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, f, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			httpName := ""
			for _, im := range file.Imports {
				if im.Path.Value == `"net/http"` {
					httpName = "http"
					if im.Name != nil {
						httpName = im.Name.Name
					}
				}
			}
			ast.Inspect(file, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && httpName != "" && id.Name == httpName && forbidden[n.Sel.Name] {
						t.Errorf("%s: http.%s: domain packages serve no HTTP; put the endpoint in internal/admin", fset.Position(n.Pos()), n.Sel.Name)
					}
				case *ast.FuncDecl:
					if n.Recv != nil && n.Name.Name == "ServeHTTP" {
						t.Errorf("%s: ServeHTTP in a domain package", fset.Position(n.Pos()))
					}
				}
				return true
			})
		}
	}
}
