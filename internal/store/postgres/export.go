package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ExportStore keeps the export sinks' cursors in a table of the audit
// schema and elects the one replica that exports.
//
// Exactly one exporter: the exporting replica holds a session advisory
// lock on a dedicated connection (Lead). PostgreSQL releases it the
// moment that session ends — the process died, was killed, or lost its
// connection — and another replica's next Lead call takes it. Cursor
// saves go through that same connection and first check that the lock is
// still held by it, so a replica that lost the lock cannot move a cursor
// (it may still have sent a batch: delivery is at least once, receivers
// de-duplicate on the event uid).
type ExportStore struct {
	cfg     Config
	log     *slog.Logger
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig
	key     int64
	closed  atomic.Bool

	mu     sync.Mutex // guards conn and held; held while using conn
	conn   *pgx.Conn
	held   bool
	holder string
}

const exportSchemaSQL = `
CREATE TABLE IF NOT EXISTS export_cursors (
	sink       text        PRIMARY KEY,
	next       bigint      NOT NULL CHECK (next >= 0),
	holder     text        NOT NULL DEFAULT '',
	updated_at timestamptz NOT NULL DEFAULT now()
);
`

// OpenExport connects and creates the cursor table if needed. holder
// names this replica in the cursor rows it writes.
func OpenExport(ctx context.Context, cfg Config, holder string, log *slog.Logger) (*ExportStore, error) {
	if log == nil {
		log = slog.Default()
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 2
	}
	pool, connCfg, err := openPool(ctx, &cfg, "warden-export")
	if err != nil {
		return nil, fmt.Errorf("postgres: export: %w", err)
	}
	s := &ExportStore{
		cfg: cfg, log: log.With("component", "export.postgres", "schema", cfg.Schema),
		pool: pool, connCfg: connCfg, key: lockKey(cfg.Schema, "exporter"), holder: holder,
	}
	tx, err := pool.Begin(ctx)
	if err == nil {
		defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
		_, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(cfg.Schema, "export-migrate"))
	}
	if err == nil {
		_, err = tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{cfg.Schema}.Sanitize())
	}
	if err == nil {
		_, err = tx.Exec(ctx, exportSchemaSQL)
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: export: create tables: %w", err)
	}
	return s, nil
}

// Lead tries to become, or checks that this replica still is, the
// exporter; it returns true while it holds the lock.
func (s *ExportStore) Lead(ctx context.Context) (bool, error) {
	if s.closed.Load() {
		return false, errors.New("postgres: export: store closed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	if s.conn == nil {
		c, err := pgx.ConnectConfig(ctx, s.connCfg)
		if err != nil {
			return false, fmt.Errorf("postgres: export: lead: connect: %w", err)
		}
		s.conn = c
	}
	if s.held {
		if err := s.conn.Ping(ctx); err != nil {
			s.dropLocked()
			s.log.Warn("lost the export lock", "err", err)
			return false, fmt.Errorf("postgres: export: lead: %w", err)
		}
		return true, nil
	}
	var ok bool
	if err := s.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", s.key).Scan(&ok); err != nil {
		s.dropLocked()
		return false, fmt.Errorf("postgres: export: lead: %w", err)
	}
	if ok {
		s.held = true
		s.log.Info("became the exporting replica")
	}
	return ok, nil
}

// Resign releases the lock (a no-op when not held).
func (s *ExportStore) Resign(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.held {
		return nil
	}
	_, err := s.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", s.key)
	s.dropLocked()
	if err != nil {
		return fmt.Errorf("postgres: export: resign: %w", err)
	}
	s.log.Info("resigned as the exporting replica")
	return nil
}

// dropLocked closes the dedicated connection. mu is held.
func (s *ExportStore) dropLocked() {
	s.held = false
	if s.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	s.conn.Close(ctx) //nolint:errcheck // closing a broken or idle connection
	cancel()
	s.conn = nil
}

// Close resigns and closes every connection. Closing twice is harmless.
func (s *ExportStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.Resign(ctx)
	s.mu.Lock()
	s.dropLocked()
	s.mu.Unlock()
	s.pool.Close()
	return err
}

// Positions returns every sink's saved position.
func (s *ExportStore) Positions(ctx context.Context) (map[string]int64, error) {
	if s.closed.Load() {
		return nil, errors.New("postgres: export: store closed")
	}
	rows, err := s.pool.Query(ctx, "SELECT sink, next FROM export_cursors")
	if err != nil {
		return nil, fmt.Errorf("postgres: export cursors: %w", err)
	}
	out := map[string]int64{}
	var name string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] = n; return nil }); err != nil {
		return nil, fmt.Errorf("postgres: export cursors: %w", err)
	}
	return out, nil
}

// Cursor returns the cursor of the sink named name. Its Save fails unless
// this replica holds the export lock. It implements export.Cursor.
func (s *ExportStore) Cursor(name string) *ExportCursor { return &ExportCursor{s: s, name: name} }

// ExportCursor is one sink's position in PostgreSQL.
type ExportCursor struct {
	s    *ExportStore
	name string
}

// Load returns the saved position (0 if none).
func (c *ExportCursor) Load(ctx context.Context) (int64, error) {
	if c.s.closed.Load() {
		return 0, errors.New("postgres: export: store closed")
	}
	var n int64
	err := c.s.pool.QueryRow(ctx, "SELECT next FROM export_cursors WHERE sink = $1", c.name).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: load export cursor %s: %w", c.name, err)
	}
	return n, nil
}

// errNotExporter: a cursor save from a replica without the export lock.
var errNotExporter = errors.New("postgres: this replica does not hold the export lock")

// Save stores the position, only while this replica holds the lock.
func (c *ExportCursor) Save(ctx context.Context, next int64) error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() || !s.held || s.conn == nil {
		return fmt.Errorf("postgres: save export cursor %s: %w", c.name, errNotExporter)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	// The lock check and the write are one statement on the lock's own
	// session: the row moves only while this session holds the lock.
	tag, err := s.conn.Exec(ctx, `INSERT INTO export_cursors (sink, next, holder, updated_at)
		SELECT $1, $2, $3, now()
		WHERE EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
			AND objsubid = 1 AND classid = (($4::bigint >> 32) & 4294967295)::oid AND objid = ($4::bigint & 4294967295)::oid)
		ON CONFLICT (sink) DO UPDATE SET next = excluded.next, holder = excluded.holder, updated_at = excluded.updated_at`,
		c.name, next, s.holder, s.key)
	if err != nil {
		s.dropLocked()
		return fmt.Errorf("postgres: save export cursor %s: %w", c.name, err)
	}
	if tag.RowsAffected() != 1 {
		s.held = false
		return fmt.Errorf("postgres: save export cursor %s: %w", c.name, errNotExporter)
	}
	return nil
}
