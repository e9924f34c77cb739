package deploytest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPlainManifests: the manifests in deploy/kubernetes (for users
// without Helm) pass the same strict decoding and the same invariants as
// the chart's renderings.
func TestPlainManifests(t *testing.T) {
	for dir, want := range map[string]layout{
		"sqlite":   {sidecar: true, tls: true},
		"postgres": {sidecar: true, postgres: true, tls: true},
	} {
		t.Run(dir, func(t *testing.T) {
			files, err := filepath.Glob(filepath.Join("..", "kubernetes", dir, "*.yaml"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no manifests in deploy/kubernetes/%s: %v", dir, err)
			}
			var b bundle
			for _, f := range files {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.add(f, data); err != nil {
					t.Fatal(err)
				}
			}
			checkLayout(t, dir, &b, want)
		})
	}
}
