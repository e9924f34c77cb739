package approval

import (
	"context"
	"time"
)

// Store keeps approval requests. Implementations: internal/store/sqlite
// (ApprovalStore) and internal/store/postgres (ApprovalStore); both pass
// the contract suite in approval/storetest.
//
// Contract:
//   - Requests are stored whole (Store never interprets them beyond the
//     derived keys: ID, State, Kind, SettingName, Requester, OpenKey,
//     BindKey, CreatedAt, DueAt) and returned as deep copies.
//   - Insert stores a new request. If another stored request has the
//     same non-empty OpenKey it stores nothing and returns an error
//     wrapping ErrDuplicate. before (may be nil) runs inside the
//     transaction after the key check and before commit; if it returns
//     an error nothing is stored and that error is returned.
//   - Update runs fn on the current stored request inside one
//     transaction that excludes every other Update and Insert of the
//     same request (row lock or single writer), then stores the request
//     fn left behind with Version+1 and commits. If fn returns an error
//     nothing is stored and the error is returned unchanged. A missing
//     id is an error wrapping ErrNotFound. fn may run on a copy that is
//     discarded on error; it must not retain the pointer.
//   - Stores shared by several processes make committed changes visible
//     to Watch of every process (see Watcher).
type Store interface {
	Insert(ctx context.Context, r *Request, before func() error) error
	Update(ctx context.Context, id string, fn func(r *Request) error) (*Request, error)
	// Get returns the request or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)
	// Open returns the request holding OpenKey key, or ErrNotFound.
	Open(ctx context.Context, key string) (*Request, error)
	// LatestByBindKey returns the most recently created one-time request
	// with that BindKey (in any state), or ErrNotFound.
	LatestByBindKey(ctx context.Context, key string) (*Request, error)
	// Grants returns the approved grants of the identity whose DueAt is
	// after now.
	Grants(ctx context.Context, issuer, subject string, now time.Time) ([]*Request, error)
	// Due returns up to limit ids of pending or approved requests whose
	// DueAt is at or before now.
	Due(ctx context.Context, now time.Time, limit int) ([]string, error)
	// List returns requests matching f, newest first.
	List(ctx context.Context, f Filter) ([]*Request, error)
}

// Watcher is implemented by stores shared by several processes
// (PostgreSQL). Watch blocks until ctx is done, calling fn with the id
// of every request another process (or this one) changed, and with ""
// whenever changes may have been missed (e.g. after reconnecting). It
// should keep trying after failures; a returned error ends watching.
type Watcher interface {
	Watch(ctx context.Context, fn func(id string)) error
}

// Filter selects requests for Store.List. Zero fields do not filter.
type Filter struct {
	State State
	Kind  string
	// Setting is the approval setting name.
	Setting string
	// RequesterSubject matches the requester's subject.
	RequesterSubject string
	// Limit caps the result (0 means 100; at most 1000).
	Limit int
}

// EffectiveLimit returns the limit to apply (default 100, at most 1000).
func (f Filter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return 100
	case f.Limit > 1000:
		return 1000
	}
	return f.Limit
}
