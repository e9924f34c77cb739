package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"

	"github.com/wardenhq/warden/internal/audit"
)

var _ audit.CountIndex = (*Store)(nil)

// writeCounts adds recs (consecutive, not yet indexed) to the count
// blocks of their chunks, in the index write's transaction: a chunk the
// batch starts in the middle of has its block extended and written back
// (the block the last write left, ix.blk, if the stored one is still it;
// else the stored one, read and decoded). A block that cannot be extended
// (it does not parse, or it stops short of the batch: an entry it could
// not hold) is left as it is, so the blocks depend only on the entries,
// not on how they were batched.
func (ix *index) writeCounts(ctx context.Context, r *rawConn, recs []audit.Record) error {
	last := ix.blk
	ix.blk = nil // until this write's block is known
	for len(recs) > 0 {
		seq := recs[0].Seq
		start := seq - seq%audit.CountChunk
		n := min(int64(len(recs)), start+audit.CountChunk-seq)
		run := recs[:n]
		recs = recs[n:]
		b := audit.NewCountBlock(start)
		if seq != start {
			var err error
			if b, err = ix.storedBlock(ctx, r, last, start, seq); err != nil {
				return err
			}
			if b == nil {
				continue
			}
		}
		added := false
		b.Reserve(len(run))
		for i, rec := range run {
			if !b.Append(rec.Seq, rec.Entry) {
				break
			}
			added = true
			if i%yieldEvery == yieldEvery-1 {
				runtime.Gosched()
			}
		}
		if !added && seq != start {
			continue
		}
		minNS, maxNS := b.TimeRange()
		data := b.AppendBinary(nil)
		if err := r.exec(ctx, `INSERT INTO count_blocks(start, n, min_ns, max_ns, vals, data) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT(start) DO UPDATE SET n = excluded.n, min_ns = excluded.min_ns, max_ns = excluded.max_ns, vals = excluded.vals, data = excluded.data`,
			start, b.Len(), minNS, maxNS, b.AppendValues(nil), data); err != nil {
			return fmt.Errorf("counts of chunk %d: %w", start, err)
		}
		ix.blk = &writtenBlock{b, data}
		runtime.Gosched() // a block is up to 4096 entries' work (yieldEvery)
	}
	return nil
}

// writtenBlock is a count block as WriteIndex wrote it: decoded, ready to
// extend, and its encoding.
type writtenBlock struct {
	b    *audit.CountBlock
	data []byte
}

// storedBlock returns the stored block of the chunk at start, to extend
// from seq on: last's if the stored block is still the one last holds
// (the same bytes), else the stored one decoded. It returns nil for a block that cannot be extended (none
// stored, malformed, stopping short of seq).
func (ix *index) storedBlock(ctx context.Context, r *rawConn, last *writtenBlock, start, seq int64) (*audit.CountBlock, error) {
	if last != nil && last.b.Start == start && last.b.Start+last.b.Len() == seq {
		// Compared byte for byte: an edited block is left as it is, as
		// when it is read (warden index check reports it).
		same, err := r.queryInt64Args(ctx, "SELECT n = ? AND data = ? FROM count_blocks WHERE start = ?", last.b.Len(), last.data, start)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("counts of chunk %d: %w", start, err)
		}
		if err == nil && same == 1 {
			return last.b, nil
		}
	}
	data, err := r.queryBytes(ctx, "SELECT data FROM count_blocks WHERE start = ?", start)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("counts of chunk %d: %w", start, err)
	}
	b, err := audit.ParseCountBlock(start, data)
	if err != nil {
		return nil, nil
	}
	return b, nil
}

// CountBlocks returns the index's count blocks of the chunks holding
// records within [from, to) (see audit.CountIndex). A store without an
// index returns none.
func (s *Store) CountBlocks(ctx context.Context, from, to int64) ([]audit.StoredBlock, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.ix == nil || from >= to {
		return nil, nil
	}
	rows, err := s.ix.r.QueryContext(ctx, "SELECT start, n, data FROM count_blocks WHERE start > ? AND start < ? ORDER BY start",
		from-audit.CountChunk, to)
	if err != nil {
		return nil, fmt.Errorf("sqlite: counts: %w", err)
	}
	defer rows.Close()
	var out []audit.StoredBlock
	for rows.Next() {
		var b audit.StoredBlock
		if err := rows.Scan(&b.Start, &b.N, &b.Data); err != nil {
			return nil, fmt.Errorf("sqlite: counts: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: counts: %w", err)
	}
	return out, nil
}

// diffCounts compares the count blocks of the chunks both indexes hold
// whole (ending at or before r.w), and reports blocks of chunks starting
// at or beyond the log's size as extra. A difference is reported once per
// chunk, at its first entry.
func diffCounts(ctx context.Context, tx *sql.Conn, r rng) ([]audit.IndexDiff, error) {
	last := r.w - audit.CountChunk // the last whole chunk's start
	onlyLive, err := seqSet(ctx, tx, `SELECT start FROM (SELECT * FROM live.count_blocks WHERE start <= ? EXCEPT SELECT * FROM main.count_blocks)
		UNION SELECT start FROM live.count_blocks WHERE start >= ?`, last, r.now)
	if err != nil {
		return nil, err
	}
	onlyRef, err := seqSet(ctx, tx, `SELECT start FROM (SELECT * FROM main.count_blocks WHERE start <= ? EXCEPT SELECT * FROM live.count_blocks)`, last)
	if err != nil {
		return nil, err
	}
	// The chunk the log has not filled yet (searches read it too,
	// decision 027): its first r.w entries, decoded.
	if part := r.w - r.w%audit.CountChunk; r.w%audit.CountChunk != 0 && !onlyLive[part] {
		ok, err := samePartialBlock(ctx, tx, part, r.w-part)
		if err != nil {
			return nil, err
		}
		if !ok {
			onlyLive[part], onlyRef[part] = true, true
		}
	}
	var out []audit.IndexDiff
	for start := range onlyLive {
		d := audit.IndexDiff{Seq: start, Kind: "altered", Part: "counts",
			Detail: fmt.Sprintf("the counts of entries [%d, %d) differ from a recount of the log", start, start+audit.CountChunk)}
		if !onlyRef[start] {
			d.Kind, d.Detail = "extra", fmt.Sprintf("counts for entries [%d, %d) the recount does not have", start, start+audit.CountChunk)
		}
		out = append(out, d)
	}
	for start := range onlyRef {
		if !onlyLive[start] {
			out = append(out, audit.IndexDiff{Seq: start, Kind: "missing", Part: "counts",
				Detail: fmt.Sprintf("the counts of entries [%d, %d) are missing", start, start+audit.CountChunk)})
		}
	}
	return out, nil
}

// samePartialBlock reports whether the live and the reference count
// block of the chunk at start agree on the chunk's first n entries
// (both missing agrees; the reference holds at most what the log did).
func samePartialBlock(ctx context.Context, tx *sql.Conn, start, n int64) (bool, error) {
	// read returns the block, and whether it parses and its vals are its
	// own.
	read := func(db string) (*audit.CountBlock, bool, error) {
		var vals, data []byte
		err := tx.QueryRowContext(ctx, "SELECT vals, data FROM "+db+".count_blocks WHERE start = ?", start).Scan(&vals, &data)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		b, err := audit.ParseCountBlock(start, data)
		return b, err == nil && bytes.Equal(vals, b.AppendValues(nil)), nil
	}
	live, okLive, err := read("live")
	if err != nil {
		return false, err
	}
	ref, okRef, err := read("main")
	if err != nil {
		return false, err
	}
	if !okRef {
		return !okLive, nil
	}
	return okLive && audit.SameCountPrefix(live, ref, min(n, ref.Len())), nil
}
