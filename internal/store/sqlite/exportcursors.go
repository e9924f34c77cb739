package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ExportCursors keeps every export sink's position in one small SQLite
// file, by default <data dir>/export.db, beside the embedded audit store.
// A position is one row per sink, replaced in a synchronous transaction,
// so a crash leaves the old or the new value.
type ExportCursors struct {
	path   string
	db     *sql.DB // the one writer: saves are serialised
	r      *sql.DB // query-only readers
	closed atomic.Bool
}

const exportCursorSchema = `
CREATE TABLE IF NOT EXISTS export_cursors (
	sink       TEXT    PRIMARY KEY,
	next       INTEGER NOT NULL CHECK (next >= 0),
	updated_ns INTEGER NOT NULL
) WITHOUT ROWID;
`

// OpenExportCursors opens (creating if needed) the cursor store at path
// (directory mode 0700, file mode 0600); it refuses the audit log's own
// file.
func OpenExportCursors(ctx context.Context, path string) (*ExportCursors, error) {
	w, r, err := openSideFile(ctx, path, "export cursors", exportCursorSchema)
	if err != nil {
		return nil, err
	}
	return &ExportCursors{path: path, db: w, r: r}, nil
}

// Path is the database file.
func (s *ExportCursors) Path() string { return s.path }

// Close closes the store. Closing twice is harmless.
func (s *ExportCursors) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return errors.Join(s.r.Close(), s.db.Close())
}

// Cursor returns the cursor of the sink named name (an export.Cursor).
func (s *ExportCursors) Cursor(name string) *ExportCursor { return &ExportCursor{s: s, name: name} }

// Positions returns every sink's saved position.
func (s *ExportCursors) Positions(ctx context.Context) (map[string]int64, error) {
	if s.closed.Load() {
		return nil, errors.New("sqlite: export cursors: store closed")
	}
	rows, err := s.r.QueryContext(ctx, "SELECT sink, next FROM export_cursors")
	if err != nil {
		return nil, fmt.Errorf("sqlite: export cursors: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("sqlite: export cursors: %w", err)
		}
		out[name] = n
	}
	return out, rows.Err()
}

// ExportCursor is one sink's position (it implements export.Cursor:
// Save is durable on return; Load is 0 for a sink that never saved).
type ExportCursor struct {
	s    *ExportCursors
	name string
}

// Load returns the saved position (0 if none).
func (c *ExportCursor) Load(ctx context.Context) (int64, error) {
	if c.s.closed.Load() {
		return 0, errors.New("sqlite: export cursor: store closed")
	}
	var n int64
	err := c.s.r.QueryRowContext(ctx, "SELECT next FROM export_cursors WHERE sink = ?", c.name).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: load export cursor %s: %w", c.name, err)
	}
	return n, nil
}

// Save stores the position durably.
func (c *ExportCursor) Save(ctx context.Context, next int64) error {
	if c.s.closed.Load() {
		return errors.New("sqlite: export cursor: store closed")
	}
	_, err := c.s.db.ExecContext(ctx, `INSERT INTO export_cursors(sink, next, updated_ns) VALUES (?, ?, ?)
		ON CONFLICT(sink) DO UPDATE SET next = excluded.next, updated_ns = excluded.updated_ns`,
		c.name, next, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: save export cursor %s: %w", c.name, err)
	}
	return nil
}
