package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardenhq/warden/internal/websession"
)

// SessionStore is the console's console.SessionStore on PostgreSQL, in
// the audit log's schema (table console_sessions), so that every replica
// sees the same sessions and a restart keeps them. Only the SHA-256 of a
// session cookie is stored.
type SessionStore struct {
	cfg    Config
	pool   *pgxpool.Pool
	closed atomic.Bool
}

const sessionSchemaSQL = `
CREATE TABLE IF NOT EXISTS console_sessions (
	hash         bytea  PRIMARY KEY,
	principal    bytea  NOT NULL,
	created_ns   bigint NOT NULL,
	last_seen_ns bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_last_seen ON console_sessions (last_seen_ns);
CREATE INDEX IF NOT EXISTS console_sessions_created ON console_sessions (created_ns);
`

// OpenSessions connects with cfg (the audit store's Config) and creates
// the session table if needed. The DSN is never logged or put into
// errors.
func OpenSessions(ctx context.Context, cfg Config) (*SessionStore, error) {
	pool, _, err := openPool(ctx, &cfg, "warden-console-sessions")
	if err != nil {
		return nil, fmt.Errorf("postgres: console sessions: %w", err)
	}
	s := &SessionStore{cfg: cfg, pool: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *SessionStore) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: console sessions: migrate: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(s.cfg.Schema, "sessions-migrate")); err != nil {
		return fmt.Errorf("postgres: console sessions: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.cfg.Schema}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: console sessions: create schema: %w", err)
	}
	if _, err := tx.Exec(ctx, sessionSchemaSQL); err != nil {
		return fmt.Errorf("postgres: console sessions: create table: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: console sessions: migrate: commit: %w", err)
	}
	return nil
}

// Close closes the pool. Closing twice is harmless.
func (s *SessionStore) Close() error {
	if !s.closed.Swap(true) {
		s.pool.Close()
	}
	return nil
}

func (s *SessionStore) exec(ctx context.Context, what, q string, args ...any) (int64, error) {
	if s.closed.Load() {
		return 0, errors.New("postgres: session store closed")
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("postgres: %s session: %w", what, err)
	}
	return tag.RowsAffected(), nil
}

// CreateSession implements console.SessionStore.
func (s *SessionStore) CreateSession(ctx context.Context, ss websession.Record) error {
	_, err := s.exec(ctx, "create", "INSERT INTO console_sessions (hash, principal, created_ns, last_seen_ns) VALUES ($1, $2, $3, $4)",
		ss.Hash, ss.Principal, ss.Created.UnixNano(), ss.LastSeen.UnixNano())
	return err
}

// GetSession implements console.SessionStore.
func (s *SessionStore) GetSession(ctx context.Context, hash []byte) (*websession.Record, error) {
	if s.closed.Load() {
		return nil, errors.New("postgres: session store closed")
	}
	var created, seen int64
	ss := &websession.Record{Hash: hash}
	err := s.pool.QueryRow(ctx, "SELECT principal, created_ns, last_seen_ns FROM console_sessions WHERE hash = $1", hash).
		Scan(&ss.Principal, &created, &seen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get session: %w", err)
	}
	ss.Created, ss.LastSeen = time.Unix(0, created), time.Unix(0, seen)
	return ss, nil
}

// TouchSession implements console.SessionStore.
func (s *SessionStore) TouchSession(ctx context.Context, hash []byte, lastSeen time.Time) error {
	_, err := s.exec(ctx, "touch", "UPDATE console_sessions SET last_seen_ns = greatest(last_seen_ns, $1) WHERE hash = $2", lastSeen.UnixNano(), hash)
	return err
}

// DeleteSession implements console.SessionStore.
func (s *SessionStore) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := s.exec(ctx, "delete", "DELETE FROM console_sessions WHERE hash = $1", hash)
	return err
}

// SweepSessions implements console.SessionStore.
func (s *SessionStore) SweepSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	return s.exec(ctx, "sweep", "DELETE FROM console_sessions WHERE last_seen_ns <= $1 OR created_ns <= $2",
		idleBefore.UnixNano(), createdBefore.UnixNano())
}

// CountSessions implements console.SessionStore.
func (s *SessionStore) CountSessions(ctx context.Context) (int64, error) {
	if s.closed.Load() {
		return 0, errors.New("postgres: session store closed")
	}
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM console_sessions").Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count sessions: %w", err)
	}
	return n, nil
}
