package recording

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKEKWrap(t *testing.T) {
	kek, err := NewKEK(newKey())
	if err != nil {
		t.Fatal(err)
	}
	dk := newKey()
	w, err := kek.Wrap(dk, testID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, dk) {
		t.Fatal("the wrapped key contains the data key")
	}
	got, err := kek.Unwrap(w, testID)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Unwrap: %v", err)
	}
	if _, err := kek.Unwrap(w, "0193a4f5c2e1a9f8e7d6c5b4a39219999"); !IsCorrupt(err) {
		t.Errorf("a key moved to another recording unwrapped: %v", err)
	}
	for i := range w {
		m := bytes.Clone(w)
		m[i] ^= 1
		if _, err := kek.Unwrap(m, testID); !IsCorrupt(err) {
			t.Fatalf("flip at %d unwrapped: %v", i, err)
		}
	}
	other, _ := NewKEK(newKey())
	if _, err := other.Unwrap(w, testID); !IsCorrupt(err) {
		t.Errorf("another KEK unwrapped: %v", err)
	}
	if other.ID() == kek.ID() || len(kek.ID()) != 16 {
		t.Errorf("KEK ids %q and %q", kek.ID(), other.ID())
	}
	if _, err := NewKEK(make([]byte, 16)); err == nil {
		t.Error("a 16-byte KEK was accepted")
	}
}

func TestKEKFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", KEKFile)
	k1, err := LoadOrCreateKEKFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	k2, err := LoadOrCreateKEKFile(path)
	if err != nil || k2.ID() != k1.ID() {
		t.Fatalf("second load: %v, ids %s %s", err, k1.ID(), k2.ID())
	}
	if err := GenerateKEKFile(path); err == nil {
		t.Error("GenerateKEKFile overwrote an existing key")
	}

	// A Secret volume with fsGroup: group-readable by the process's own
	// group loads (keyfile.Private); world-readable does not.
	os.Chmod(path, 0o440)
	if _, err := LoadKEKFile(path); err != nil {
		t.Errorf("a key file readable by the process's own group: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadKEKFile(path); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a world-readable key file: %v", err)
	}

	bad := map[string]string{
		"empty":        "",
		"no prefix":    "AAAA\n",
		"wrong prefix": "warden-recording-kek v2 " + strings.Repeat("A", 44) + "\n",
		"short key":    kekPrefix + "AAAAAAAAAAAAAAAAAAAAAA==\n",
		"not base64":   kekPrefix + strings.Repeat("!", 44) + "\n",
		"two lines":    kekPrefix + strings.Repeat("A", 43) + "=\nextra\n",
		"audit key":    "PRIVATE+KEY+warden-audit+1234abcd+AaBbCc\n",
	}
	for name, content := range bad {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, []byte(content), 0o600)
		_, err := LoadKEKFile(p)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
}

func TestKeyringRotation(t *testing.T) {
	old, _ := NewKEK(newKey())
	cur, _ := NewKEK(newKey())
	dk := newKey()
	w, _ := old.Wrap(dk, testID)
	kr := NewKeyring(cur, old)
	if kr.Current() != cur {
		t.Error("Current is not the current key")
	}
	k, ok := kr.Get(old.ID())
	if !ok {
		t.Fatal("the old key is not in the keyring")
	}
	if got, err := k.Unwrap(w, testID); err != nil || !bytes.Equal(got, dk) {
		t.Errorf("old key unwrap: %v", err)
	}
	if _, ok := NewKeyring(cur).Get(old.ID()); ok {
		t.Error("a keyring without the old key found it")
	}
}
