package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/internal/approval"
)

var _ approval.Store = (*ApprovalStore)(nil)

// ApprovalStore is an approval.Store on its own SQLite file (by default
// <data dir>/approvals.db). It must not share a file with the audit
// Store: approval transitions append audit entries while holding this
// store's write lock, and the audit writer would wait for that lock.
//
// Transitions are race-free because every write runs in a BEGIN
// IMMEDIATE transaction on the single writer connection: Update and
// Insert of different goroutines never interleave.
type ApprovalStore struct {
	path   string
	w      *sql.DB // exactly one connection
	r      *sql.DB
	closed atomic.Bool
}

const approvalSchema = `
CREATE TABLE IF NOT EXISTS approval_requests (
	id            TEXT    PRIMARY KEY,
	kind          TEXT    NOT NULL,
	state         TEXT    NOT NULL,
	setting       TEXT    NOT NULL,
	requester_iss TEXT    NOT NULL,
	requester_sub TEXT    NOT NULL,
	open_key      TEXT    UNIQUE,
	bind_key      TEXT    NOT NULL,
	created_ns    INTEGER NOT NULL,
	due_ns        INTEGER,
	version       INTEGER NOT NULL,
	data          BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_requests_bind ON approval_requests(bind_key, created_ns);
CREATE INDEX IF NOT EXISTS approval_requests_due ON approval_requests(due_ns) WHERE due_ns IS NOT NULL;
CREATE INDEX IF NOT EXISTS approval_requests_grants ON approval_requests(requester_iss, requester_sub) WHERE kind = 'grant' AND state = 'approved';
CREATE INDEX IF NOT EXISTS approval_requests_created ON approval_requests(created_ns);
`

// OpenApprovals opens (creating if needed) the approval store at path.
// It refuses a file that holds the audit log.
func OpenApprovals(ctx context.Context, path string) (*ApprovalStore, error) {
	w, r, err := openSideFile(ctx, path, "approvals", approvalSchema)
	if err != nil {
		return nil, err
	}
	return &ApprovalStore{path: path, w: w, r: r}, nil
}

// Close closes the store. Closing twice is harmless.
func (s *ApprovalStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

func (s *ApprovalStore) check() error {
	if s.closed.Load() {
		return errors.New("sqlite: approval store closed")
	}
	return nil
}

// row holds the derived columns of a request.
type approvalRow struct {
	openKey any // string or nil
	dueNs   any // int64 or nil
	data    []byte
}

func approvalColumns(r *approval.Request) (approvalRow, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return approvalRow{}, fmt.Errorf("sqlite: encode approval %s: %w", r.ID, err)
	}
	row := approvalRow{data: data}
	if k := r.OpenKey(); k != "" {
		row.openKey = k
	}
	if d := r.DueAt(); !d.IsZero() {
		row.dueNs = d.UnixNano()
	}
	return row, nil
}

func decodeApproval(data []byte) (*approval.Request, error) {
	var r approval.Request
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("sqlite: decode approval: %w", err)
	}
	return &r, nil
}

// Insert implements approval.Store.
func (s *ApprovalStore) Insert(ctx context.Context, r *approval.Request, before func() error) (err error) {
	if err := s.check(); err != nil {
		return err
	}
	row, err := approvalColumns(r)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: insert approval %s: %w", r.ID, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if row.openKey != nil {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM approval_requests WHERE open_key = ?", row.openKey).Scan(&n); err != nil {
			return fmt.Errorf("sqlite: insert approval %s: %w", r.ID, err)
		}
		if n > 0 {
			return fmt.Errorf("sqlite: insert approval %s: %w", r.ID, approval.ErrDuplicate)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO approval_requests
		(id, kind, state, setting, requester_iss, requester_sub, open_key, bind_key, created_ns, due_ns, version, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, string(r.Kind), string(r.State), r.SettingName, r.Requester.Issuer, r.Requester.Subject,
		row.openKey, r.BindKey(), r.CreatedAt.UnixNano(), row.dueNs, r.Version, row.data)
	if err != nil {
		return fmt.Errorf("sqlite: insert approval %s: %w", r.ID, err)
	}
	if before != nil {
		if err := before(); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: insert approval %s: commit: %w", r.ID, err)
	}
	return nil
}

// Update implements approval.Store.
func (s *ApprovalStore) Update(ctx context.Context, id string, fn func(r *approval.Request) error) (_ *approval.Request, err error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: update approval %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	var data []byte
	var version int64
	err = tx.QueryRowContext(ctx, "SELECT data, version FROM approval_requests WHERE id = ?", id).Scan(&data, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: approval %s: %w", id, approval.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: update approval %s: %w", id, err)
	}
	r, err := decodeApproval(data)
	if err != nil {
		return nil, err
	}
	r.Version = version
	if err := fn(r); err != nil {
		return nil, err
	}
	r.ID = id
	r.Version = version + 1
	row, err := approvalColumns(r)
	if err != nil {
		return nil, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE approval_requests SET state = ?, open_key = ?, due_ns = ?, version = ?, data = ?
		WHERE id = ? AND version = ?`, string(r.State), row.openKey, row.dueNs, r.Version, row.data, id, version)
	if err != nil {
		return nil, fmt.Errorf("sqlite: update approval %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, fmt.Errorf("sqlite: update approval %s: concurrent change: %w", id, approval.ErrConflict)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: update approval %s: commit: %w", id, err)
	}
	return r, nil
}

func (s *ApprovalStore) one(ctx context.Context, what, query string, args ...any) (*approval.Request, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var data []byte
	var version int64
	err := s.r.QueryRowContext(ctx, query, args...).Scan(&data, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: approval %s: %w", what, approval.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: approval %s: %w", what, err)
	}
	r, err := decodeApproval(data)
	if err != nil {
		return nil, err
	}
	r.Version = version
	return r, nil
}

func (s *ApprovalStore) many(ctx context.Context, query string, args ...any) ([]*approval.Request, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list approvals: %w", err)
	}
	defer rows.Close()
	var out []*approval.Request
	for rows.Next() {
		var data []byte
		var version int64
		if err := rows.Scan(&data, &version); err != nil {
			return nil, fmt.Errorf("sqlite: list approvals: %w", err)
		}
		r, err := decodeApproval(data)
		if err != nil {
			return nil, err
		}
		r.Version = version
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list approvals: %w", err)
	}
	return out, nil
}

// Get implements approval.Store.
func (s *ApprovalStore) Get(ctx context.Context, id string) (*approval.Request, error) {
	return s.one(ctx, id, "SELECT data, version FROM approval_requests WHERE id = ?", id)
}

// Open implements approval.Store.
func (s *ApprovalStore) Open(ctx context.Context, key string) (*approval.Request, error) {
	return s.one(ctx, "open key", "SELECT data, version FROM approval_requests WHERE open_key = ?", key)
}

// LatestByBindKey implements approval.Store.
func (s *ApprovalStore) LatestByBindKey(ctx context.Context, key string) (*approval.Request, error) {
	return s.one(ctx, "bind key", "SELECT data, version FROM approval_requests WHERE bind_key = ? ORDER BY created_ns DESC, id DESC LIMIT 1", key)
}

// Grants implements approval.Store.
func (s *ApprovalStore) Grants(ctx context.Context, issuer, subject string, now time.Time) ([]*approval.Request, error) {
	return s.many(ctx, `SELECT data, version FROM approval_requests
		WHERE requester_iss = ? AND requester_sub = ? AND kind = 'grant' AND state = 'approved' AND due_ns > ?
		ORDER BY created_ns`, issuer, subject, now.UnixNano())
}

// Due implements approval.Store.
func (s *ApprovalStore) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, "SELECT id FROM approval_requests WHERE due_ns IS NOT NULL AND due_ns <= ? ORDER BY due_ns LIMIT ?", now.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: due approvals: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlite: due approvals: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// List implements approval.Store.
func (s *ApprovalStore) List(ctx context.Context, f approval.Filter) ([]*approval.Request, error) {
	q := "SELECT data, version FROM approval_requests WHERE 1=1"
	var args []any
	if f.State != "" {
		q += " AND state = ?"
		args = append(args, string(f.State))
	}
	if f.Kind != "" {
		q += " AND kind = ?"
		args = append(args, f.Kind)
	}
	if f.Setting != "" {
		q += " AND setting = ?"
		args = append(args, f.Setting)
	}
	if f.RequesterSubject != "" {
		q += " AND requester_sub = ?"
		args = append(args, f.RequesterSubject)
	}
	q += " ORDER BY created_ns DESC, id DESC LIMIT ?"
	args = append(args, f.EffectiveLimit())
	return s.many(ctx, q, args...)
}
