//go:build unix

package keyfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPrivate: 0600 and 0400 are private; group read is accepted only for
// the process's own group (a Secret volume with fsGroup); world-readable,
// group-writable and foreign-group files are refused.
func TestPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(mode os.FileMode, want bool) {
		t.Helper()
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := Private(fi); got != want {
			t.Errorf("mode %v: Private = %v, want %v", mode, got, want)
		}
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o440, true}, {0o640, true}, {0o644, false}, {0o604, false}, {0o660, false}} {
		check(tc.mode, tc.ok)
	}
	// A group the process is not in: refused even without world access.
	if os.Geteuid() != 0 {
		return // only root can give the file away to another group
	}
	if err := os.Chown(path, -1, 4242); err != nil {
		t.Fatal(err)
	}
	check(0o440, false)
}
