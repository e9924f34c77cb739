package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// indexSchemaVersion is the index file's PRAGMA user_version. An index
// file of another version is dropped and rebuilt from the log. Version 2
// added the per-chunk counts (count_spans, count_rows); version 3 replaced
// them with count blocks (count_blocks, decision 024); version 4 keeps in
// entry_fields only the point-lookup columns and searches the others in
// the count blocks (decision 027).
const indexSchemaVersion = 4

// index is the search index in its own SQLite file: a row of ids and
// subject per entry, the count blocks, the mask-rule index and the
// full-text index, derived from the log by audit.Index and
// audit.CountBlock. Commits are not fsynced (WAL, synchronous=NORMAL): a lost
// write is caught up from the log, and a damaged file is set aside and
// rebuilt.
type index struct {
	path string
	w    *sql.DB  // one writer; nil when read-only
	ins  *inserts // multi-row INSERTs on w
	r    *sql.DB
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
		return &index{path: path, r: r}, nil
	}
	ix, err := openIndexRW(ctx, path)
	if err == nil {
		return ix, nil
	}
	aside := fmt.Sprintf("%s.broken-%d", path, time.Now().Unix())
	slog.Warn("sqlite: the search index cannot be used; setting it aside and rebuilding it from the log",
		"path", path, "moved_to", aside, "err", err)
	if rerr := os.Rename(path, aside); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return nil, fmt.Errorf("sqlite: open index %s: %w (and it could not be moved aside: %v)", path, err, rerr)
	}
	os.Remove(path + "-wal")
	os.Remove(path + "-shm")
	return openIndexRW(ctx, path)
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
	q.Set("_synchronous", "NORMAL")
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
	ix := &index{path: path, w: w, ins: newInserts(w)}
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
	return errors.Join(ix.ins.close(), ix.r.Close(), ix.w.Close())
}

// IndexedSize returns the number of leading log records indexed.
func (ix *index) IndexedSize(ctx context.Context) (int64, error) {
	return indexedSize(ctx, ix.r)
}

func indexedSize(ctx context.Context, q queryer) (int64, error) {
	var n int64
	if err := q.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq)+1, 0) FROM entry_fields").Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: index size: %w", err)
	}
	return n, nil
}

// WriteIndex indexes consecutive records in one transaction (see
// audit.IndexWriter).
func (ix *index) WriteIndex(ctx context.Context, recs []audit.Record) error {
	if ix.w == nil {
		return fmt.Errorf("sqlite: index %s is open read-only", ix.path)
	}
	if len(recs) == 0 {
		return nil
	}
	tx, err := ix.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: index: begin: %w", err)
	}
	defer tx.Rollback()
	n, err := indexedSize(ctx, tx)
	if err != nil {
		return err
	}
	if recs, err = audit.Unindexed(recs, n); err != nil || len(recs) == 0 {
		return err
	}
	// Multi-row inserts: one statement per table and chunk instead of one
	// per entry, text and rule (decision 018).
	docs := make([]doc, len(recs))
	type ref struct {
		seq int64
		val string
	}
	var texts, masks []ref
	if err := writeCounts(ctx, tx, recs); err != nil {
		return err
	}
	for i, r := range recs {
		if r.Seq != n+int64(i) {
			return fmt.Errorf("sqlite: index: records not consecutive at %d", r.Seq)
		}
		d := docOf(r.Entry)
		docs[i] = d
		if d.text != "" {
			texts = append(texts, ref{r.Seq, d.text})
		}
		for _, rule := range d.maskRules {
			masks = append(masks, ref{r.Seq, rule})
		}
	}
	if err := ix.ins.insert(ctx, tx, `INSERT OR FAIL INTO entry_fields
		(seq, request_id, approval_id, subject)`, 4, len(docs), func(i int, args []any) []any {
		d := &docs[i]
		return append(args, recs[i].Seq, d.requestID, d.approvalID, d.subject)
	}); err != nil {
		return fmt.Errorf("sqlite: index [%d, %d): %w", n, n+int64(len(recs)), err)
	}
	if err := ix.ins.insert(ctx, tx, "INSERT OR FAIL INTO entry_text(rowid, body)", 2, len(texts), func(i int, args []any) []any {
		return append(args, texts[i].seq, texts[i].val)
	}); err != nil {
		return fmt.Errorf("sqlite: index [%d, %d): text: %w", n, n+int64(len(recs)), err)
	}
	if err := ix.ins.insert(ctx, tx, "INSERT OR IGNORE INTO entry_masks(rule, seq)", 2, len(masks), func(i int, args []any) []any {
		return append(args, masks[i].val, masks[i].seq)
	}); err != nil {
		return fmt.Errorf("sqlite: index [%d, %d): mask rules: %w", n, n+int64(len(recs)), err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: index: commit: %w", err)
	}
	ix.ins.prepareMissed(ctx)
	return nil
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
	return nil
}

// search returns, in q's order, up to searchLimit(q) seqs of indexed
// entries that may match q, read in one snapshot of the index. Every
// indexed entry that matches q and comes before the last seq returned
// (in q's order) is among them, so a caller drops what does not match and
// pages on from the last seq (Store.Search). What may not match: entries
// the count blocks do not hold (a chunk's block stops short of them, or
// is missing or malformed), which the kind, principal, route, model,
// action and time filters cannot rule out; loose reports whether there
// were any (otherwise every seq returned matches q, unless the index was
// altered: Log.Search checks that).
//
// Request id, approval id, mask rule and text are answered by their own
// tables; the other filters by the count blocks (decision 027): scanned
// in q's order when nothing else narrows the search, else consulted for
// each seq the tables give (the principal then by entry_fields' subject).
func (ix *index) search(ctx context.Context, q audit.Query) (seqs []int64, loose bool, err error) {
	tx, err := ix.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: search: %w", err)
	}
	defer tx.Rollback()
	indexed, err := indexedSize(ctx, tx)
	if err != nil {
		return nil, false, err
	}
	start, end := max(q.Start, 0), indexed
	if q.End > 0 {
		end = min(end, q.End)
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		// No index on time: the count blocks' time ranges bound the seqs.
		lo, hi, err := timeSeqs(ctx, tx, q.From, q.To)
		if err != nil {
			return nil, false, err
		}
		start = max(start, lo)
		if hi >= 0 {
			end = min(end, hi)
		}
	}
	if start >= end {
		return nil, false, nil
	}
	limit := searchLimit(q)
	var where []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			// The partial index's own condition, so the planner uses it.
			where = append(where, col+" = ?", col+" != ''")
			args = append(args, v)
		}
	}
	eq("request_id", q.RequestID)
	eq("approval_id", q.ApprovalID)
	if q.MaskRule != "" {
		where = append(where, "seq IN (SELECT seq FROM entry_masks WHERE rule = ?)")
		args = append(args, q.MaskRule)
	}
	if fq := ftsQuery(q.Text); fq != "" {
		where = append(where, "seq IN (SELECT rowid FROM entry_text WHERE entry_text MATCH ?)")
		args = append(args, fq)
	}
	if q.BlockFilter() && len(where) == 0 {
		return scanBlocks(ctx, tx, q, start, end, limit)
	}
	// The principal of each row the other filters select is compared in
	// the row itself (the column has no index: its cost was the index),
	// not in its chunk's block: words and a principal are a common pair,
	// and words matching entries in many chunks would read every block.
	bq := q
	if q.Principal != "" {
		where = append(where, "subject = ?")
		args = append(args, q.Principal)
		bq.Principal = ""
	}
	var blocks *blockFilter
	if bq.BlockFilter() {
		blocks = &blockFilter{tx: tx, q: bq, chunk: -1}
	}
	// Pages of the tables' seqs, each kept if its count block agrees.
	page := limit
	if blocks != nil {
		page = max(limit, 1024)
	}
	var out []int64
	for start < end {
		seqs, err := selectSeqs(ctx, tx, where, args, start, end, q.Desc, page)
		if err != nil {
			return nil, false, err
		}
		for _, seq := range seqs {
			ok, err := blocks.keep(ctx, seq)
			if err != nil {
				return nil, false, err
			}
			if ok {
				if out = append(out, seq); len(out) == limit {
					return out, blocks.isLoose(), nil
				}
			}
		}
		if len(seqs) < page {
			break
		}
		if last := seqs[len(seqs)-1]; q.Desc {
			end = last
		} else {
			start = last + 1
		}
	}
	return out, blocks.isLoose(), nil
}

// selectSeqs returns up to limit seqs of entry_fields in [start, end)
// meeting where, in order.
func selectSeqs(ctx context.Context, tx *sql.Tx, where []string, args []any, start, end int64, desc bool, limit int) ([]int64, error) {
	query := "SELECT seq FROM entry_fields WHERE " + strings.Join(append(where, "seq >= ?", "seq < ?"), " AND ")
	if desc {
		query += " ORDER BY seq DESC"
	} else {
		query += " ORDER BY seq"
	}
	query += fmt.Sprintf(" LIMIT %d", limit)
	rows, err := tx.QueryContext(ctx, query, append(args, start, end)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
		out = append(out, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	return out, nil
}

// scanBlocks returns up to limit seqs in [start, end), in q's order, of
// the entries whose count block says they meet q's block filters, and of
// the entries no (well-formed) block holds.
func scanBlocks(ctx context.Context, tx *sql.Tx, q audit.Query, start, end int64, limit int) (out []int64, loose bool, err error) {
	hit, args := valuesHit(q)
	query := "SELECT start, n, " + hit + ", CASE WHEN " + hit + " THEN data END FROM count_blocks WHERE start > ? AND start < ? ORDER BY start"
	if q.Desc {
		query += " DESC"
	}
	rows, err := tx.QueryContext(ctx, query, append(append(args, args...), start-audit.CountChunk, end)...)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: search: %w", err)
	}
	defer rows.Close()
	yield := func(seq int64) bool {
		out = append(out, seq)
		return len(out) < limit
	}
	// unknown yields every seq of [lo, hi), in q's order.
	unknown := func(lo, hi int64) bool {
		for i := range max(hi-lo, 0) {
			loose = true
			seq := lo + i
			if q.Desc {
				seq = hi - 1 - i
			}
			if !yield(seq) {
				return false
			}
		}
		return true
	}
	// pos is the edge of what is done: seqs below it (ascending) or at
	// and above it (descending).
	pos := start
	if q.Desc {
		pos = end
	}
	for rows.Next() {
		var bs, n int64
		var has bool
		var data sql.RawBytes // valid until Next: SelectBlock keeps none of it
		if err := rows.Scan(&bs, &n, &has, &data); err != nil {
			return nil, false, fmt.Errorf("sqlite: search: %w", err)
		}
		lo, hi := max(start, bs), min(end, bs+audit.CountChunk) // the chunk's part
		held := min(hi, max(lo, bs+n))                          // [lo, held) is the block's
		block := func() bool {
			if !has {
				return true // the block has no entry with a wanted value
			}
			more, err := audit.SelectBlock(bs, data, q, lo, held, q.Desc, yield)
			if err != nil {
				return unknown(lo, held)
			}
			return more
		}
		var more bool
		if q.Desc {
			more = unknown(hi, pos) && unknown(held, hi) && block()
			pos = lo
		} else {
			more = unknown(pos, lo) && block() && unknown(held, hi)
			pos = hi
		}
		if !more {
			return out, loose, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("sqlite: search: %w", err)
	}
	if q.Desc {
		unknown(start, pos)
	} else {
		unknown(pos, end)
	}
	return out, loose, nil
}

// valuesHit returns an SQL condition on a count_blocks row that is false
// only if the block has no entry with one of q's wanted values (its vals
// lack the value: audit.CountBlock.AppendValues), and its arguments. The
// block's data, the bulk of the row, is read only where it holds.
func valuesHit(q audit.Query) (string, []any) {
	keys := q.ValueKeys()
	if len(keys) == 0 {
		return "1", nil
	}
	conds := make([]string, len(keys))
	args := make([]any, len(keys))
	for i, k := range keys {
		conds[i], args[i] = "instr(vals, ?) > 0", k
	}
	return "(" + strings.Join(conds, " AND ") + ")", args
}

// blockFilter answers q's block filters for single seqs, one chunk at a
// time (the seqs come in order): the chunk's block is read and selected
// once.
type blockFilter struct {
	tx    *sql.Tx
	q     audit.Query
	chunk int64  // the chunk of match
	n     int64  // entries the chunk's block holds (0: none, malformed)
	match []bool // by seq - chunk
	loose bool   // keep passed a seq no block holds
}

func (f *blockFilter) isLoose() bool { return f != nil && f.loose }

// keep reports whether seq may meet the block filters (true without
// filters, and for an entry no well-formed block holds).
func (f *blockFilter) keep(ctx context.Context, seq int64) (bool, error) {
	if f == nil {
		return true, nil
	}
	if c := seq - seq%audit.CountChunk; c != f.chunk {
		f.chunk, f.n, f.match = c, 0, f.match[:0]
		var n int64
		var has bool
		var data []byte
		hit, args := valuesHit(f.q)
		err := f.tx.QueryRowContext(ctx, "SELECT n, "+hit+", CASE WHEN "+hit+" THEN data END FROM count_blocks WHERE start = ?",
			append(append(args, args...), c)...).Scan(&n, &has, &data)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return false, fmt.Errorf("sqlite: search: %w", err)
		case !has:
			// No entry of the block has a wanted value.
			f.match = append(f.match, make([]bool, audit.CountChunk)...)
			f.n = min(n, audit.CountChunk)
		default:
			f.match = append(f.match, make([]bool, audit.CountChunk)...)
			if _, err := audit.SelectBlock(c, data, f.q, c, c+audit.CountChunk, false, func(s int64) bool {
				f.match[s-c] = true
				return true
			}); err == nil {
				f.n = min(n, audit.CountChunk)
			}
		}
	}
	i := seq - f.chunk
	if i >= f.n {
		f.loose = true
		return true, nil
	}
	return f.match[i], nil
}

// timeSeqs bounds the indexed entries whose time may lie in [from, to)
// (zero: unbounded) by seqs: every such entry is in [lo, hi) (hi < 0: no
// upper bound). Only whole runs of count blocks are trusted: a chunk
// counts as before from when its block holds all its entries and the
// latest is before from, and so do all chunks before it; likewise after
// to, from the end of the index. Anything else (a chunk without a block,
// a block that stops short) stops the walk, so the bounds are never
// tighter than the entries allow.
func timeSeqs(ctx context.Context, tx *sql.Tx, from, to time.Time) (lo, hi int64, err error) {
	indexed, err := indexedSize(ctx, tx)
	if err != nil {
		return 0, 0, err
	}
	rows, err := tx.QueryContext(ctx, "SELECT start, n, min_ns, max_ns FROM count_blocks ORDER BY start")
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: search: %w", err)
	}
	defer rows.Close()
	type blk struct{ start, n, minNS, maxNS int64 }
	var bs []blk
	for rows.Next() {
		var b blk
		if err := rows.Scan(&b.start, &b.n, &b.minNS, &b.maxNS); err != nil {
			return 0, 0, fmt.Errorf("sqlite: search: %w", err)
		}
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("sqlite: search: %w", err)
	}
	// whole reports whether b holds every indexed entry of its chunk.
	whole := func(b blk) bool { return b.n == min(audit.CountChunk, indexed-b.start) }
	if !from.IsZero() && nsExactTime(from) {
		f := from.UnixNano()
		for i, b := range bs {
			if b.start != int64(i)*audit.CountChunk || !whole(b) || b.maxNS >= f {
				break
			}
			lo = b.start + b.n
		}
	}
	hi = -1
	if !to.IsZero() && nsExactTime(to) {
		t := to.UnixNano()
		next := indexed // the walk's lower edge so far
		for i := len(bs) - 1; i >= 0; i-- {
			b := bs[i]
			if b.start+b.n != next || !whole(b) || b.minNS < t {
				break
			}
			next = b.start
		}
		if next < indexed {
			hi = next
		}
	}
	return lo, hi, nil
}

// nsExactTime reports whether t is exactly representable as int64
// nanoseconds since the Unix epoch (what count blocks hold).
func nsExactTime(t time.Time) bool {
	return time.Unix(0, t.UnixNano()).Equal(t)
}

func searchLimit(q audit.Query) int {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	return min(limit, 1000)
}
