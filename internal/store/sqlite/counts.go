package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

var _ audit.CountIndex = (*Store)(nil)

// writeCounts adds the counts of recs (not yet indexed) to the index's
// per-chunk counts, in the index write's transaction.
func writeCounts(ctx context.Context, tx *sql.Tx, recs []audit.Record) error {
	spans := map[int64]*audit.CountSpan{}
	rows := map[audit.CountRow]int64{}
	audit.AddCounts(recs, spans, rows)
	insS, err := tx.PrepareContext(ctx, `INSERT INTO count_spans(start, end_seq, n, min_ns, max_ns) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(start) DO UPDATE SET n = n + excluded.n, min_ns = min(min_ns, excluded.min_ns), max_ns = max(max_ns, excluded.max_ns)`)
	if err != nil {
		return fmt.Errorf("sqlite: index: counts: %w", err)
	}
	defer insS.Close()
	for _, sp := range spans {
		if _, err := insS.ExecContext(ctx, sp.Start, sp.End, sp.Count, sp.MinTime.UnixNano(), sp.MaxTime.UnixNano()); err != nil {
			return fmt.Errorf("sqlite: index: counts of [%d, %d): %w", sp.Start, sp.End, err)
		}
	}
	insR, err := tx.PrepareContext(ctx, `INSERT INTO count_rows(dim, start, kind, value, n) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(dim, start, kind, value) DO UPDATE SET n = n + excluded.n`)
	if err != nil {
		return fmt.Errorf("sqlite: index: counts: %w", err)
	}
	defer insR.Close()
	for _, r := range audit.SortedCounts(rows) {
		if _, err := insR.ExecContext(ctx, r.Dim, r.Start, r.Kind, r.Value, r.Count); err != nil {
			return fmt.Errorf("sqlite: index: counts of [%d, %d): %w", r.Start, r.End, err)
		}
	}
	return nil
}

// ChunkCounts returns the index's counts of dimension dim for the chunks
// within records [from, to) whose entries are all indexed (see
// audit.CountIndex). A store without an index returns none.
func (s *Store) ChunkCounts(ctx context.Context, dim string, from, to int64) ([]audit.ChunkCount, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.ix == nil {
		return nil, nil
	}
	// One read transaction: the spans and rows of one state of the index
	// (a rebuild may be emptying it).
	tx, err := s.ix.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: counts: %w", err)
	}
	defer tx.Rollback()
	indexed, err := indexedSize(ctx, tx)
	if err != nil {
		return nil, err
	}
	to = min(to, indexed)
	rows, err := tx.QueryContext(ctx, `SELECT start, end_seq, n, min_ns, max_ns FROM count_spans
		WHERE start >= ? AND end_seq <= ? AND n = end_seq - start ORDER BY start`, from, to)
	if err != nil {
		return nil, fmt.Errorf("sqlite: counts: %w", err)
	}
	var out []audit.ChunkCount
	byStart := map[int64]int{}
	for rows.Next() {
		var c audit.ChunkCount
		var minNS, maxNS int64
		if err := rows.Scan(&c.Span.Start, &c.Span.End, &c.Span.Count, &minNS, &maxNS); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: counts: %w", err)
		}
		c.Span.MinTime, c.Span.MaxTime = time.Unix(0, minNS).UTC(), time.Unix(0, maxNS).UTC()
		c.Groups = map[audit.Group]int64{}
		byStart[c.Span.Start] = len(out)
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: counts: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	rows, err = tx.QueryContext(ctx, "SELECT start, kind, value, n FROM count_rows WHERE dim = ? AND start >= ? AND start <= ?",
		dim, out[0].Span.Start, out[len(out)-1].Span.Start)
	if err != nil {
		return nil, fmt.Errorf("sqlite: counts: %w", err)
	}
	defer rows.Close()
	var (
		start, n    int64
		kind, value string
	)
	for rows.Next() {
		if err := rows.Scan(&start, &kind, &value, &n); err != nil {
			return nil, fmt.Errorf("sqlite: counts: %w", err)
		}
		i, ok := byStart[start]
		if !ok {
			continue // a partial chunk between whole ones (cannot happen: chunks fill in order)
		}
		g := audit.Group{Kind: kind}
		g.Set(dim, value)
		out[i].Groups[g] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: counts: %w", err)
	}
	return out, nil
}

// diffCounts compares the per-chunk counts of the chunks both indexes
// hold whole (ending at or before r.w), and reports counts of chunks
// starting at or beyond the log's size as extra. A difference is
// reported once per chunk, at its first entry.
func diffCounts(ctx context.Context, tx *sql.Conn, r rng) ([]audit.IndexDiff, error) {
	last := r.w - audit.CountChunk // the last whole chunk's start
	onlyLive, err := seqSet(ctx, tx, `SELECT start FROM (SELECT * FROM live.count_spans WHERE end_seq <= ? EXCEPT SELECT * FROM main.count_spans)
		UNION SELECT start FROM (SELECT * FROM live.count_rows WHERE start <= ? EXCEPT SELECT * FROM main.count_rows)
		UNION SELECT start FROM live.count_spans WHERE start >= ? UNION SELECT start FROM live.count_rows WHERE start >= ?`, r.w, last, r.now, r.now)
	if err != nil {
		return nil, err
	}
	onlyRef, err := seqSet(ctx, tx, `SELECT start FROM (SELECT * FROM main.count_spans WHERE end_seq <= ? EXCEPT SELECT * FROM live.count_spans)
		UNION SELECT start FROM (SELECT * FROM main.count_rows WHERE start <= ? EXCEPT SELECT * FROM live.count_rows)`, r.w, last)
	if err != nil {
		return nil, err
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
