package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/internal/websession"
)

// SessionStore is the console's console.SessionStore on its own SQLite
// file (<data dir>/console-sessions.db), so that console sessions
// survive a restart. Only the SHA-256 of a session cookie is stored.
type SessionStore struct {
	w, r   *sql.DB
	closed atomic.Bool
}

const sessionSchema = `
CREATE TABLE IF NOT EXISTS console_sessions (
	hash         BLOB    PRIMARY KEY,
	principal    BLOB    NOT NULL,
	created_ns   INTEGER NOT NULL,
	last_seen_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_last_seen ON console_sessions(last_seen_ns);
CREATE INDEX IF NOT EXISTS console_sessions_created ON console_sessions(created_ns);
`

// OpenSessions opens (creating if needed) the session store at path. It
// refuses a file that holds the audit log.
func OpenSessions(ctx context.Context, path string) (*SessionStore, error) {
	w, r, err := openSideFile(ctx, path, "console sessions", sessionSchema)
	if err != nil {
		return nil, err
	}
	return &SessionStore{w: w, r: r}, nil
}

// Close closes the store. Closing twice is harmless.
func (s *SessionStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

func (s *SessionStore) exec(ctx context.Context, what, q string, args ...any) (sql.Result, error) {
	if s.closed.Load() {
		return nil, errors.New("sqlite: session store closed")
	}
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s session: %w", what, err)
	}
	return res, nil
}

// CreateSession implements console.SessionStore.
func (s *SessionStore) CreateSession(ctx context.Context, ss websession.Record) error {
	_, err := s.exec(ctx, "create", "INSERT INTO console_sessions (hash, principal, created_ns, last_seen_ns) VALUES (?, ?, ?, ?)",
		ss.Hash, ss.Principal, ss.Created.UnixNano(), ss.LastSeen.UnixNano())
	return err
}

// GetSession implements console.SessionStore.
func (s *SessionStore) GetSession(ctx context.Context, hash []byte) (*websession.Record, error) {
	if s.closed.Load() {
		return nil, errors.New("sqlite: session store closed")
	}
	var created, seen int64
	ss := &websession.Record{Hash: hash}
	err := s.r.QueryRowContext(ctx, "SELECT principal, created_ns, last_seen_ns FROM console_sessions WHERE hash = ?", hash).
		Scan(&ss.Principal, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get session: %w", err)
	}
	ss.Created, ss.LastSeen = time.Unix(0, created), time.Unix(0, seen)
	return ss, nil
}

// TouchSession implements console.SessionStore.
func (s *SessionStore) TouchSession(ctx context.Context, hash []byte, lastSeen time.Time) error {
	_, err := s.exec(ctx, "touch", "UPDATE console_sessions SET last_seen_ns = max(last_seen_ns, ?) WHERE hash = ?", lastSeen.UnixNano(), hash)
	return err
}

// DeleteSession implements console.SessionStore.
func (s *SessionStore) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := s.exec(ctx, "delete", "DELETE FROM console_sessions WHERE hash = ?", hash)
	return err
}

// SweepSessions implements console.SessionStore.
func (s *SessionStore) SweepSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	res, err := s.exec(ctx, "sweep", "DELETE FROM console_sessions WHERE last_seen_ns <= ? OR created_ns <= ?",
		idleBefore.UnixNano(), createdBefore.UnixNano())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// CountSessions implements console.SessionStore.
func (s *SessionStore) CountSessions(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, errors.New("sqlite: session store closed")
	}
	var n int64
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM console_sessions").Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count sessions: %w", err)
	}
	return n, nil
}
