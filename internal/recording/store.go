package recording

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// BlobStore keeps sealed recording objects. Implementations: FSStore
// (pack files under the data dir, the default) and S3Store
// (S3-compatible object storage, shared by replicas).
// recordingtest.RunBlobStore is the contract every implementation passes.
type BlobStore interface {
	// Put stores size bytes from r as a new object and returns its
	// locator, which Get and Delete take. name is unique per object
	// (the caller never reuses one) and made of [a-z0-9._-] segments
	// separated by '/'; a store that addresses objects by name (S3) uses
	// it as the key, others choose their own locator. Put returns only
	// when the object is durable; r delivering fewer than size bytes, or
	// ctx ending, is an error and leaves nothing Get would return.
	Put(ctx context.Context, name string, r io.Reader, size int64) (locator string, err error)
	// Get opens the object. An unknown locator is an error wrapping
	// ErrNotFound. The caller closes the reader.
	Get(ctx context.Context, locator string) (io.ReadCloser, error)
	// Delete removes the object's bytes (removes the object, or
	// overwrites it with zeros); deleting a missing object is not an
	// error.
	Delete(ctx context.Context, locator string) error
	// Probe checks, quickly, that the store can accept a Put now. It is
	// what strict mode's Reserve relies on.
	Probe(ctx context.Context) error
}

// Object is one object of a batch.
type Object struct {
	Name string
	Body io.Reader
	Size int64
}

// PutResult is the outcome of one object of a batch.
type PutResult struct {
	Locator string
	Err     error
}

// BatchPutter is implemented by a BlobStore that makes several objects
// durable together, cheaper than one Put each (FSStore: one append and one
// fsync for the batch). PutBatch has Put's contract for each object and
// returns one result per object.
type BatchPutter interface {
	PutBatch(ctx context.Context, objs []Object) []PutResult
}

// Expirer is implemented by a BlobStore that can drop, in bulk, objects
// written before a time (FSStore: whole pack files). The retention sweep
// calls it after erasing every recording that started before cutoff.
type Expirer interface {
	Expire(ctx context.Context, cutoff time.Time) (removed int, err error)
}

// validKey checks an object key: relative, slash-separated segments of
// [a-z0-9._-], none empty, "." or "..".
func validKey(key string) error {
	if key == "" || len(key) > 512 {
		return fmt.Errorf("recording: object key %q: empty or too long", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("recording: object key %q: empty, . or .. segment", key)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("recording: object key %q: character %q not allowed", key, c)
			}
		}
	}
	return nil
}

// objectName names a recording's object: by start date, so that an
// operator can see (and bucket lifecycle rules can act on) age.
func objectName(id string, started time.Time) string {
	return started.UTC().Format("2006/01/02/") + id + ".wrec"
}

// Entry is a recording's catalogue row: what the recording is, where its
// object is, and its wrapped data key.
type Entry struct {
	// ID is the recording id.
	ID string
	// RequestID is the gateway request id (not unique: a client may
	// reuse one).
	RequestID string
	// Principal is the caller's subject ("" when anonymous).
	Principal string
	// Route is the gateway route name.
	Route string
	// Level is metadata or full.
	Level Level
	// StartedAt is the request's start.
	StartedAt time.Time
	// Object is the object's locator in the BlobStore.
	Object string
	// Size is the stored object's size in bytes.
	Size int64
	// Digest is the SHA-256 of the canonical form.
	Digest Digest
	// KEKID names the key-encryption key that wrapped the data key.
	KEKID string
	// WrappedKey is the data key wrapped by the KEK; nil once erased.
	WrappedKey []byte
	// CreatedAt is when the recording was stored.
	CreatedAt time.Time
	// Erasure is set once the recording has been erased.
	Erasure *Erasure
}

// Erasure says who erased a recording, when and why.
type Erasure struct {
	At     time.Time
	By     string
	Reason string
}

// Filter selects catalogue entries. Zero fields do not filter.
type Filter struct {
	// Principal matches Entry.Principal exactly.
	Principal string
	// RequestID matches Entry.RequestID exactly. No index serves it (a
	// random key would cost every commit a random page): bound the scan
	// with AfterID/BeforeID, or find the recording id through the
	// request's terminal audit entry (recordingcheck.Find).
	RequestID string
	// Before selects entries with StartedAt < Before.
	Before time.Time
	// Erased: nil for all, true for erased only, false for live only.
	Erased *bool
	// AfterID continues a listing after the entry with this id.
	AfterID string
	// BeforeID selects entries with an id below it (ids sort by creation
	// time: IDPrefix turns a time into a bound).
	BeforeID string
	// Limit caps the entries returned; 0 means 1000.
	Limit int
}

// Catalog keeps the catalogue of recordings and custody of their wrapped
// data keys, apart from the objects: erasing destroys the key here, so an
// object that survives elsewhere (S3 versioning, a backup of the bucket)
// stays unreadable. Implementations live in internal/store/sqlite (a file
// of its own in the data dir) and internal/store/postgres (shared by
// replicas); recordingtest.TestCatalog is their contract.
type Catalog interface {
	// Put adds an entry. An existing id is an error wrapping ErrExists.
	Put(ctx context.Context, e Entry) error
	// PutBatch adds entries in one transaction: all of them, durably, or
	// none (an existing id fails the batch with ErrExists).
	PutBatch(ctx context.Context, es []Entry) error
	// Get returns the entry with id, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Entry, error)
	// List returns entries matching f, ordered by id (ids sort by
	// creation time).
	List(ctx context.Context, f Filter) ([]Entry, error)
	// Erase destroys the wrapped data key of id (so that it is not
	// recoverable from the catalogue's own storage either, as far as the
	// backend allows) and records the erasure. It returns the updated
	// entry. Erasing an erased entry changes nothing and returns it with
	// an error wrapping ErrErased; a missing id wraps ErrNotFound.
	Erase(ctx context.Context, id string, e Erasure) (Entry, error)
	// Probe checks, quickly, that Put would succeed now.
	Probe(ctx context.Context) error
}
