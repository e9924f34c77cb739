package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// API key format: "wk_" + 16 hex chars of key id + "_" + 43 base64url
// chars of a 256-bit secret. The id lets the store find the record; only a
// hash of the secret is stored.
const (
	APIKeyPrefix = "wk_"
	// APIKeyIssuer is Principal.Issuer for API key callers.
	APIKeyIssuer = "warden:apikey"

	keyIDBytes     = 8
	keySecretBytes = 32
	keyFileVersion = 1
	// reloadEvery is how often Verify checks whether the file changed on
	// disk (another process revoked or created a key).
	reloadEvery = time.Second
	// lastUsedPersistEvery bounds how often last-used times are written.
	lastUsedPersistEvery = time.Minute
)

// APIKey is the stored record of a service account key. It never holds the
// key itself.
type APIKey struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Groups     []string  `json:"groups,omitempty"`
	Hash       string    `json:"hash"` // hex SHA-256 of the secret, see hashSecret
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// State is "active", "revoked" or "expired" at now.
func (k *APIKey) State(now time.Time) string {
	switch {
	case !k.RevokedAt.IsZero():
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}

type keyFile struct {
	Version int      `json:"version"`
	Keys    []APIKey `json:"keys"`
}

// FileKeyStore keeps API keys in a JSON file (mode 0600, replaced by
// atomic rename, guarded by a lock file across processes). It notices
// changes made by another process (e.g. `warden keys revoke`) within
// about a second. Safe for concurrent use.
type FileKeyStore struct {
	path string

	mu          sync.Mutex
	keys        map[string]*APIKey
	info        os.FileInfo // of the file last loaded; nil if none
	lastStat    time.Time
	pending     map[string]time.Time // last-used times not yet persisted
	lastPersist time.Time
	persisting  bool
	wg          sync.WaitGroup
}

// OpenFileKeyStore opens the store at path. A missing file is an empty
// store; it is created on the first Create.
func OpenFileKeyStore(path string) (*FileKeyStore, error) {
	s := &FileKeyStore{path: path, keys: map[string]*APIKey{}, pending: map[string]time.Time{}, lastPersist: time.Now()}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path returns the file the store lives in.
func (s *FileKeyStore) Path() string { return s.path }

// reload reads the file if it changed since last loaded. Caller holds mu
// or owns s exclusively.
func (s *FileKeyStore) reload() error {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.keys, s.info = map[string]*APIKey{}, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("api keys: %w", err)
	}
	if s.info != nil && os.SameFile(s.info, fi) && s.info.ModTime().Equal(fi.ModTime()) && s.info.Size() == fi.Size() {
		return nil
	}
	kf, err := readKeyFile(s.path)
	if err != nil {
		return err
	}
	keys := make(map[string]*APIKey, len(kf.Keys))
	for i := range kf.Keys {
		k := kf.Keys[i]
		keys[k.ID] = &k
	}
	s.keys, s.info = keys, fi
	return nil
}

func readKeyFile(path string) (keyFile, error) {
	var kf keyFile
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return keyFile{Version: keyFileVersion}, nil
	}
	if err != nil {
		return kf, fmt.Errorf("api keys: %w", err)
	}
	if err := json.Unmarshal(b, &kf); err != nil {
		return kf, fmt.Errorf("api keys: parse %s: %w", path, err)
	}
	if kf.Version != keyFileVersion {
		return kf, fmt.Errorf("api keys: %s: unsupported version %d", path, kf.Version)
	}
	return kf, nil
}

// update runs fn on the file's current contents under the cross-process
// lock and writes the result atomically, then reloads.
func (s *FileKeyStore) update(fn func(kf *keyFile) error) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("api keys: %w", err)
	}
	unlock, err := lockFile(s.path + ".lock")
	if err != nil {
		return fmt.Errorf("api keys: %w", err)
	}
	defer unlock()
	kf, err := readKeyFile(s.path)
	if err != nil {
		return err
	}
	if err := fn(&kf); err != nil {
		return err
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return fmt.Errorf("api keys: encode: %w", err)
	}
	if err := writeFileAtomic(s.path, append(b, '\n')); err != nil {
		return fmt.Errorf("api keys: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload()
}

// writeFileAtomic writes data to a temp file (0600) beside path, syncs it
// and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Create adds a key for service account name with the given groups,
// expiring after expires (0: never). It returns the plaintext key, which
// is shown once and cannot be recovered, and the stored record.
func (s *FileKeyStore) Create(name string, groups []string, expires time.Duration) (string, APIKey, error) {
	if name == "" || strings.ContainsAny(name, " \t\r\n") {
		return "", APIKey{}, errors.New("api keys: name must be non-empty without spaces")
	}
	if expires < 0 {
		return "", APIKey{}, errors.New("api keys: expiry must not be negative")
	}
	idb := make([]byte, keyIDBytes)
	sec := make([]byte, keySecretBytes)
	_, _ = rand.Read(idb) // crypto/rand.Read never fails (Go 1.24+)
	_, _ = rand.Read(sec)
	id := hex.EncodeToString(idb)
	secret := base64.RawURLEncoding.EncodeToString(sec)
	now := time.Now().UTC().Truncate(time.Second)
	rec := APIKey{ID: id, Name: name, Groups: slices.Clone(groups), Hash: hashSecret(id, secret), CreatedAt: now}
	if expires > 0 {
		rec.ExpiresAt = now.Add(expires)
	}
	err := s.update(func(kf *keyFile) error {
		kf.Keys = append(kf.Keys, rec)
		return nil
	})
	if err != nil {
		return "", APIKey{}, err
	}
	return APIKeyPrefix + id + "_" + secret, rec, nil
}

// List returns every key record (revoked and expired too), oldest first,
// as currently on disk plus last-used times not yet persisted.
func (s *FileKeyStore) List() ([]APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reload(); err != nil {
		return nil, err
	}
	out := make([]APIKey, 0, len(s.keys))
	for _, k := range s.keys {
		c := *k
		if t, ok := s.pending[c.ID]; ok && t.After(c.LastUsedAt) {
			c.LastUsedAt = t
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b APIKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ErrKeyNotFound is returned by Revoke for an id the store does not hold.
var ErrKeyNotFound = errors.New("api keys: no such key")

// Revoke marks key id revoked; it stops working in every process reading
// the file within about a second.
func (s *FileKeyStore) Revoke(id string) error {
	return s.update(func(kf *keyFile) error {
		for i := range kf.Keys {
			if kf.Keys[i].ID == id {
				if kf.Keys[i].RevokedAt.IsZero() {
					kf.Keys[i].RevokedAt = time.Now().UTC().Truncate(time.Second)
				}
				return nil
			}
		}
		return fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	})
}

// Verify checks a plaintext key at now. Errors are *Error (unknown,
// revoked, expired, malformed) or, for a store that cannot be read, a
// plain error. The comparison of the secret's hash is constant-time.
func (s *FileKeyStore) Verify(key string, now time.Time) (*Principal, error) {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if !ok {
		return nil, errToken(DescMalformed)
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 2*keyIDBytes || len(secret) == 0 || len(secret) > 128 {
		return nil, errToken(DescMalformed)
	}
	want := hashSecret(id, secret)

	s.mu.Lock()
	if now.Sub(s.lastStat) >= reloadEvery || now.Before(s.lastStat) {
		s.lastStat = now
		if err := s.reload(); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	rec := s.keys[id]
	var k APIKey
	if rec != nil {
		k = *rec
	}
	s.mu.Unlock()

	if rec == nil || subtle.ConstantTimeCompare([]byte(want), []byte(k.Hash)) != 1 {
		return nil, errToken(DescAPIKeyUnknown)
	}
	switch k.State(now) {
	case "revoked":
		return nil, errToken(DescAPIKeyRevoked)
	case "expired":
		return nil, errToken(DescAPIKeyExpired)
	}
	s.touch(id, now)
	return &Principal{
		Issuer:       APIKeyIssuer,
		Subject:      "svc:" + k.Name,
		Kind:         KindService,
		Name:         k.Name,
		Groups:       slices.Clone(k.Groups),
		AuthMethod:   "api_key",
		CredentialID: k.ID,
		ExpiresAt:    k.ExpiresAt,
	}, nil
}

// hashSecret is the stored form of a key: SHA-256 over a domain tag, the
// id and the secret. The secret is 256 random bits, so a plain hash cannot
// be brute-forced; binding the id stops a hash being moved to another
// record.
func hashSecret(id, secret string) string {
	h := sha256.New()
	h.Write([]byte("warden-apikey-v1\x00"))
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	return hex.EncodeToString(h.Sum(nil))
}

// touch records a use in memory and persists pending times at most once
// per lastUsedPersistEvery, in the background.
func (s *FileKeyStore) touch(id string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[id] = now.UTC().Truncate(time.Second)
	if s.persisting || now.Sub(s.lastPersist) < lastUsedPersistEvery {
		return
	}
	s.persisting = true
	s.lastPersist = now
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.Flush()
		s.mu.Lock()
		s.persisting = false
		s.mu.Unlock()
	}()
}

// Flush writes pending last-used times to the file now.
func (s *FileKeyStore) Flush() error {
	s.mu.Lock()
	pending := s.pending
	s.pending = map[string]time.Time{}
	s.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	err := s.update(func(kf *keyFile) error {
		for i := range kf.Keys {
			if t, ok := pending[kf.Keys[i].ID]; ok && t.After(kf.Keys[i].LastUsedAt) {
				kf.Keys[i].LastUsedAt = t
			}
		}
		return nil
	})
	if err != nil {
		s.mu.Lock()
		for id, t := range pending { // keep them for the next try
			if t.After(s.pending[id]) {
				s.pending[id] = t
			}
		}
		s.mu.Unlock()
	}
	return err
}

// Close waits for a background persist and flushes pending last-used times.
func (s *FileKeyStore) Close() error {
	s.wg.Wait()
	return s.Flush()
}
