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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

var (
	_ audit.Store = (*Store)(nil)
	_ audit.Queue = (*Store)(nil)
)

// Store is the PostgreSQL audit store. It implements audit.Store and
// audit.Queue. Methods are safe for concurrent use.
type Store struct {
	cfg     Config
	log     *slog.Logger
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig // for the dedicated leader and listener connections

	integratorKey int64
	pendingChan   string // NOTIFY channel: entries were enqueued
	seqChan       string // NOTIFY channel: entries were sequenced

	closed atomic.Bool
	quit   chan struct{} // closed by Close
	wg     sync.WaitGroup

	enq chan *enqueueReq // to the group-commit writers

	leaderMu sync.Mutex // guards lockConn and leader; held while using them
	lockConn *pgx.Conn  // dedicated connection for the integrator lock
	leader   *pgx.Conn  // lockConn while it holds the lock; nil when not leading

	notify *notifier

	idx *audit.Indexer // the search index (entry_index), off the admission path
}

// Open connects to PostgreSQL at dsn, creates or migrates the schema and
// returns the store. The DSN may hold a password; it is not logged or put
// into errors.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	return OpenConfig(ctx, Config{DSN: dsn}, opts...)
}

// OpenConfig is Open with a Config (as loaded from YAML); opts override
// its fields. Defaults are applied and the config validated.
func OpenConfig(ctx context.Context, cfg Config, opts ...Option) (*Store, error) {
	o := options{cfg: cfg, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	cfg = o.cfg
	pool, connCfg, err := openPool(ctx, &cfg, "warden")
	if err != nil {
		return nil, err
	}
	if _, err := migrate(ctx, pool, cfg.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	s := newStore(cfg, o, pool, connCfg)
	// The search index follows the log (a read-only store has none: it
	// searches what the gateway indexed).
	s.idx = audit.NewIndexer(s, &index{db: pool, table: "entry_index", lock: lockKey(cfg.Schema, "index")}, s.log)
	for range enqueueWriters {
		s.wg.Add(1)
		go s.enqueueLoop()
	}
	return s, nil
}

// OpenReadOnly opens an existing store for reading (warden verify): it
// creates and migrates nothing, every session is read-only
// (default_transaction_read_only), so a role with only USAGE on the
// schema and SELECT on its tables suffices. A database or schema without
// Warden's tables, or at another schema version, is an error — never an
// empty log that verifies. Writes fail.
func OpenReadOnly(ctx context.Context, cfg Config, opts ...Option) (*Store, error) {
	o := options{cfg: cfg, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	cfg = o.cfg
	pool, connCfg, err := openPoolMode(ctx, &cfg, "warden-verify", true)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, pool, cfg.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	return newStore(cfg, o, pool, connCfg), nil
}

// checkSchema refuses a schema that is not a Warden store at this
// binary's version, without changing anything.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	var version int
	err := pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&version)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "42P01": // undefined_table
		return fmt.Errorf("postgres: schema %q holds no Warden audit store (no schema_migrations table): wrong database or schema (--schema)?", schema)
	case err != nil:
		return fmt.Errorf("postgres: read schema version: %w", err)
	case version != len(migrations):
		return fmt.Errorf("postgres: schema %q is at version %d, this binary reads version %d: verify with the warden version that wrote it", schema, version, len(migrations))
	}
	return nil
}

// newStore builds a Store over an open pool; the caller starts the
// writers if it writes.
func newStore(cfg Config, o options, pool *pgxpool.Pool, connCfg *pgx.ConnConfig) *Store {
	s := &Store{
		cfg:           cfg,
		log:           o.logger.With("component", "audit.postgres", "schema", cfg.Schema),
		pool:          pool,
		connCfg:       connCfg,
		integratorKey: lockKey(cfg.Schema, "integrator"),
		pendingChan:   "warden_audit:" + cfg.Schema + ":pending",
		seqChan:       "warden_audit:" + cfg.Schema + ":sequenced",
		quit:          make(chan struct{}),
		enq:           make(chan *enqueueReq),
	}
	s.notify = newNotifier(s)
	return s
}

// openPool validates cfg (after filling its defaults) and opens a pool with
// the session settings every Warden connection needs: the schema on the
// search path and synchronous commits. It returns a copy of the connection
// config for dedicated (leader, listener) connections. Errors never carry
// the DSN, which may hold a password.
func openPool(ctx context.Context, cfg *Config, appName string) (*pgxpool.Pool, *pgx.ConnConfig, error) {
	return openPoolMode(ctx, cfg, appName, false)
}

// openPoolMode is openPool; readOnly makes every session read-only.
func openPoolMode(ctx context.Context, cfg *Config, appName string, readOnly bool) (*pgxpool.Pool, *pgx.ConnConfig, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("postgres: config: %w", err)
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's parse errors may echo the DSN; do not wrap them.
		return nil, nil, errors.New("postgres: cannot parse the DSN")
	}
	pcfg.MaxConns = cfg.MaxConns
	pcfg.ConnConfig.RuntimeParams["search_path"] = cfg.Schema
	pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	if readOnly {
		pcfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if pcfg.ConnConfig.RuntimeParams["application_name"] == "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = appName
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: open pool: %w", err)
	}
	return pool, pcfg.ConnConfig.Copy(), nil
}

// Schema returns the PostgreSQL schema holding the store's tables.
func (s *Store) Schema() string { return s.cfg.Schema }

// Close stops the store: it resigns leadership, stops the writers and
// closes every connection. Calling it again is harmless.
func (s *Store) Close() error {
	if s.closed.Load() {
		return nil
	}
	if s.idx != nil {
		s.idx.Close() // before the pool closes under it
	}
	if s.closed.Swap(true) {
		return nil
	}
	close(s.quit)
	s.wg.Wait()
	s.notify.close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.Resign(ctx)
	s.leaderMu.Lock()
	s.closeLockConnLocked()
	s.leaderMu.Unlock()
	// pgx closes a connection whose query was cancelled by sending a
	// cancel request, for up to 15 s; on a hung network Pool.Close waits
	// for that. Bound the wait; the connections finish closing in the
	// background.
	done := make(chan struct{})
	go func() {
		s.pool.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.cfg.WriteTimeout):
		s.log.Warn("closing database connections timed out; they will close in the background")
	}
	return err
}

func (s *Store) check() error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: %w", audit.ErrClosed)
	}
	return nil
}

// Size returns the number of records (the next Seq).
func (s *Store) Size(ctx context.Context) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(seq) + 1, 0) FROM entries").Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: size: %w", err)
	}
	return n, nil
}

// ReadHashes returns the stored hashes at indexes (tlog.HashReader
// contract); a missing index is an error wrapping audit.ErrNotFound.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(indexes) == 0 {
		return []tlog.Hash{}, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT idx, hash FROM hashes WHERE idx = ANY($1)", indexes)
	if err != nil {
		return nil, fmt.Errorf("postgres: read hashes: %w", err)
	}
	found := make(map[int64]tlog.Hash, len(indexes))
	var idx int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&idx, &h}, func() error {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("hash %d has %d bytes", idx, len(h))
		}
		found[idx] = tlog.Hash(h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read hashes: %w", err)
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		hv, ok := found[x]
		if !ok {
			return nil, fmt.Errorf("postgres: read hash %d: %w", x, audit.ErrNotFound)
		}
		out[i] = hv
	}
	return out, nil
}

// ReadRecords returns records [from, to) in order.
func (s *Store) ReadRecords(ctx context.Context, from, to int64) ([]audit.Record, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if from < 0 || to < from {
		return nil, fmt.Errorf("postgres: read records [%d, %d): bad range", from, to)
	}
	out := make([]audit.Record, 0, min(to-from, 4096))
	if to == from {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT seq, data FROM entries WHERE seq >= $1 AND seq < $2 ORDER BY seq", from, to)
	if err != nil {
		return nil, fmt.Errorf("postgres: read records [%d, %d): %w", from, to, err)
	}
	var r audit.Record
	_, err = pgx.ForEachRow(rows, []any{&r.Seq, &r.Data}, func() error {
		out = append(out, audit.Record{Seq: r.Seq, Data: r.Data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read records [%d, %d): %w", from, to, err)
	}
	if int64(len(out)) != to-from {
		return nil, fmt.Errorf("postgres: read records [%d, %d): have %d: %w", from, to, len(out), audit.ErrNotFound)
	}
	for i := range out {
		if out[i].Seq != from+int64(i) {
			return nil, fmt.Errorf("postgres: read records: record %d missing: %w", from+int64(i), audit.ErrNotFound)
		}
	}
	return out, nil
}

// PutCheckpoint stores c. A different checkpoint of the same size is an
// error wrapping audit.ErrConflict; the same one again is a no-op.
func (s *Store) PutCheckpoint(ctx context.Context, c audit.Checkpoint) error {
	if err := s.check(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO checkpoints (size, hash, time_ns, note) VALUES ($1, $2, $3, $4)
		ON CONFLICT (size) DO NOTHING`, c.Size, c.Hash[:], c.Time.UnixNano(), c.Note)
	if err != nil {
		return fmt.Errorf("postgres: put checkpoint %d: %w", c.Size, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	old, err := s.checkpoints(ctx, "WHERE size = $1", c.Size)
	if err != nil {
		return fmt.Errorf("postgres: put checkpoint %d: %w", c.Size, err)
	}
	if len(old) != 1 || old[0].Hash != c.Hash || string(old[0].Note) != string(c.Note) {
		return fmt.Errorf("postgres: put checkpoint %d: a different checkpoint of that size exists: %w", c.Size, audit.ErrConflict)
	}
	return nil
}

// Checkpoints returns every checkpoint by ascending size.
func (s *Store) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	cps, err := s.checkpoints(ctx, "ORDER BY size")
	if err != nil {
		return nil, fmt.Errorf("postgres: checkpoints: %w", err)
	}
	return cps, nil
}

// LatestCheckpoint returns the checkpoint with the largest size, or an
// error wrapping audit.ErrNotFound.
func (s *Store) LatestCheckpoint(ctx context.Context) (audit.Checkpoint, error) {
	if err := s.check(); err != nil {
		return audit.Checkpoint{}, err
	}
	cps, err := s.checkpoints(ctx, "ORDER BY size DESC LIMIT 1")
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("postgres: latest checkpoint: %w", err)
	}
	if len(cps) == 0 {
		return audit.Checkpoint{}, fmt.Errorf("postgres: latest checkpoint: %w", audit.ErrNotFound)
	}
	return cps[0], nil
}

func (s *Store) checkpoints(ctx context.Context, tail string, args ...any) ([]audit.Checkpoint, error) {
	rows, err := s.pool.Query(ctx, "SELECT size, hash, time_ns, note FROM checkpoints "+tail, args...)
	if err != nil {
		return nil, err
	}
	out := []audit.Checkpoint{}
	var c audit.Checkpoint
	var h []byte
	var ns int64
	_, err = pgx.ForEachRow(rows, []any{&c.Size, &h, &ns, &c.Note}, func() error {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("checkpoint %d: hash has %d bytes", c.Size, len(h))
		}
		out = append(out, audit.Checkpoint{Size: c.Size, Hash: tlog.Hash(h), Time: time.Unix(0, ns).UTC(), Note: c.Note})
		return nil
	})
	return out, err
}

// isUniqueViolation reports whether err is a unique-constraint violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
