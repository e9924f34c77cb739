package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog"
)

var _ audit.Store = (*Store)(nil)

// Store is an audit.Store on one SQLite file (the log) and its search
// index in a second file beside it (IndexPath).
type Store struct {
	path     string
	w        *sql.DB // exactly one connection: the writer
	r        *sql.DB // readers
	mu       sync.Mutex
	closed   atomic.Bool
	readOnly bool
	// legacy: a version-1 entries table, whose copied columns id,
	// time_ns and kind are NOT NULL and still written.
	legacy bool

	// raw runs the append transaction on the writer's driver connection
	// (raw.go); guarded by mu.
	raw rawConn
	// fl flushes the writer's commits and holds the durable watermark
	// reads stop at (nil when read-only; flush.go).
	fl *flusher

	ix  *index         // nil if the read-only store has no index file
	idx *audit.Indexer // nil when read-only

	// fr holds records [base, size), their hashes and the batches' heads
	// (frames.go); records [0, base) are in the entries and hashes
	// tables of a store written before the frame file. nil on a
	// read-only store without a frame file (or a damaged one: corrupt).
	fr      *framelog.Log
	base    int64
	torn    int64               // a read-only open's torn tail, left in place
	corrupt *FramesCorruptError // a read-only open's damaged frame file
	// fb is the frame batch AppendNoFlush fills (guarded by mu).
	fb framelog.Batch
	// hist is a read-only store's history heads from the frame file,
	// read by the scan that verifies it at open (frameHeads).
	hist []frameHead
	// tablesForTest: appends go to the entries and hashes tables as
	// schema version 2 wrote them (tests building old stores only).
	tablesForTest bool
}

// IndexPath is the search index file of the store at path: "audit.db"
// has "audit-index.db" beside it.
func IndexPath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-index" + cmp.Or(ext, ".db")
}

// Open opens (creating if needed) the store at path, its frame file
// (FramesPath) and its search index (IndexPath). The directory is created
// with mode 0700 and new files get mode 0600. A torn tail of the frame
// file (a crash in the middle of a write) is cut and logged; a frame file
// damaged anywhere else fails Open (errors.Is framelog.ErrCorrupt). The
// index is brought up to date with the log in the background.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	} else {
		f.Close()
	}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	// Commits are not synced by SQLite: Flush fdatasyncs the WAL before
	// anything committed is acknowledged or visible (flush.go).
	q.Set("_synchronous", "NORMAL")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	s := &Store{path: path, w: w, fl: &flusher{walPath: path + "-wal", dbPath: path}}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	heads, err := s.openFrames(ctx)
	if err != nil {
		w.Close()
		return nil, err
	}
	closeW := func() {
		s.fl.close()
		s.fr.Close()
		w.Close()
	}
	if err := s.checkHistory(ctx, heads); err != nil {
		closeW()
		return nil, err
	}
	// What is in the files at Open is the store: the frames (a killed
	// process leaves its last writes in the page cache) and a migration
	// just run are synced now.
	if err := syncPath(FramesPath(path)); err != nil {
		closeW()
		return nil, fmt.Errorf("sqlite: open %s: sync the frame file: %w", path, err)
	}
	n := s.fr.Size()
	s.fl.committed = n
	s.fl.durable.Store(-1)
	if err := s.Flush(ctx); err != nil {
		closeW()
		return nil, err
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "10000")
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s.r = r
	head, err := s.loadHead(ctx)
	if err != nil {
		r.Close()
		closeW()
		return nil, err
	}
	if head != nil {
		s.fl.durableHead.Store(&head)
	}
	if s.ix, err = openIndex(ctx, IndexPath(path), false); err != nil {
		r.Close()
		closeW()
		return nil, err
	}
	s.idx = audit.NewIndexer(s, s.ix, nil)
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	var v int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	if v > schemaVersion {
		return fmt.Errorf("sqlite: open %s: schema version %d is newer than this binary (%d)", s.path, v, schemaVersion)
	}
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		return fmt.Errorf("sqlite: open %s: journal mode is %q, want wal (%v)", s.path, mode, err)
	}
	if v == 1 {
		if _, err := s.w.ExecContext(ctx, migrateV1); err != nil {
			return fmt.Errorf("sqlite: migrate %s to schema version %d: %w", s.path, schemaVersion, err)
		}
	}
	if _, err := s.w.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("sqlite: create schema in %s: %w", s.path, err)
	}
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) > 0 FROM pragma_table_info('entries') WHERE name = 'kind'").Scan(&s.legacy); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return fmt.Errorf("sqlite: set schema version: %w", err)
	}
	return nil
}

// OpenReadOnly opens an existing store for reading only (for offline
// verification): nothing is created or migrated, and Append and
// PutCheckpoint fail. The frame file is verified but never written: a
// torn tail is left in place (Torn says how long it is); a frame file
// damaged elsewhere still opens, but every read then fails and
// FramesCorrupt says from which record and frame it does not verify.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "10000")
	rq.Set("_query_only", "1")
	r, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+rq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	var v int
	if err := r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		r.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if v < 1 || v > schemaVersion {
		r.Close()
		return nil, fmt.Errorf("sqlite: open %s: schema version %d, want 1 to %d (not an audit store?)", path, v, schemaVersion)
	}
	s := &Store{path: path, r: r, readOnly: true}
	if err := s.openFramesReadOnly(ctx); err != nil {
		r.Close()
		return nil, err
	}
	if _, err := os.Stat(IndexPath(path)); err == nil {
		if s.ix, err = openIndex(ctx, IndexPath(path), true); err != nil {
			r.Close()
			if s.fr != nil {
				s.fr.Close()
			}
			return nil, err
		}
	}
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Close closes the store. Closing twice is harmless.
func (s *Store) Close() error {
	if s.closed.Load() {
		return nil
	}
	if s.idx != nil {
		s.idx.Close() // before the store closes under it
	}
	if s.closed.Swap(true) {
		return nil
	}
	var flErr error
	if s.fl != nil {
		// Before s.mu: a Flush in progress holds fl.mu and takes s.mu.
		flErr = s.fl.close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ixErr error
	if s.ix != nil {
		ixErr = s.ix.close()
	}
	var frErr error
	if s.fr != nil {
		frErr = s.fr.Close()
	}
	if s.w == nil {
		return errors.Join(s.r.Close(), ixErr, frErr)
	}
	// The append path's statements are closed on their connection
	// before it closes (none if nothing was appended).
	var rawErr error
	if len(s.raw.stmts) > 0 {
		rawErr = s.withRaw(context.Background(), func(r *rawConn) error { return r.close() })
	}
	return errors.Join(rawErr, s.r.Close(), s.w.Close(), flErr, ixErr, frErr)
}

func (s *Store) check() error {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: %w", audit.ErrClosed)
	}
	if s.corrupt != nil {
		// A read-only store whose frame file does not verify serves
		// nothing: FramesCorrupt says where it stops verifying.
		return fmt.Errorf("sqlite: %s: %w", s.path, s.corrupt)
	}
	if s.fl != nil {
		// After a failed flush nothing is served: the Log fails its
		// appends and the readiness probe (Log.Probe) fails too.
		return s.fl.err()
	}
	return nil
}

func (s *Store) checkWrite() error {
	if err := s.check(); err != nil {
		return err
	}
	if s.readOnly {
		return fmt.Errorf("sqlite: %s is open read-only", s.path)
	}
	return nil
}

// Size returns the number of records.
func (s *Store) Size(ctx context.Context) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	return min(s.logSize(), s.limit()), nil
}

// logSize is the size the frames (or, without them, the tables) hold.
func (s *Store) logSize() int64 {
	if s.fr != nil {
		return s.fr.Size()
	}
	if s.tablesForTest {
		return s.fl.durable.Load()
	}
	return s.base
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sizeQuery is the number of records in the entries table (the frames'
// base).
const sizeQuery = "SELECT COALESCE(MAX(seq)+1, 0) FROM entries"

func size(ctx context.Context, q queryer) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, sizeQuery).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: size: %w", err)
	}
	return n, nil
}

// ReadHashes returns the stored hashes at indexes (tlog.HashReader shape).
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if lim := s.limit(); lim < 1<<63-1 {
		// Hashes of records not yet flushed are not there yet.
		hlim := tlog.StoredHashCount(lim)
		for _, x := range indexes {
			if x >= hlim {
				return nil, fmt.Errorf("sqlite: read hash %d: %w", x, audit.ErrNotFound)
			}
		}
	}
	return s.readHashesSplit(ctx, indexes)
}

// readTableHashes reads hashes from the hashes table (the prefix below
// the frames' base).
func (s *Store) readTableHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if contiguous(indexes) {
		return s.readHashRange(ctx, indexes[0], int64(len(indexes)))
	}
	out := make([]tlog.Hash, len(indexes))
	found := make(map[int64]tlog.Hash, len(indexes))
	const chunk = 500
	for lo := 0; lo < len(indexes); lo += chunk {
		part := indexes[lo:min(lo+chunk, len(indexes))]
		args := make([]any, len(part))
		qs := make([]byte, 0, 2*len(part))
		for i, x := range part {
			args[i] = x
			if i > 0 {
				qs = append(qs, ',')
			}
			qs = append(qs, '?')
		}
		rows, err := s.r.QueryContext(ctx, "SELECT idx, hash FROM hashes WHERE idx IN ("+string(qs)+")", args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read hashes: %w", err)
		}
		for rows.Next() {
			var idx int64
			var h []byte
			if err := rows.Scan(&idx, &h); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: read hashes: %w", err)
			}
			if len(h) != tlog.HashSize {
				rows.Close()
				return nil, fmt.Errorf("sqlite: read hashes: hash %d has %d bytes", idx, len(h))
			}
			found[idx] = tlog.Hash(h)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("sqlite: read hashes: %w", err)
		}
	}
	for i, x := range indexes {
		h, ok := found[x]
		if !ok {
			return nil, fmt.Errorf("sqlite: read hash %d: %w", x, audit.ErrNotFound)
		}
		out[i] = h
	}
	return out, nil
}

func contiguous(idx []int64) bool {
	if len(idx) < 2 {
		return false
	}
	for i := 1; i < len(idx); i++ {
		if idx[i] != idx[i-1]+1 {
			return false
		}
	}
	return true
}

// readHashRange reads n hashes from index start with one range scan (the
// verifier's access pattern).
func (s *Store) readHashRange(ctx context.Context, start, n int64) ([]tlog.Hash, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT idx, hash FROM hashes WHERE idx >= ? AND idx < ? ORDER BY idx", start, start+n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read hashes: %w", err)
	}
	defer rows.Close()
	out := make([]tlog.Hash, 0, n)
	var h []byte
	for rows.Next() {
		var idx int64
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, fmt.Errorf("sqlite: read hashes: %w", err)
		}
		want := start + int64(len(out))
		if idx != want {
			return nil, fmt.Errorf("sqlite: read hash %d: %w", want, audit.ErrNotFound)
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("sqlite: read hashes: hash %d has %d bytes", idx, len(h))
		}
		out = append(out, tlog.Hash(h))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read hashes: %w", err)
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("sqlite: read hash %d: %w", start+int64(len(out)), audit.ErrNotFound)
	}
	return out, nil
}

// ReadRecords returns records [from, to).
func (s *Store) ReadRecords(ctx context.Context, from, to int64) ([]audit.Record, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if from < 0 || to < from {
		return nil, fmt.Errorf("sqlite: read records [%d, %d): bad range", from, to)
	}
	if to == from {
		return nil, nil
	}
	if lim := min(s.limit(), s.logSize()); to > lim {
		return nil, fmt.Errorf("sqlite: read records: record %d: %w", lim, audit.ErrNotFound)
	}
	out := make([]audit.Record, 0, to-from)
	if from < s.base {
		var err error
		if out, err = s.readTableRecords(ctx, out, from, min(to, s.base)); err != nil {
			return nil, err
		}
	}
	if to > s.base {
		return s.readFrameRecords(out, max(from, s.base), to)
	}
	return out, nil
}

// readTableRecords appends records [from, to) from the entries table.
func (s *Store) readTableRecords(ctx context.Context, out []audit.Record, from, to int64) ([]audit.Record, error) {
	start := len(out)
	rows, err := s.r.QueryContext(ctx, "SELECT seq, data FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq", from, to)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read records [%d, %d): %w", from, to, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r audit.Record
		if err := rows.Scan(&r.Seq, &r.Data); err != nil {
			return nil, fmt.Errorf("sqlite: read records: %w", err)
		}
		if r.Seq != from+int64(len(out)-start) {
			return nil, fmt.Errorf("sqlite: read records: record %d: %w", from+int64(len(out)-start), audit.ErrNotFound)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read records: %w", err)
	}
	if int64(len(out)-start) != to-from {
		return nil, fmt.Errorf("sqlite: read records: record %d: %w", from+int64(len(out)-start), audit.ErrNotFound)
	}
	return out, nil
}
