package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

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
// Request id, mask rule and text (through the full-text index) and
// approval id are answered by the index's own tables; the other filters
// by the count blocks (decision 027): scanned in q's order when nothing
// else narrows the search, else consulted for each seq the tables give
// (the principal then by the full text's subject column, decision 046).
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
	// Request id, mask rule and words are terms of the full-text index
	// (exact: keyToken, ruleTokens; decisions 039, 046), the approval id a
	// table of its own.
	var match []string
	if q.MaskRule != "" {
		match = append(match, ftsRuleQuery(q.MaskRule))
	}
	if q.RequestID != "" {
		match = append(match, ftsKeyQuery("ids", q.RequestID))
	}
	if fq := ftsQuery(q.Text); fq != "" {
		match = append(match, fq)
	}
	if q.BlockFilter() && len(match) == 0 && q.ApprovalID == "" {
		return scanBlocks(ctx, tx, q, start, end, limit)
	}
	// The principal beside those filters is a term of the same MATCH
	// (the subject column), not looked up in its chunk's block: words and
	// a principal are a common pair, and words matching entries in many
	// chunks would read every block.
	bq := q
	if q.Principal != "" {
		match = append(match, ftsKeyQuery("subject", q.Principal))
		bq.Principal = ""
	}
	c := candidates{match: strings.Join(match, " AND "), approval: q.ApprovalID}
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
		seqs, err := c.seqs(ctx, tx, start, end, q.Desc, page)
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

// candidates selects the seqs of indexed entries by the index's own
// tables: the full-text index's MATCH and the approval id (both optional;
// without either every indexed seq is a candidate).
type candidates struct {
	match    string // an FTS5 query of entry_text, or ""
	approval string // an approval id, or ""
}

// seqs returns up to limit candidate seqs in [start, end), in order
// (descending if desc).
func (c candidates) seqs(ctx context.Context, tx *sql.Tx, start, end int64, desc bool, limit int) ([]int64, error) {
	var query string
	var args []any
	switch {
	case c.match != "":
		query, args = "SELECT rowid FROM entry_text WHERE entry_text MATCH ? AND rowid >= ? AND rowid < ?", []any{c.match, start, end}
		if c.approval != "" {
			query += " AND rowid IN (SELECT seq FROM entry_approvals WHERE approval_id = ?)"
			args = append(args, c.approval)
		}
		query += " ORDER BY rowid"
	case c.approval != "":
		query, args = "SELECT seq FROM entry_approvals WHERE approval_id = ? AND seq >= ? AND seq < ? ORDER BY seq", []any{c.approval, start, end}
	default:
		// Every indexed entry: [start, end) is below the indexed size.
		out := make([]int64, 0, min(end-start, int64(limit)))
		for i := range min(end-start, int64(limit)) {
			if desc {
				out = append(out, end-1-i)
			} else {
				out = append(out, start+i)
			}
		}
		return out, nil
	}
	if desc {
		query += " DESC"
	}
	query += fmt.Sprintf(" LIMIT %d", limit)
	rows, err := tx.QueryContext(ctx, query, args...)
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
