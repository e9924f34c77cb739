package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
)

// openSideFile opens (creating it: directory 0700, file 0600) a SQLite file
// that a store keeps beside the audit log, never inside it: it refuses a
// file that holds the audit log's tables. It returns the one writer
// connection (WAL, synchronous FULL, immediate transactions, plus
// pragmas such as "secure_delete(1)") with schema applied, and a pool of
// query-only readers. what names the store in errors.
func openSideFile(ctx context.Context, path, what, schema string, pragmas ...string) (w, r *sql.DB, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("sqlite: open %s %s: %w", what, path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: open %s %s: %w", what, path, err)
	}
	f.Close()
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	w, err = sql.Open("sqlite", dsn(path, q))
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: open %s %s: %w", what, path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	var audit int
	if err := w.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'entries'").Scan(&audit); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("sqlite: open %s %s: %w", what, path, err)
	}
	if audit > 0 {
		w.Close()
		return nil, nil, fmt.Errorf("sqlite: open %s %s: the file holds the audit log; use a separate file", what, path)
	}
	if _, err := w.ExecContext(ctx, schema); err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("sqlite: create %s schema in %s: %w", what, path, err)
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "10000")
	rq.Set("_query_only", "1")
	r, err = sql.Open("sqlite", dsn(path, rq))
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("sqlite: open %s %s: %w", what, path, err)
	}
	r.SetMaxOpenConns(4)
	return w, r, nil
}
