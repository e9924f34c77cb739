//go:build unix

package audit

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSigningKeyMode: 0600 and 0400 load; group read is accepted only for
// the process's own group (a Secret volume with fsGroup); world-readable,
// group-writable and foreign-group files are refused.
func TestSigningKeyMode(t *testing.T) {
	dir := t.TempDir()
	signer := filepath.Join(dir, "keys", SignerFile)
	if _, err := GenerateKeyFiles(signer, "mode-test"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o440, true}, {0o640, true}, {0o644, false}, {0o604, false}, {0o660, false}} {
		if err := os.Chmod(signer, tc.mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadSigner(signer)
		if (err == nil) != tc.ok {
			t.Errorf("mode %v: err %v, want ok=%v", tc.mode, err, tc.ok)
		}
	}
	// A group the process is not in: refused even without world access.
	if os.Geteuid() != 0 {
		return // only root can give the file away to another group
	}
	if err := os.Chown(signer, -1, 4242); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(signer, 0o440); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSigner(signer); err == nil {
		t.Error("a key readable by a foreign group was loaded")
	}
}
