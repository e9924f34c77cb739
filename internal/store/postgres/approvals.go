package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardenhq/warden/internal/approval"
)

var (
	_ approval.Store   = (*ApprovalStore)(nil)
	_ approval.Watcher = (*ApprovalStore)(nil)
)

// ApprovalStore is an approval.Store on PostgreSQL, shared by gateway
// replicas. Its tables (prefixed approval_) live in the same schema as
// the audit tables.
//
// Transitions are race-free: Update locks the row (SELECT … FOR UPDATE)
// for the whole transaction, and open-key uniqueness is a unique index
// (concurrent inserts of the same key wait for each other). Every
// committed Insert or Update sends NOTIFY on the schema's approval
// channel in the same transaction; Watch LISTENs on it, so a replica
// holding a request wakes when another replica approves it.
type ApprovalStore struct {
	cfg     Config
	log     *slog.Logger
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig
	channel string
	closed  atomic.Bool

	listenOnce sync.Once
	listening  chan struct{} // closed when Watch first listens
}

const approvalSchemaSQL = `
CREATE TABLE IF NOT EXISTS approval_requests (
	id            text   PRIMARY KEY,
	kind          text   NOT NULL,
	state         text   NOT NULL,
	setting       text   NOT NULL,
	requester_iss text   NOT NULL,
	requester_sub text   NOT NULL,
	open_key      text   UNIQUE,
	bind_key      text   NOT NULL,
	created_ns    bigint NOT NULL,
	due_ns        bigint,
	version       bigint NOT NULL,
	data          bytea  NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_requests_bind ON approval_requests (bind_key, created_ns);
CREATE INDEX IF NOT EXISTS approval_requests_due ON approval_requests (due_ns) WHERE due_ns IS NOT NULL;
CREATE INDEX IF NOT EXISTS approval_requests_grants ON approval_requests (requester_iss, requester_sub) WHERE kind = 'grant' AND state = 'approved';
CREATE INDEX IF NOT EXISTS approval_requests_created ON approval_requests (created_ns);
`

// OpenApprovals connects with cfg (the same Config as the audit store:
// DSN, Schema, MaxConns, WriteTimeout) and creates the approval tables
// if needed. The DSN is never logged or put into errors.
func OpenApprovals(ctx context.Context, cfg Config, log *slog.Logger) (*ApprovalStore, error) {
	if log == nil {
		log = slog.Default()
	}
	pool, connCfg, err := openPool(ctx, &cfg, "warden-approvals")
	if err != nil {
		return nil, fmt.Errorf("postgres: approvals: %w", err)
	}
	s := &ApprovalStore{
		cfg: cfg, log: log.With("component", "approval.postgres", "schema", cfg.Schema),
		pool: pool, connCfg: connCfg,
		channel:   "warden_approvals:" + cfg.Schema,
		listening: make(chan struct{}),
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *ApprovalStore) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: approvals: migrate: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(s.cfg.Schema, "approvals-migrate")); err != nil {
		return fmt.Errorf("postgres: approvals: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{s.cfg.Schema}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: approvals: create schema: %w", err)
	}
	if _, err := tx.Exec(ctx, approvalSchemaSQL); err != nil {
		return fmt.Errorf("postgres: approvals: create tables: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: approvals: migrate: commit: %w", err)
	}
	return nil
}

// Close closes the pool; a running Watch ends with its context.
// Closing twice is harmless.
func (s *ApprovalStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}

func (s *ApprovalStore) check() error {
	if s.closed.Load() {
		return errors.New("postgres: approval store closed")
	}
	return nil
}

func (s *ApprovalStore) columns(r *approval.Request) (openKey, dueNs any, data []byte, err error) {
	data, err = json.Marshal(r)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("postgres: encode approval %s: %w", r.ID, err)
	}
	if k := r.OpenKey(); k != "" {
		openKey = k
	}
	if d := r.DueAt(); !d.IsZero() {
		dueNs = d.UnixNano()
	}
	return openKey, dueNs, data, nil
}

func decodePGApproval(data []byte, version int64) (*approval.Request, error) {
	var r approval.Request
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("postgres: decode approval: %w", err)
	}
	r.Version = version
	return &r, nil
}

// Insert implements approval.Store.
func (s *ApprovalStore) Insert(ctx context.Context, r *approval.Request, before func() error) error {
	if err := s.check(); err != nil {
		return err
	}
	openKey, dueNs, data, err := s.columns(r)
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: insert approval %s: %w", r.ID, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	tag, err := tx.Exec(ctx, `INSERT INTO approval_requests
		(id, kind, state, setting, requester_iss, requester_sub, open_key, bind_key, created_ns, due_ns, version, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (open_key) DO NOTHING`,
		r.ID, string(r.Kind), string(r.State), r.SettingName, r.Requester.Issuer, r.Requester.Subject,
		openKey, r.BindKey(), r.CreatedAt.UnixNano(), dueNs, r.Version, data)
	if err != nil {
		return fmt.Errorf("postgres: insert approval %s: %w", r.ID, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("postgres: insert approval %s: %w", r.ID, approval.ErrDuplicate)
	}
	if before != nil {
		if err := before(); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", s.channel, r.ID); err != nil {
		return fmt.Errorf("postgres: insert approval %s: notify: %w", r.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: insert approval %s: commit: %w", r.ID, err)
	}
	return nil
}

// Update implements approval.Store.
func (s *ApprovalStore) Update(ctx context.Context, id string, fn func(r *approval.Request) error) (*approval.Request, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: update approval %s: %w", id, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	var data []byte
	var version int64
	err = tx.QueryRow(ctx, "SELECT data, version FROM approval_requests WHERE id = $1 FOR UPDATE", id).Scan(&data, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: approval %s: %w", id, approval.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: update approval %s: %w", id, err)
	}
	r, err := decodePGApproval(data, version)
	if err != nil {
		return nil, err
	}
	if err := fn(r); err != nil {
		return nil, err
	}
	r.ID = id
	r.Version = version + 1
	openKey, dueNs, data, err := s.columns(r)
	if err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `UPDATE approval_requests SET state = $1, open_key = $2, due_ns = $3, version = $4, data = $5
		WHERE id = $6 AND version = $7`, string(r.State), openKey, dueNs, r.Version, data, id, version)
	if err != nil {
		return nil, fmt.Errorf("postgres: update approval %s: %w", id, err)
	}
	if tag.RowsAffected() != 1 {
		return nil, fmt.Errorf("postgres: update approval %s: concurrent change: %w", id, approval.ErrConflict)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", s.channel, id); err != nil {
		return nil, fmt.Errorf("postgres: update approval %s: notify: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("postgres: update approval %s: commit: %w", id, err)
	}
	return r, nil
}

func (s *ApprovalStore) one(ctx context.Context, what, query string, args ...any) (*approval.Request, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var data []byte
	var version int64
	err := s.pool.QueryRow(ctx, query, args...).Scan(&data, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: approval %s: %w", what, approval.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: approval %s: %w", what, err)
	}
	return decodePGApproval(data, version)
}

func (s *ApprovalStore) many(ctx context.Context, query string, args ...any) ([]*approval.Request, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list approvals: %w", err)
	}
	defer rows.Close()
	var out []*approval.Request
	for rows.Next() {
		var data []byte
		var version int64
		if err := rows.Scan(&data, &version); err != nil {
			return nil, fmt.Errorf("postgres: list approvals: %w", err)
		}
		r, err := decodePGApproval(data, version)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list approvals: %w", err)
	}
	return out, nil
}

// Get implements approval.Store.
func (s *ApprovalStore) Get(ctx context.Context, id string) (*approval.Request, error) {
	return s.one(ctx, id, "SELECT data, version FROM approval_requests WHERE id = $1", id)
}

// Open implements approval.Store.
func (s *ApprovalStore) Open(ctx context.Context, key string) (*approval.Request, error) {
	return s.one(ctx, "open key", "SELECT data, version FROM approval_requests WHERE open_key = $1", key)
}

// LatestByBindKey implements approval.Store.
func (s *ApprovalStore) LatestByBindKey(ctx context.Context, key string) (*approval.Request, error) {
	return s.one(ctx, "bind key", "SELECT data, version FROM approval_requests WHERE bind_key = $1 ORDER BY created_ns DESC, id DESC LIMIT 1", key)
}

// Grants implements approval.Store.
func (s *ApprovalStore) Grants(ctx context.Context, issuer, subject string, now time.Time) ([]*approval.Request, error) {
	return s.many(ctx, `SELECT data, version FROM approval_requests
		WHERE requester_iss = $1 AND requester_sub = $2 AND kind = 'grant' AND state = 'approved' AND due_ns > $3
		ORDER BY created_ns`, issuer, subject, now.UnixNano())
}

// Due implements approval.Store.
func (s *ApprovalStore) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, "SELECT id FROM approval_requests WHERE due_ns IS NOT NULL AND due_ns <= $1 ORDER BY due_ns LIMIT $2", now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: due approvals: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: due approvals: %w", err)
	}
	return ids, nil
}

// List implements approval.Store.
func (s *ApprovalStore) List(ctx context.Context, f approval.Filter) ([]*approval.Request, error) {
	q := "SELECT data, version FROM approval_requests WHERE true"
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND %s = $%d", cond, len(args))
	}
	if f.State != "" {
		add("state", string(f.State))
	}
	if f.Kind != "" {
		add("kind", f.Kind)
	}
	if f.Setting != "" {
		add("setting", f.Setting)
	}
	if f.RequesterSubject != "" {
		add("requester_sub", f.RequesterSubject)
	}
	args = append(args, f.EffectiveLimit())
	q += fmt.Sprintf(" ORDER BY created_ns DESC, id DESC LIMIT $%d", len(args))
	return s.many(ctx, q, args...)
}

// Watch implements approval.Watcher: it LISTENs on the approval channel
// on a dedicated connection, reconnecting with backoff (and reporting ""
// after each reconnect, since notifications may have been missed), until
// ctx is done.
func (s *ApprovalStore) Watch(ctx context.Context, fn func(id string)) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listen(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("approval notification listener failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 5*time.Second)
	}
	return nil
}

func (s *ApprovalStore) listen(ctx context.Context, fn func(id string)) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	c, err := pgx.ConnectConfig(cctx, s.connCfg)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close(context.Background()) //nolint:errcheck
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	s.listenOnce.Do(func() { close(s.listening) })
	fn("")
	for {
		n, err := c.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Payload)
	}
}

// WaitListening blocks until Watch has started listening (for tests and
// start-up ordering) or ctx is done.
func (s *ApprovalStore) WaitListening(ctx context.Context) error {
	select {
	case <-s.listening:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
