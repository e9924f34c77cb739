package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/internal/recording"
)

var _ recording.Catalog = (*RecordingCatalog)(nil)

// RecordingCatalog is a recording.Catalog on its own SQLite file (by
// default <data dir>/recordings/catalog.db): the catalogue of recordings
// and custody of their wrapped data keys, kept apart from the objects so
// that erasing a key makes every copy of the object unreadable.
//
// The file runs with secure_delete on, so an erased key's bytes are
// overwritten in the database pages, and each erasure ends with a
// truncating WAL checkpoint, so the pre-erasure page does not linger in
// the write-ahead log. Backups of this file taken before an erasure still
// hold the key: see docs/recording.md.
type RecordingCatalog struct {
	path   string
	w      *sql.DB // one connection: the writer
	r      *sql.DB
	closed atomic.Bool

	// inserts are the prepared multi-row INSERTs by row count (powers of
	// two up to putRows), prepared when the catalogue opens: preparing a
	// 64-row statement (768 parameters) for every batch cost as much CPU
	// as executing it. Read-only after OpenRecordingCatalog.
	inserts map[int]*sql.Stmt
}

const recordingSchema = `
CREATE TABLE IF NOT EXISTS recordings (
	id            TEXT    PRIMARY KEY,
	request_id    TEXT    NOT NULL,
	principal     TEXT    NOT NULL,
	route         TEXT    NOT NULL,
	level         TEXT    NOT NULL,
	started_ns    INTEGER NOT NULL,
	object        TEXT    NOT NULL,
	size          INTEGER NOT NULL,
	digest        BLOB    NOT NULL CHECK (length(digest) = 32),
	kek_id        TEXT    NOT NULL,
	wrapped_key   BLOB,
	created_ns    INTEGER NOT NULL,
	erased_ns     INTEGER,
	erased_by     TEXT,
	erased_reason TEXT
);
-- No request-id index (catalogues made before had one): request ids are
-- random, so it cost every commit one random page per recording. A
-- request's recordings are found through its audit entries
-- (docs/decisions/023-recording-lookup-and-group-commit.md).
DROP INDEX IF EXISTS recordings_request;
CREATE INDEX IF NOT EXISTS recordings_principal ON recordings(principal, started_ns);
CREATE INDEX IF NOT EXISTS recordings_started ON recordings(started_ns);
`

// OpenRecordingCatalog opens (creating if needed, mode 0600) the catalogue
// at path. It refuses a file that holds the audit log.
func OpenRecordingCatalog(ctx context.Context, path string) (*RecordingCatalog, error) {
	w, r, err := openSideFile(ctx, path, "recording catalog", recordingSchema, "secure_delete(1)", "temp_store(MEMORY)")
	if err != nil {
		return nil, err
	}
	c := &RecordingCatalog{path: path, w: w, r: r, inserts: map[int]*sql.Stmt{}}
	for n := 1; n <= putRows; n *= 2 {
		st, err := w.PrepareContext(ctx, insertRecordings(n))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("sqlite: open recording catalog %s: prepare insert of %d rows: %w", path, n, err)
		}
		c.inserts[n] = st
	}
	return c, nil
}

// Close closes the catalogue. Closing twice is harmless.
func (c *RecordingCatalog) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, st := range c.inserts {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, c.r.Close(), c.w.Close())...)
}

func (c *RecordingCatalog) check() error {
	if c.closed.Load() {
		return errors.New("sqlite: recording catalog closed")
	}
	return nil
}

const recordingColumns = `id, request_id, principal, route, level, started_ns, object, size, digest, kek_id,
	wrapped_key, created_ns, erased_ns, erased_by, erased_reason`

// Put implements recording.Catalog.
func (c *RecordingCatalog) Put(ctx context.Context, e recording.Entry) error {
	return c.PutBatch(ctx, []recording.Entry{e})
}

// PutBatch implements recording.Catalog: one transaction, one sync.
func (c *RecordingCatalog) PutBatch(ctx context.Context, es []recording.Entry) (err error) {
	if err := c.check(); err != nil {
		return err
	}
	if len(es) == 0 {
		return nil
	}
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: put recordings: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// Multi-row INSERTs: one statement (one trip through database/sql
	// and one VDBE program) per putRows entries, instead of one each;
	// a batch is cut into power-of-two row counts so that a handful of
	// prepared statements serve every batch size.
	args := make([]any, 0, min(len(es), putRows)*12)
	for len(es) > 0 {
		n := insertRows(len(es))
		st := c.inserts[n]
		args = args[:0]
		for _, e := range es[:n] {
			args = append(args, e.ID, e.RequestID, e.Principal, e.Route, string(e.Level), e.StartedAt.UnixNano(),
				e.Object, e.Size, e.Digest[:], e.KEKID, e.WrappedKey, e.CreatedAt.UnixNano())
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			if strings.Contains(err.Error(), "UNIQUE constraint failed") {
				return fmt.Errorf("sqlite: put recordings (%d, from %s): %w", n, es[0].ID, recording.ErrExists)
			}
			return fmt.Errorf("sqlite: put recordings (%d, from %s): %w", n, es[0].ID, err)
		}
		es = es[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: put recordings: commit: %w", err)
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func scanRecording(s scanner) (recording.Entry, error) {
	var (
		e                   recording.Entry
		level               string
		started, created    int64
		digest, wrapped     []byte
		erasedNs            sql.NullInt64
		erasedBy, erasedWhy sql.NullString
	)
	if err := s.Scan(&e.ID, &e.RequestID, &e.Principal, &e.Route, &level, &started, &e.Object, &e.Size,
		&digest, &e.KEKID, &wrapped, &created, &erasedNs, &erasedBy, &erasedWhy); err != nil {
		return e, err
	}
	e.Level = recording.Level(level)
	e.StartedAt = time.Unix(0, started).UTC()
	e.CreatedAt = time.Unix(0, created).UTC()
	copy(e.Digest[:], digest)
	if len(wrapped) > 0 {
		e.WrappedKey = wrapped
	}
	if erasedNs.Valid {
		e.Erasure = &recording.Erasure{At: time.Unix(0, erasedNs.Int64).UTC(), By: erasedBy.String, Reason: erasedWhy.String}
	}
	return e, nil
}

// putRows is the most rows one INSERT carries (12 parameters each, far
// below SQLite's 32766); a power of two, as insertRows cuts batches.
const putRows = 64

// insertRows is how many of n pending rows the next INSERT takes: the
// largest power of two not above n or putRows.
func insertRows(n int) int {
	k := 1
	for k*2 <= min(n, putRows) {
		k *= 2
	}
	return k
}

// insertRecordings is the INSERT statement for n rows.
func insertRecordings(n int) string {
	const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)"
	var b strings.Builder
	b.Grow(64 + n*(len(row)+2))
	// OR ROLLBACK: a failing row ends the whole transaction (PutBatch
	// fails the whole batch anyway), so SQLite needs no statement journal
	// to undo just this statement — a copy of every page it touches,
	// which cost ~3% of a recording's CPU.
	b.WriteString("INSERT OR ROLLBACK INTO recordings (" + recordingColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// Get implements recording.Catalog.
func (c *RecordingCatalog) Get(ctx context.Context, id string) (recording.Entry, error) {
	if err := c.check(); err != nil {
		return recording.Entry{}, err
	}
	e, err := scanRecording(c.r.QueryRowContext(ctx, `SELECT `+recordingColumns+` FROM recordings WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("sqlite: recording %s: %w", id, recording.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("sqlite: recording %s: %w", id, err)
	}
	return e, nil
}

// List implements recording.Catalog.
func (c *RecordingCatalog) List(ctx context.Context, f recording.Filter) ([]recording.Entry, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	if f.Principal != "" {
		where, args = append(where, "principal = ?"), append(args, f.Principal)
	}
	if f.RequestID != "" {
		where, args = append(where, "request_id = ?"), append(args, f.RequestID)
	}
	if !f.Before.IsZero() {
		where, args = append(where, "started_ns < ?"), append(args, f.Before.UnixNano())
	}
	if f.Erased != nil {
		if *f.Erased {
			where = append(where, "erased_ns IS NOT NULL")
		} else {
			where = append(where, "erased_ns IS NULL")
		}
	}
	if f.AfterID != "" {
		where, args = append(where, "id > ?"), append(args, f.AfterID)
	}
	if f.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, f.BeforeID)
	}
	q := `SELECT ` + recordingColumns + ` FROM recordings`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	rows, err := c.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list recordings: %w", err)
	}
	defer rows.Close()
	var out []recording.Entry
	for rows.Next() {
		e, err := scanRecording(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list recordings: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list recordings: %w", err)
	}
	return out, nil
}

// Erase implements recording.Catalog: the wrapped key is set to NULL
// (secure_delete overwrites its bytes) and a truncating checkpoint drops
// the old page from the write-ahead log.
func (c *RecordingCatalog) Erase(ctx context.Context, id string, er recording.Erasure) (recording.Entry, error) {
	if err := c.check(); err != nil {
		return recording.Entry{}, err
	}
	res, err := c.w.ExecContext(ctx, `UPDATE recordings SET wrapped_key = NULL, erased_ns = ?, erased_by = ?, erased_reason = ?
		WHERE id = ? AND erased_ns IS NULL`, er.At.UnixNano(), er.By, er.Reason, id)
	if err != nil {
		return recording.Entry{}, fmt.Errorf("sqlite: erase recording %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return recording.Entry{}, fmt.Errorf("sqlite: erase recording %s: %w", id, err)
	}
	e, err := scanRecording(c.w.QueryRowContext(ctx, `SELECT `+recordingColumns+` FROM recordings WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("sqlite: erase recording %s: %w", id, recording.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("sqlite: erase recording %s: %w", id, err)
	}
	if n == 0 {
		return e, fmt.Errorf("sqlite: erase recording %s: %w", id, recording.ErrErased)
	}
	// Best effort: readers holding an old snapshot can keep the WAL busy;
	// the next erasure (or SQLite's own checkpoint) completes it.
	_, _ = c.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return e, nil
}

// Probe implements recording.Catalog: a write transaction that changes
// nothing proves the file is writable and not locked.
func (c *RecordingCatalog) Probe(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: probe recording catalog: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "UPDATE recordings SET size = size WHERE 0"); err != nil {
		return fmt.Errorf("sqlite: probe recording catalog: %w", err)
	}
	return tx.Commit()
}
