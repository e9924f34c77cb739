package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/internal/witness"
)

var _ witness.Store = (*CosignatureStore)(nil)

// CosignatureStore keeps witness cosignatures (witness.Store) in their own
// SQLite file, by default <data dir>/cosignatures.db, beside the embedded
// audit store: one row per (checkpoint size, witness key), append-only
// like the log. (PostgreSQL keeps them in a table of the audit schema.)
type CosignatureStore struct {
	path     string
	w        *sql.DB // one connection: the writer (nil when read-only)
	r        *sql.DB
	mu       sync.Mutex
	closed   atomic.Bool
	readOnly bool
}

const cosignatureSchema = `
CREATE TABLE IF NOT EXISTS cosignatures (
	size     INTEGER NOT NULL,
	witness  TEXT    NOT NULL,
	key_hash INTEGER NOT NULL,
	time_s   INTEGER NOT NULL,
	note     BLOB    NOT NULL,
	PRIMARY KEY (size, witness, key_hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cosignatures_witness ON cosignatures(witness, size);
CREATE TRIGGER IF NOT EXISTS cosignatures_no_update BEFORE UPDATE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'audit cosignatures are append-only'); END;
CREATE TRIGGER IF NOT EXISTS cosignatures_no_delete BEFORE DELETE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'audit cosignatures are append-only'); END;
`

func dsn(path string, q url.Values) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// OpenCosignatures opens (creating if needed) the cosignature store at
// path (directory mode 0700, file mode 0600).
func OpenCosignatures(ctx context.Context, path string) (*CosignatureStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open cosignatures %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open cosignatures %s: %w", path, err)
	}
	f.Close()
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", dsn(path, q))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open cosignatures %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if _, err := w.ExecContext(ctx, cosignatureSchema); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: create cosignature table in %s: %w", path, err)
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "10000")
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", dsn(path, rq))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open cosignatures %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	return &CosignatureStore{path: path, w: w, r: r}, nil
}

// OpenCosignaturesReadOnly opens an existing cosignature store for reading
// (offline verification); a missing file is an error wrapping
// fs.ErrNotExist.
func OpenCosignaturesReadOnly(ctx context.Context, path string) (*CosignatureStore, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: open cosignatures %s: %w", path, err)
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "10000")
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", dsn(path, rq))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open cosignatures %s: %w", path, err)
	}
	r.SetMaxOpenConns(2)
	var n int
	if err := r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'cosignatures'").Scan(&n); err != nil || n != 1 {
		r.Close()
		if err == nil {
			err = errors.New("no cosignatures table (not a cosignature store?)")
		}
		return nil, fmt.Errorf("sqlite: open cosignatures %s: %w", path, err)
	}
	return &CosignatureStore{path: path, r: r, readOnly: true}, nil
}

// Path is the database file.
func (s *CosignatureStore) Path() string { return s.path }

// Close closes the store. Closing twice is harmless.
func (s *CosignatureStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return s.r.Close()
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// PutCosignature stores a witness's cosignature (a no-op if that witness
// key's cosignature for the size is already there). Durable on return.
func (s *CosignatureStore) PutCosignature(ctx context.Context, c witness.Cosignature) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed.Load():
		return fmt.Errorf("sqlite: put cosignature: store closed")
	case s.readOnly:
		return fmt.Errorf("sqlite: %s is open read-only", s.path)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO cosignatures(size, witness, key_hash, time_s, note)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, c.Size, c.Witness, int64(c.KeyHash), c.Time.Unix(), c.Note)
	if err != nil {
		return fmt.Errorf("sqlite: put cosignature %d by %s: %w", c.Size, c.Witness, err)
	}
	return nil
}

// Cosignatures returns up to limit cosignatures with size < before (all
// sizes if before <= 0), newest first, of one witness unless witness is
// empty.
func (s *CosignatureStore) Cosignatures(ctx context.Context, witnessName string, before int64, limit int) ([]witness.Cosignature, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("sqlite: cosignatures: store closed")
	}
	if before <= 0 {
		before = 1<<63 - 1
	}
	if limit <= 0 {
		limit = 100
	}
	var rows *sql.Rows
	var err error
	if witnessName == "" {
		rows, err = s.r.QueryContext(ctx, `SELECT size, witness, key_hash, time_s, note FROM cosignatures
			WHERE size < ? ORDER BY size DESC, witness, key_hash LIMIT ?`, before, limit)
	} else {
		rows, err = s.r.QueryContext(ctx, `SELECT size, witness, key_hash, time_s, note FROM cosignatures
			WHERE witness = ? AND size < ? ORDER BY size DESC, key_hash LIMIT ?`, witnessName, before, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: cosignatures: %w", err)
	}
	defer rows.Close()
	var out []witness.Cosignature
	for rows.Next() {
		var c witness.Cosignature
		var kh, ts int64
		if err := rows.Scan(&c.Size, &c.Witness, &kh, &ts, &c.Note); err != nil {
			return nil, fmt.Errorf("sqlite: cosignatures: %w", err)
		}
		c.KeyHash, c.Time = uint32(kh), time.Unix(ts, 0).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: cosignatures: %w", err)
	}
	return out, nil
}
