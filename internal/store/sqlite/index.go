package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// indexSchemaVersion is the index file's PRAGMA user_version. An index
// file of another version is dropped and rebuilt from the log. Version 2
// added the per-chunk counts (count_spans, count_rows); version 3 replaced
// them with count blocks (count_blocks, decision 024); version 4 keeps in
// entry_fields only the point-lookup columns and searches the others in
// the count blocks (decision 027); version 5 finds request ids through
// the full-text index instead of a B-tree, and drops its column sizes
// (decision 035); version 6 finds mask rules through the full-text
// index's rules column instead of the table entry_masks (decision 039);
// version 7 drops the row per entry (entry_fields): request id and
// subject are exact terms of the full text, the approval ids a table of
// their own, the indexed size one row (decision 046).
const indexSchemaVersion = 7

// index is the search index in its own SQLite file: the count blocks, the
// full-text index (with the request ids, subjects and mask rules) and the
// approval ids, derived from the log by audit.Index and
// audit.CountBlock. Nothing of it is ever fsynced (WAL, synchronous=OFF,
// decision 035): a write the process made survives its end (the OS has
// it) and what the index lacks is caught up from the log; a file left
// open when the machine went down, or damaged, is set aside and rebuilt
// (index_crash.go).
type index struct {
	path string
	w    *sql.DB // one writer; nil when read-only
	raw  rawConn // w's driver connection, for WriteIndex
	r    *sql.DB
	// blk is the count block WriteIndex wrote last (nil: none, or
	// unknown after a failed write), so the next batch extends it
	// without decoding it again (writeCounts).
	blk *writtenBlock
	// marker is the content of the open marker this writer wrote
	// (index_crash.go); "" for a reference index or a reader.
	marker string
}

var _ audit.IndexWriter = (*index)(nil)

// openIndex opens (creating if needed) the index file. A file that is
// not a usable index is moved aside (path + ".broken-<time>") and a new
// one created: the index is rebuildable, the gateway never stops for it.
func openIndex(ctx context.Context, path string, readOnly bool) (*index, error) {
	if readOnly {
		rq := url.Values{}
		rq.Set("_busy_timeout", "10000")
		rq.Set("_query_only", "1")
		r, err := sql.Open("sqlite", dsn(path, rq))
		if err != nil {
			return nil, fmt.Errorf("sqlite: open index %s: %w", path, err)
		}
		r.SetMaxOpenConns(4)
		if lost, boot, err := uncleanFromOtherBoot(path); err == nil && lost {
			// Read as it is (warden index check compares it with the
			// log); the gateway's next start rebuilds it.
			slog.Warn("sqlite: the search index was left open when the machine went down; it may be damaged until the gateway rebuilds it (warden index check, warden index rebuild)",
				"path", path, "boot", boot)
		}
		return &index{path: path, r: r}, nil
	}
	lost, boot, err := uncleanFromOtherBoot(path)
	if err != nil {
		return nil, err
	}
	if lost {
		// Unsynced writes of another boot may be lost in any order: the
		// file may be damaged in ways opening it does not show.
		if err := setAside(path, fmt.Errorf("left open by boot %q: the machine went down with it open (power loss?) and its writes are not synced", boot)); err != nil {
			return nil, err
		}
	}
	// The marker is durable before anything unsynced is written.
	marker, err := writeMarker(path)
	if err != nil {
		return nil, err
	}
	ix, err := openIndexRW(ctx, path)
	if err != nil {
		if err := setAside(path, err); err != nil {
			return nil, err
		}
		if ix, err = openIndexRW(ctx, path); err != nil {
			return nil, err
		}
	}
	ix.marker = marker
	return ix, nil
}

// setAside moves the index file at path aside (path + ".broken-<time>"),
// for a new one to be built from the log, and logs why.
func setAside(path string, why error) error {
	aside := fmt.Sprintf("%s.broken-%d", path, time.Now().Unix())
	slog.Warn("sqlite: the search index cannot be used; setting it aside and rebuilding it from the log",
		"path", path, "moved_to", aside, "err", why)
	if rerr := os.Rename(path, aside); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("sqlite: open index %s: %w (and it could not be moved aside: %v)", path, why, rerr)
	}
	// The WAL goes with it, or SQLite would apply it to the new file.
	if rerr := os.Rename(path+"-wal", aside+"-wal"); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return fmt.Errorf("sqlite: open index %s: %w (and its WAL could not be moved aside: %v)", path, why, rerr)
	}
	os.Remove(path + "-shm")
	return nil
}

func openIndexRW(ctx context.Context, path string) (*index, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open index %s: %w", path, err)
	}
	f.Close()
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	// No fsync, not even of a WAL checkpoint: the index is derived and
	// rebuildable, and a power loss is detected at open (index_crash.go).
	q.Set("_synchronous", "OFF")
	q.Set("_txlock", "immediate")
	// Statement journals in memory, not in temporary files: a multi-row
	// insert's undo pages otherwise cost a write system call each.
	q.Add("_pragma", "temp_store(memory)")
	w, err := sql.Open("sqlite", dsn(path, q))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open index %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	ix := &index{path: path, w: w}
	if err := ix.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	rq := url.Values{}
	rq.Set("_busy_timeout", "10000")
	rq.Set("_query_only", "1")
	if ix.r, err = sql.Open("sqlite", dsn(path, rq)); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open index %s: %w", path, err)
	}
	ix.r.SetMaxOpenConns(4)
	return ix, nil
}

func (ix *index) migrate(ctx context.Context) error {
	var n int
	if err := ix.w.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('hashes', 'checkpoints')").Scan(&n); err != nil {
		return fmt.Errorf("sqlite: open index %s: %w", ix.path, err)
	}
	if n > 0 {
		// Never drop tables in the log's own file.
		return fmt.Errorf("sqlite: open index %s: the file holds the audit log", ix.path)
	}
	var v int
	if err := ix.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("sqlite: open index %s: %w", ix.path, err)
	}
	stmt := indexSchema
	if v != indexSchemaVersion {
		stmt = dropIndexSchema + indexSchema
	}
	if _, err := ix.w.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("sqlite: create index schema in %s: %w", ix.path, err)
	}
	if _, err := ix.w.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", indexSchemaVersion)); err != nil {
		return fmt.Errorf("sqlite: index %s: %w", ix.path, err)
	}
	return nil
}

func (ix *index) close() error {
	if ix.w == nil {
		return ix.r.Close()
	}
	rawErr := ix.withRaw(context.Background(), func(r *rawConn) error { return r.close() })
	err := errors.Join(rawErr, ix.r.Close(), ix.w.Close())
	if err == nil && ix.marker != "" {
		err = closeMarker(ix.path, ix.marker)
	}
	return err
}

// IndexedSize returns the number of leading log records indexed.
func (ix *index) IndexedSize(ctx context.Context) (int64, error) {
	return indexedSize(ctx, ix.r)
}

// indexedSizeQuery returns the number of leading log records indexed.
const indexedSizeQuery = "SELECT COALESCE((SELECT indexed FROM index_state WHERE id = 0), 0)"

func indexedSize(ctx context.Context, q queryer) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, indexedSizeQuery).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: index size: %w", err)
	}
	return n, nil
}

// yieldEvery is how many entries WriteIndex handles (documents built,
// rows inserted) between two yields of its core: about a quarter of a
// millisecond of work. A batch of thousands would otherwise keep the core
// for tens of milliseconds, and goroutines waiting to run on it (the
// gateway's requests) would wait that long (decision 035).
const yieldEvery = 256

// WriteIndex indexes consecutive records in one transaction (see
// audit.IndexWriter). It runs on the writer's driver connection through
// statements prepared once (rawConn, as the log's append does: decision
// 033, for the index decision 035): database/sql's per-statement
// argument conversion and context watching were a fifth of its CPU.
func (ix *index) WriteIndex(ctx context.Context, recs []audit.Record) error {
	if ix.w == nil {
		return fmt.Errorf("sqlite: index %s is open read-only", ix.path)
	}
	if len(recs) == 0 {
		return nil
	}
	err := ix.withRaw(ctx, func(r *rawConn) error {
		return r.txn(ctx, func() error { return ix.write(ctx, r, recs) })
	})
	if err != nil {
		ix.blk = nil // it may hold what was rolled back
		return fmt.Errorf("sqlite: index: %w", err)
	}
	return nil
}

// write is WriteIndex's transaction.
func (ix *index) write(ctx context.Context, r *rawConn, recs []audit.Record) error {
	n, err := r.queryInt64(ctx, indexedSizeQuery)
	if err != nil {
		return fmt.Errorf("index size: %w", err)
	}
	if recs, err = audit.Unindexed(recs, n); err != nil || len(recs) == 0 {
		return err
	}
	docs := make([]doc, len(recs))
	var memo docMemo
	for i, rec := range recs {
		if rec.Seq != n+int64(i) {
			return fmt.Errorf("records not consecutive at %d", rec.Seq)
		}
		if i%yieldEvery == yieldEvery-1 {
			runtime.Gosched()
		}
		docs[i] = memo.doc(rec.Entry)
	}
	if err := ix.writeCounts(ctx, r, recs); err != nil {
		return err
	}
	// yield yields the core every yieldEvery rows, between two multi-row
	// INSERTs (of at most 256 rows: chunkRows).
	yield := func(i int) {
		if i > 0 && i%yieldEvery == 0 {
			runtime.Gosched()
		}
	}
	// Multi-row inserts: one statement per table and chunk instead of one
	// per entry, text and rule (decision 018). Every entry has a row of
	// full text (nearly every one a request id and a subject); its mask
	// rules are terms of the same row (decision 039), its request id and
	// subject exact terms (decision 046).
	var approvals []int
	for i := range docs {
		if docs[i].approvalID != "" {
			approvals = append(approvals, i)
		}
	}
	if err := r.insert(ctx, "INSERT OR FAIL INTO entry_approvals(seq, approval_id)", 2, len(approvals), func(i int, args []driver.Value) []driver.Value {
		return append(args, recs[approvals[i]].Seq, docs[approvals[i]].approvalID)
	}); err != nil {
		return fmt.Errorf("[%d, %d): approvals: %w", n, n+int64(len(recs)), err)
	}
	if err := r.exec(ctx, "INSERT INTO index_state(id, indexed) VALUES (0, ?) ON CONFLICT(id) DO UPDATE SET indexed = excluded.indexed",
		n+int64(len(recs))); err != nil {
		return fmt.Errorf("[%d, %d): size: %w", n, n+int64(len(recs)), err)
	}
	if err := r.insert(ctx, "INSERT OR FAIL INTO entry_text(rowid, body, ids, rules, subject)", 5, len(docs), func(i int, args []driver.Value) []driver.Value {
		yield(i)
		d := &docs[i]
		return append(args, recs[i].Seq, textArg(d.text), textArg(keyToken(d.requestID)), textArg(d.rules), textArg(d.subject))
	}); err != nil {
		return fmt.Errorf("[%d, %d): text: %w", n, n+int64(len(recs)), err)
	}
	// FTS5 writes the terms of the last INSERT into entry_text (and
	// takes its automerge step) at the next statement's savepoint, or
	// else inside COMMIT, where nothing yields: a savepoint of its own,
	// between two yields, keeps that work out of the commit's unbroken
	// stretch (decision 039; the mask-rule inserts used to come after
	// the text and took it).
	runtime.Gosched()
	if err := r.exec(ctx, "SAVEPOINT index_text"); err != nil {
		return fmt.Errorf("text savepoint: %w", err)
	}
	if err := r.exec(ctx, "RELEASE index_text"); err != nil {
		return fmt.Errorf("text savepoint: %w", err)
	}
	runtime.Gosched()
	return nil
}

// withRaw runs f on the index writer's driver connection (see
// Store.withRaw).
func (ix *index) withRaw(ctx context.Context, f func(r *rawConn) error) error {
	return withRawConn(ctx, ix.w, &ix.raw, f)
}

// ResetIndex drops and recreates the index tables.
func (ix *index) ResetIndex(ctx context.Context) error {
	if ix.w == nil {
		return fmt.Errorf("sqlite: index %s is open read-only", ix.path)
	}
	tx, err := ix.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: reset index: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, dropIndexSchema+indexSchema); err != nil {
		return fmt.Errorf("sqlite: reset index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: reset index: %w", err)
	}
	ix.blk = nil
	return nil
}
