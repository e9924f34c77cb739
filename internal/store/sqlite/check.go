package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wardenhq/warden/internal/audit"
)

var _ audit.IndexMaintainer = (*Store)(nil)

// fieldColumns are the copied columns of entry_approvals, after seq.
var fieldColumns = []string{"approval_id"}

// CheckIndex builds a reference index from the log in a temporary file
// and compares it with the store's index file, table by table (the
// full-text index through fts5vocab, i.e. the terms a MATCH finds, not
// its storage layout). See audit.IndexMaintainer.
func (s *Store) CheckIndex(ctx context.Context) (audit.IndexReport, error) {
	var rep audit.IndexReport
	if err := s.check(); err != nil {
		return rep, err
	}
	if s.ix == nil {
		return rep, fmt.Errorf("sqlite: %s: no search index: %w", IndexPath(s.path), audit.ErrNotFound)
	}
	dir, err := os.MkdirTemp("", "warden-index-check-")
	if err != nil {
		return rep, fmt.Errorf("sqlite: check index: %w", err)
	}
	defer os.RemoveAll(dir)
	ref, err := openIndexRW(ctx, filepath.Join(dir, "reference.db"))
	if err != nil {
		return rep, fmt.Errorf("sqlite: check index: %w", err)
	}
	defer ref.close()
	if rep.LogSize, err = audit.BuildIndex(ctx, s, ref); err != nil {
		return rep, fmt.Errorf("sqlite: check index: %w", err)
	}
	c, err := ref.w.Conn(ctx)
	if err != nil {
		return rep, fmt.Errorf("sqlite: check index: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "ATTACH DATABASE ? AS live", s.ix.path); err != nil {
		return rep, fmt.Errorf("sqlite: check index: attach %s: %w", s.ix.path, err)
	}
	defer c.ExecContext(context.Background(), "DETACH DATABASE live")
	for _, stmt := range []string{
		"CREATE VIRTUAL TABLE temp.vocab_live USING fts5vocab(live, entry_text, instance)",
		"CREATE VIRTUAL TABLE temp.vocab_ref USING fts5vocab(main, entry_text, instance)",
	} {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			return rep, fmt.Errorf("sqlite: check index: %w", err)
		}
	}
	// One read transaction (deferred: no lock on the index a gateway may
	// be writing): a consistent view of it.
	if _, err := c.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
		return rep, fmt.Errorf("sqlite: check index: %w", err)
	}
	defer c.ExecContext(context.Background(), "ROLLBACK")
	tx := c
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE((SELECT indexed FROM live.index_state WHERE id = 0), 0)").Scan(&rep.Indexed); err != nil {
		return rep, fmt.Errorf("sqlite: check index: %w", err)
	}
	// The log now: index rows up to here are for entries the log holds
	// (a running gateway indexes only what it committed), even if they
	// arrived after the reference was built.
	now, err := s.Size(ctx)
	if err != nil {
		return rep, fmt.Errorf("sqlite: check index: %w", err)
	}
	// Records [0, w) are compared both ways; the index rows in [n, now)
	// are not compared; rows at now and beyond are extra. Records the
	// index has not reached yet are lag, not differences.
	r := rng{w: min(rep.Indexed, rep.LogSize), n: rep.LogSize, now: max(now, rep.LogSize)}
	for _, part := range []func(context.Context, *sql.Conn, rng) ([]audit.IndexDiff, error){diffFields, diffMasks, diffText, diffCounts} {
		d, err := part(ctx, tx, r)
		if err != nil {
			return rep, fmt.Errorf("sqlite: check index: %w", err)
		}
		rep.Diffs = append(rep.Diffs, d...)
	}
	slices.SortStableFunc(rep.Diffs, func(a, b audit.IndexDiff) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Part, b.Part))
	})
	return rep, nil
}

// seqSet runs a query returning seqs.
func seqSet(ctx context.Context, tx *sql.Conn, query string, args ...any) (map[int64]bool, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		out[seq] = true
	}
	return out, rows.Err()
}

// rng bounds a comparison: reference rows below w must be in the index,
// index rows below n must be in the reference, index rows at now and
// beyond are for entries the log does not hold.
type rng struct{ w, n, now int64 }

// diffFields compares the approval ids (entry_approvals); request ids and
// subjects are terms of the full text (diffText).
func diffFields(ctx context.Context, tx *sql.Conn, r rng) ([]audit.IndexDiff, error) {
	onlyLive, err := seqSet(ctx, tx, "SELECT seq FROM (SELECT * FROM live.entry_approvals WHERE seq < ? EXCEPT SELECT * FROM main.entry_approvals) UNION SELECT seq FROM live.entry_approvals WHERE seq >= ?", r.n, r.now)
	if err != nil {
		return nil, err
	}
	onlyRef, err := seqSet(ctx, tx, "SELECT seq FROM (SELECT * FROM main.entry_approvals WHERE seq < ? EXCEPT SELECT * FROM live.entry_approvals)", r.w)
	if err != nil {
		return nil, err
	}
	var out []audit.IndexDiff
	for seq := range onlyLive {
		if !onlyRef[seq] {
			out = append(out, audit.IndexDiff{Seq: seq, Kind: "extra", Part: "fields", Detail: "the index has an approval id for an entry the log does not hold, or that has none"})
			continue
		}
		detail, err := fieldChanges(ctx, tx, seq)
		if err != nil {
			return nil, err
		}
		out = append(out, audit.IndexDiff{Seq: seq, Kind: "altered", Part: "fields", Detail: detail})
	}
	for seq := range onlyRef {
		if !onlyLive[seq] {
			out = append(out, audit.IndexDiff{Seq: seq, Kind: "missing", Part: "fields", Detail: "the entry's approval id is not in the index"})
		}
	}
	return out, nil
}

// fieldChanges names the copied columns of seq that differ.
func fieldChanges(ctx context.Context, tx *sql.Conn, seq int64) (string, error) {
	cols := strings.Join(fieldColumns, ", ")
	vals := func(db string) ([]string, error) {
		v := make([]sql.NullString, len(fieldColumns))
		ptr := make([]any, len(v))
		for i := range v {
			ptr[i] = &v[i]
		}
		if err := tx.QueryRowContext(ctx, "SELECT "+cols+" FROM "+db+".entry_approvals WHERE seq = ?", seq).Scan(ptr...); err != nil {
			return nil, err
		}
		out := make([]string, len(v))
		for i := range v {
			out[i] = v[i].String
		}
		return out, nil
	}
	live, err := vals("live")
	if err != nil {
		return "", err
	}
	want, err := vals("main")
	if err != nil {
		return "", err
	}
	var ch []string
	for i := range live {
		if live[i] != want[i] {
			ch = append(ch, fmt.Sprintf("%s is %q in the index, %q in the log", fieldColumns[i], live[i], want[i]))
		}
	}
	return strings.Join(ch, "; "), nil
}

// pairs runs a query returning (seq, text) rows, grouped by seq.
func pairs(ctx context.Context, tx *sql.Conn, query string, args ...any) (map[int64][]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64][]string{}
	for rows.Next() {
		var seq int64
		var s string
		if err := rows.Scan(&seq, &s); err != nil {
			return nil, err
		}
		out[seq] = append(out[seq], s)
	}
	return out, rows.Err()
}

// diffMasks compares the mask rules: the terms of entry_text's rules
// column, each the hex of a rule's name (ruleTokens).
func diffMasks(ctx context.Context, tx *sql.Conn, r rng) ([]audit.IndexDiff, error) {
	extra, err := pairs(ctx, tx, `SELECT doc, term FROM (SELECT * FROM temp.vocab_live WHERE col = 'rules' AND doc < ? EXCEPT SELECT * FROM temp.vocab_ref
		UNION SELECT * FROM temp.vocab_live WHERE col = 'rules' AND doc >= ?) ORDER BY 1, 2`, r.n, r.now)
	if err != nil {
		return nil, err
	}
	missing, err := pairs(ctx, tx, "SELECT doc, term FROM (SELECT * FROM temp.vocab_ref WHERE col = 'rules' AND doc < ? EXCEPT SELECT * FROM temp.vocab_live) ORDER BY 1, 2", r.w)
	if err != nil {
		return nil, err
	}
	return audit.TermDiffs("mask_rules", "rules", ruleNames(extra), ruleNames(missing)), nil
}

// ruleNames turns rules-column terms back into rule names (a term that
// is not hex, which no writer makes, is shown as it is).
func ruleNames(terms map[int64][]string) map[int64][]string {
	for seq, ts := range terms {
		for i, t := range ts {
			if b, err := hex.DecodeString(t); err == nil {
				ts[i] = string(b)
			}
		}
		slices.Sort(ts)
		terms[seq] = ts
	}
	return terms
}

// diffText compares the rest of the full text (body, request ids and
// subjects; a request id or subject is named request_id=… or subject=…,
// decoded from its token).
func diffText(ctx context.Context, tx *sql.Conn, r rng) ([]audit.IndexDiff, error) {
	// Rows are (term, doc, col, offset): every token a MATCH can find.
	const term = "CASE col WHEN 'ids' THEN 'request_id=' || term WHEN 'subject' THEN 'subject=' || term ELSE term END"
	extra, err := pairs(ctx, tx, `SELECT doc, `+term+` FROM (SELECT * FROM temp.vocab_live WHERE col != 'rules' AND doc < ? EXCEPT SELECT * FROM temp.vocab_ref
		UNION SELECT * FROM temp.vocab_live WHERE col != 'rules' AND doc >= ?) ORDER BY 1, 2`, r.n, r.now)
	if err != nil {
		return nil, err
	}
	missing, err := pairs(ctx, tx, "SELECT doc, "+term+" FROM (SELECT * FROM temp.vocab_ref WHERE col != 'rules' AND doc < ? EXCEPT SELECT * FROM temp.vocab_live) ORDER BY 1, 2", r.w)
	if err != nil {
		return nil, err
	}
	return audit.TermDiffs("text", "terms", keyNames(extra), keyNames(missing)), nil
}

// keyNames decodes the request ids and subjects among diffText's terms
// (keyToken's x and hex form).
func keyNames(terms map[int64][]string) map[int64][]string {
	for _, ts := range terms {
		for i, t := range ts {
			name, tok, ok := strings.Cut(t, "=")
			if !ok || (name != "request_id" && name != "subject") || !strings.HasPrefix(tok, "x") {
				continue
			}
			if b, err := hex.DecodeString(tok[1:]); err == nil {
				ts[i] = name + "=" + string(b)
			}
		}
	}
	return terms
}

// RebuildIndex replaces the search index with one built from the log. On
// a read-only store (the CLI) it opens the index file for writing on its
// own; a running gateway's indexer notices and carries on from the
// rebuilt index. Searches during the rebuild may miss entries.
func (s *Store) RebuildIndex(ctx context.Context) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if s.idx != nil {
		return s.idx.Rebuild(ctx)
	}
	ix, err := openIndex(ctx, IndexPath(s.path), false)
	if err != nil {
		return 0, err
	}
	defer ix.close()
	if err := ix.ResetIndex(ctx); err != nil {
		return 0, err
	}
	n, err := audit.BuildIndex(ctx, s, ix)
	if err != nil {
		return 0, fmt.Errorf("sqlite: rebuild index: %w", err)
	}
	return n, nil
}
