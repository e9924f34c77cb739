package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/keyfile"
)

// DefaultKeyName is the checkpoint origin and key name used when none is
// given.
const DefaultKeyName = "warden-audit"

// Key file names under <data dir>/keys/.
const (
	SignerFile   = "audit.signer"
	VerifierFile = "audit.verifier"
)

// KeyPaths returns the signer and verifier key files under dataDir.
func KeyPaths(dataDir string) (signer, verifier string) {
	return filepath.Join(dataDir, "keys", SignerFile), filepath.Join(dataDir, "keys", VerifierFile)
}

// ErrKeyExists: GenerateKeyFiles would overwrite a key.
var ErrKeyExists = errors.New("key file already exists")

// GenerateKeyFiles creates a new Ed25519 note key named name and writes
// the signer key to signerPath (mode 0600) and the verifier key to
// signerPath's directory as audit.verifier (mode 0644). It never
// overwrites an existing key (ErrKeyExists).
func GenerateKeyFiles(signerPath, name string) (vkey string, err error) {
	if name == "" {
		name = DefaultKeyName
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", fmt.Errorf("audit: generate key: %w", err)
	}
	dir := filepath.Dir(signerPath)
	vpath := filepath.Join(dir, VerifierFile)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("audit: generate key: %w", err)
	}
	for _, p := range []string{signerPath, vpath} {
		if _, err := os.Stat(p); err == nil {
			return "", fmt.Errorf("audit: generate key: %s: %w", p, ErrKeyExists)
		}
	}
	if err := writeNew(signerPath, skey+"\n", 0o600); err != nil {
		return "", err
	}
	if err := writeNew(vpath, vkey+"\n", 0o644); err != nil {
		return "", err
	}
	return vkey, nil
}

func writeNew(path, content string, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("audit: write key: %w", err)
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: write key %s: %w", path, err)
	}
	return nil
}

// LoadSigner reads a note signer key file and returns the signer and its
// verifier (derived from the private key).
func LoadSigner(path string) (note.Signer, note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: load signing key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && !keyfile.Private(fi) {
		return nil, nil, fmt.Errorf("audit: load signing key %s: mode %v is readable by others; want 0600 (or 0440 in the process's own group, as a Kubernetes Secret mounted with fsGroup is)", path, fi.Mode().Perm())
	}
	skey := strings.TrimSpace(string(b))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: load signing key %s: %w", path, err)
	}
	vkey, err := verifierKeyOf(skey)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: load signing key %s: %w", path, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: load signing key %s: %w", path, err)
	}
	return s, v, nil
}

// verifierKeyOf derives the verifier key text from an Ed25519 signer key
// ("PRIVATE+KEY+name+hash+base64(alg||seed)").
func verifierKeyOf(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return "", errors.New("malformed signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("signer key is not Ed25519")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// LoadVerifier reads a note verifier key file (one line, as written by
// GenerateKeyFiles).
func LoadVerifier(path string) (note.Verifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: load verifier key: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("audit: load verifier key %s: %w", path, err)
	}
	return v, nil
}

// LoadOrCreateKeys loads the signing key at signerPath, creating a new key
// named name (and its verifier file beside it) when none exists, so a demo
// works without a keygen step.
func LoadOrCreateKeys(signerPath, name string) (note.Signer, note.Verifier, error) {
	if _, err := os.Stat(signerPath); errors.Is(err, fs.ErrNotExist) {
		if _, err := GenerateKeyFiles(signerPath, name); err != nil {
			return nil, nil, err
		}
	}
	return LoadSigner(signerPath)
}
