package recording

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardenhq/warden/internal/keyfile"
)

// KEKFile is the default key-encryption key file name under
// <data dir>/keys/.
const KEKFile = "recordings.kek"

// kekPrefix starts a key file, so that a wrong file (an audit signer key,
// a TLS key) is refused instead of being used as 32 bytes of key.
const kekPrefix = "warden-recording-kek v1 "

// KeySize is the size of key-encryption and data keys (AES-256).
const KeySize = 32

// KEK is a key-encryption key: it wraps each recording's data key with
// AES-256-GCM. Whoever holds it (and the catalogue) can read every
// recording that has not been erased; keep it as secret as the audit
// signing key, and shared by all replicas.
type KEK struct {
	id   string
	aead cipher.AEAD
}

// NewKEK returns a KEK for a 32-byte key.
func NewKEK(key []byte) (*KEK, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("recording: key-encryption key must be %d bytes, got %d", KeySize, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("recording: key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("recording: key-encryption key: %w", err)
	}
	sum := sha256.Sum256(append([]byte("warden-recording-kek-id\x00"), key...))
	return &KEK{id: hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// ID names the key without revealing it (stored beside each wrapped data
// key, so a rotated key can still unwrap what it wrapped).
func (k *KEK) ID() string { return k.id }

// wrapAAD binds a wrapped key to its recording: a wrapped key copied to
// another recording's catalogue row does not unwrap.
func wrapAAD(id string) []byte { return []byte("warden-recording-dk v1\x00" + id) }

// Wrap seals a data key for recording id.
func (k *KEK) Wrap(dk []byte, id string) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(dk)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("recording: wrap key: %w", err)
	}
	return k.aead.Seal(nonce, nonce, dk, wrapAAD(id)), nil
}

// Unwrap opens a wrapped data key of recording id.
func (k *KEK) Unwrap(wrapped []byte, id string) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(wrapped) != ns+KeySize+k.aead.Overhead() {
		return nil, &CorruptError{ID: id, Reason: "wrapped data key has the wrong size"}
	}
	dk, err := k.aead.Open(nil, wrapped[:ns], wrapped[ns:], wrapAAD(id))
	if err != nil {
		return nil, &CorruptError{ID: id, Reason: "wrapped data key does not authenticate"}
	}
	return dk, nil
}

// Keyring holds the current KEK, which wraps new data keys, and older
// ones that still unwrap what they wrapped.
type Keyring struct {
	current *KEK
	byID    map[string]*KEK
}

// NewKeyring returns a keyring wrapping with current and unwrapping with
// current and any of old.
func NewKeyring(current *KEK, old ...*KEK) *Keyring {
	kr := &Keyring{current: current, byID: map[string]*KEK{current.id: current}}
	for _, k := range old {
		kr.byID[k.id] = k
	}
	return kr
}

// Current is the KEK that wraps new data keys.
func (kr *Keyring) Current() *KEK { return kr.current }

// Get returns the KEK with the given id.
func (kr *Keyring) Get(id string) (*KEK, bool) {
	k, ok := kr.byID[id]
	return k, ok
}

// GenerateKEKFile writes a new random KEK to path (mode 0600, directory
// 0700). It never overwrites a file.
func GenerateKEKFile(path string) error {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("recording: generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("recording: generate key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("recording: generate key: %w", err)
	}
	_, err = f.WriteString(kekPrefix + base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("recording: generate key %s: %w", path, err)
	}
	return nil
}

// LoadKEKFile reads a key file written by GenerateKEKFile. It refuses a
// file readable by others (keyfile.Private: owner only, or also the
// process's own group, as a Kubernetes Secret volume with fsGroup gives).
func LoadKEKFile(path string) (*KEK, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("recording: load key: %w", err)
	}
	if !keyfile.Private(fi) {
		return nil, fmt.Errorf("recording: load key %s: mode %v is readable by others; want 0600 (or 0440 with the process's own group)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recording: load key: %w", err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	enc, ok := strings.CutPrefix(s, kekPrefix)
	if !ok || strings.ContainsAny(enc, " \n\r\t") {
		return nil, fmt.Errorf("recording: load key %s: not a recording key file (want one line %q followed by base64)", path, strings.TrimSpace(kekPrefix))
	}
	key, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("recording: load key %s: %w", path, err)
	}
	k, err := NewKEK(key)
	if err != nil {
		return nil, fmt.Errorf("recording: load key %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKEKFile loads the key at path, creating one when the file
// does not exist (the embedded default: a demo needs no keygen step).
func LoadOrCreateKEKFile(path string) (*KEK, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := GenerateKEKFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
	}
	return LoadKEKFile(path)
}
