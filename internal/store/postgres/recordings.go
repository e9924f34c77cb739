package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/wardenhq/warden/internal/recording"
)

var _ recording.Catalog = (*RecordingCatalog)(nil)

// RecordingCatalog is a recording.Catalog on PostgreSQL, shared by the
// replicas that share an S3 recording store: any replica can read (and
// erase) what another recorded. Its table (recordings) lives in the same
// schema as the audit tables.
//
// Erasing sets the wrapped key to NULL. PostgreSQL has no secure delete:
// the old row version stays in the table's pages until VACUUM reclaims
// and a later write reuses the space, and in WAL archives and base
// backups — still wrapped by the KEK. docs/recording.md says what that
// means for erasure guarantees.
type RecordingCatalog struct {
	cfg    Config
	pool   *pgxpool.Pool
	closed atomic.Bool
}

const recordingSchemaSQL = `
CREATE TABLE IF NOT EXISTS recordings (
	id            text   PRIMARY KEY,
	request_id    text   NOT NULL,
	principal     text   NOT NULL,
	route         text   NOT NULL,
	level         text   NOT NULL,
	started_ns    bigint NOT NULL,
	object        text   NOT NULL,
	size          bigint NOT NULL,
	digest        bytea  NOT NULL CHECK (length(digest) = 32),
	kek_id        text   NOT NULL,
	wrapped_key   bytea,
	created_ns    bigint NOT NULL,
	erased_ns     bigint,
	erased_by     text,
	erased_reason text
);
-- No request-id index (catalogues made before had one): request ids are
-- random, so it cost every commit one random page per recording. A
-- request's recordings are found through its audit entries
-- (docs/decisions/023-recording-lookup-and-group-commit.md).
DROP INDEX IF EXISTS recordings_request;
CREATE INDEX IF NOT EXISTS recordings_principal ON recordings (principal, started_ns);
CREATE INDEX IF NOT EXISTS recordings_started ON recordings (started_ns);
`

// OpenRecordingCatalog connects with cfg (the same Config as the audit
// store) and creates the recordings table if needed. The DSN is never
// logged or put into errors.
func OpenRecordingCatalog(ctx context.Context, cfg Config) (*RecordingCatalog, error) {
	pool, _, err := openPool(ctx, &cfg, "warden-recordings")
	if err != nil {
		return nil, fmt.Errorf("postgres: recordings: %w", err)
	}
	c := &RecordingCatalog{cfg: cfg, pool: pool}
	if err := c.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return c, nil
}

func (c *RecordingCatalog) migrate(ctx context.Context) error {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: recordings: migrate: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(c.cfg.Schema, "recordings-migrate")); err != nil {
		return fmt.Errorf("postgres: recordings: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{c.cfg.Schema}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: recordings: create schema: %w", err)
	}
	if _, err := tx.Exec(ctx, recordingSchemaSQL); err != nil {
		return fmt.Errorf("postgres: recordings: create table: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: recordings: migrate: commit: %w", err)
	}
	return nil
}

// Close closes the pool. Closing twice is harmless.
func (c *RecordingCatalog) Close() error {
	if !c.closed.Swap(true) {
		c.pool.Close()
	}
	return nil
}

func (c *RecordingCatalog) check() error {
	if c.closed.Load() {
		return errors.New("postgres: recording catalog closed")
	}
	return nil
}

func (c *RecordingCatalog) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.WriteTimeout)
}

const pgRecordingColumns = `id, request_id, principal, route, level, started_ns, object, size, digest, kek_id,
	wrapped_key, created_ns, erased_ns, erased_by, erased_reason`

// Put implements recording.Catalog.
func (c *RecordingCatalog) Put(ctx context.Context, e recording.Entry) error {
	return c.PutBatch(ctx, []recording.Entry{e})
}

// PutBatch implements recording.Catalog: one transaction.
func (c *RecordingCatalog) PutBatch(ctx context.Context, es []recording.Entry) error {
	if err := c.check(); err != nil {
		return err
	}
	if len(es) == 0 {
		return nil
	}
	ctx, cancel := c.writeCtx(ctx)
	defer cancel()
	b := &pgx.Batch{}
	for _, e := range es {
		b.Queue(`INSERT INTO recordings (`+pgRecordingColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, NULL)`,
			e.ID, e.RequestID, e.Principal, e.Route, string(e.Level), e.StartedAt.UnixNano(), e.Object, e.Size,
			e.Digest[:], e.KEKID, e.WrappedKey, e.CreatedAt.UnixNano())
	}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: put recordings: %w", recording.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: put recordings: %w", err)
	}
	return nil
}

func scanPGRecording(row pgx.Row) (recording.Entry, error) {
	var (
		e                   recording.Entry
		level               string
		started, created    int64
		digest, wrapped     []byte
		erasedNs            *int64
		erasedBy, erasedWhy *string
	)
	if err := row.Scan(&e.ID, &e.RequestID, &e.Principal, &e.Route, &level, &started, &e.Object, &e.Size,
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
	if erasedNs != nil {
		e.Erasure = &recording.Erasure{At: time.Unix(0, *erasedNs).UTC()}
		if erasedBy != nil {
			e.Erasure.By = *erasedBy
		}
		if erasedWhy != nil {
			e.Erasure.Reason = *erasedWhy
		}
	}
	return e, nil
}

// Get implements recording.Catalog.
func (c *RecordingCatalog) Get(ctx context.Context, id string) (recording.Entry, error) {
	if err := c.check(); err != nil {
		return recording.Entry{}, err
	}
	e, err := scanPGRecording(c.pool.QueryRow(ctx, `SELECT `+pgRecordingColumns+` FROM recordings WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, fmt.Errorf("postgres: recording %s: %w", id, recording.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("postgres: recording %s: %w", id, err)
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
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Principal != "" {
		where = append(where, "principal = "+arg(f.Principal))
	}
	if f.RequestID != "" {
		where = append(where, "request_id = "+arg(f.RequestID))
	}
	if !f.Before.IsZero() {
		where = append(where, "started_ns < "+arg(f.Before.UnixNano()))
	}
	if f.Erased != nil {
		if *f.Erased {
			where = append(where, "erased_ns IS NOT NULL")
		} else {
			where = append(where, "erased_ns IS NULL")
		}
	}
	if f.AfterID != "" {
		where = append(where, "id > "+arg(f.AfterID))
	}
	if f.BeforeID != "" {
		where = append(where, "id < "+arg(f.BeforeID))
	}
	q := `SELECT ` + pgRecordingColumns + ` FROM recordings`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	// COLLATE "C": ids compare bytewise, as in every other backend.
	q += ` ORDER BY id COLLATE "C" LIMIT ` + arg(limit)
	rows, err := c.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list recordings: %w", err)
	}
	defer rows.Close()
	var out []recording.Entry
	for rows.Next() {
		e, err := scanPGRecording(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list recordings: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list recordings: %w", err)
	}
	return out, nil
}

// Erase implements recording.Catalog.
func (c *RecordingCatalog) Erase(ctx context.Context, id string, er recording.Erasure) (recording.Entry, error) {
	if err := c.check(); err != nil {
		return recording.Entry{}, err
	}
	ctx, cancel := c.writeCtx(ctx)
	defer cancel()
	tag, err := c.pool.Exec(ctx, `UPDATE recordings SET wrapped_key = NULL, erased_ns = $1, erased_by = $2, erased_reason = $3
		WHERE id = $4 AND erased_ns IS NULL`, er.At.UnixNano(), er.By, er.Reason, id)
	if err != nil {
		return recording.Entry{}, fmt.Errorf("postgres: erase recording %s: %w", id, err)
	}
	e, err := c.Get(ctx, id)
	if err != nil {
		return e, err
	}
	if tag.RowsAffected() == 0 {
		return e, fmt.Errorf("postgres: erase recording %s: %w", id, recording.ErrErased)
	}
	return e, nil
}

// Probe implements recording.Catalog: a write that changes nothing
// proves the database accepts writes (not read-only, not a standby).
func (c *RecordingCatalog) Probe(ctx context.Context) error {
	if err := c.check(); err != nil {
		return err
	}
	if _, err := c.pool.Exec(ctx, "UPDATE recordings SET size = size WHERE false"); err != nil {
		return fmt.Errorf("postgres: probe recording catalog: %w", err)
	}
	return nil
}
