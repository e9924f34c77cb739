package admin_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardenhq/warden/internal/admin"
)

var update = flag.Bool("update", false, "rewrite docs/admin-api.md from the routes")

// TestReference: docs/admin-api.md is exactly what the router's routes
// render to (every endpoint, its role, parameters and errors), so the
// document cannot drift from the code.
func TestReference(t *testing.T) {
	e := newEnv(t)
	got := admin.Reference(e.rt.Routes())
	path := filepath.Join("..", "..", "docs", "admin-api.md")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with the admin routes: run go test ./internal/admin -run TestReference -update", path)
	}
	for _, r := range e.rt.Routes() {
		if !bytes.Contains(want, []byte("### "+r.Method+" "+r.Path+"\n")) {
			t.Errorf("%s %s is not documented", r.Method, r.Path)
		}
	}
}
