package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/audit"
)

var _ audit.IndexMaintainer = (*Store)(nil)

// beginner is a pool or a transaction (whose Begin is a savepoint).
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// index is a search index table: the store's entry_index, or the
// reference table CheckIndex builds. Rows are derived from the entries by
// audit.Index; the table is not evidence and is not append-only.
type index struct {
	db    beginner
	table string
	// lock serialises the replicas' indexers (0: a private table).
	lock int64
}

var _ audit.IndexWriter = (*index)(nil)

var indexColumns = []string{"seq", "time_ns", "kind", "subject", "route", "model", "request_id", "approval_id", "action", "mask_rules", "search_text"}

// indexRow is what entry e adds to the index.
func indexRow(seq int64, e *audit.Entry) []any {
	f := audit.Index(e)
	text := f.Text
	if len(text) > maxSearchText {
		text = strings.ToValidUTF8(text[:maxSearchText], "")
	}
	rules := make([]string, len(f.MaskRules))
	for i, r := range f.MaskRules {
		rules[i] = noNUL(r)
	}
	return []any{seq, e.Time.UnixNano(), noNUL(e.Kind), noNUL(f.Subject), noNUL(e.Route), noNUL(e.Model),
		noNUL(e.RequestID), noNUL(e.ApprovalID), noNUL(f.Action), rules, noNUL(text)}
}

func (ix *index) IndexedSize(ctx context.Context) (int64, error) {
	tx, err := ix.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: index size: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	return ix.size(ctx, tx)
}

func (ix *index) size(ctx context.Context, tx pgx.Tx) (int64, error) {
	var n int64
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(seq) + 1, 0) FROM "+ix.table).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: index size: %w", err)
	}
	return n, nil
}

// WriteIndex indexes consecutive records in one transaction, under an
// advisory lock so replicas' indexers take turns (audit.IndexWriter).
func (ix *index) WriteIndex(ctx context.Context, recs []audit.Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := ix.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: index: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	if ix.lock != 0 {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ix.lock); err != nil {
			return fmt.Errorf("postgres: index: lock: %w", err)
		}
	}
	n, err := ix.size(ctx, tx)
	if err != nil {
		return err
	}
	if recs, err = audit.Unindexed(recs, n); err != nil || len(recs) == 0 {
		return err
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier(strings.Split(ix.table, ".")), indexColumns, pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
		if recs[i].Seq != n+int64(i) {
			return nil, fmt.Errorf("records not consecutive at %d", recs[i].Seq)
		}
		return indexRow(recs[i].Seq, recs[i].Entry), nil
	}))
	if err != nil {
		return fmt.Errorf("postgres: index [%d, %d): %w", n, n+int64(len(recs)), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: index: commit: %w", err)
	}
	return nil
}

// ResetIndex empties the index table.
func (ix *index) ResetIndex(ctx context.Context) error {
	tx, err := ix.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: reset index: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	if ix.lock != 0 {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", ix.lock); err != nil {
			return fmt.Errorf("postgres: reset index: lock: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, "TRUNCATE "+ix.table); err != nil {
		return fmt.Errorf("postgres: reset index: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: reset index: %w", err)
	}
	return nil
}

// RebuildIndex replaces the search index with one built from the log.
func (s *Store) RebuildIndex(ctx context.Context) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if s.idx == nil {
		return 0, errors.New("postgres: rebuild index: the store is open read-only")
	}
	return s.idx.Rebuild(ctx)
}

// CheckIndex builds a reference index from the log in a temporary table
// and compares it with entry_index: copied columns, mask rules, and the
// full text as the lexemes a search matches (see audit.IndexMaintainer).
func (s *Store) CheckIndex(ctx context.Context) (audit.IndexReport, error) {
	var rep audit.IndexReport
	if err := s.check(); err != nil {
		return rep, err
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return rep, fmt.Errorf("postgres: check index: %w", err)
	}
	defer c.Release()
	// Read-write explicitly: a read-only store's sessions default to
	// read-only, which forbids even the temporary table. Nothing else is
	// written, and the transaction is rolled back.
	tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
	if err != nil {
		return rep, fmt.Errorf("postgres: check index: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read and temp only
	if _, err := tx.Exec(ctx, indexTable("pg_temp.ref_index")); err != nil {
		return rep, fmt.Errorf("postgres: check index: %w", err)
	}
	ref := &index{db: tx, table: "pg_temp.ref_index"}
	if rep.LogSize, err = audit.BuildIndex(ctx, s, ref); err != nil {
		return rep, fmt.Errorf("postgres: check index: %w", err)
	}
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(seq) + 1, 0) FROM entry_index").Scan(&rep.Indexed); err != nil {
		return rep, fmt.Errorf("postgres: check index: %w", err)
	}
	var now int64
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(seq) + 1, 0) FROM entries").Scan(&now); err != nil {
		return rep, fmt.Errorf("postgres: check index: %w", err)
	}
	// Reference rows below w must be in the index; index rows below n
	// must be in the reference; index rows at now and beyond are for
	// entries the log does not hold (rows in [n, now) arrived after the
	// reference was built and are not compared).
	w, n := min(rep.Indexed, rep.LogSize), rep.LogSize
	now = max(now, n)
	cols := "seq, time_ns, kind, subject, route, model, request_id, approval_id, action"
	onlyLive, err := seqs(ctx, tx, `SELECT seq FROM (SELECT `+cols+` FROM entry_index WHERE seq < $1
		EXCEPT SELECT `+cols+` FROM pg_temp.ref_index) x UNION SELECT seq FROM entry_index WHERE seq >= $2`, n, now)
	if err != nil {
		return rep, fmt.Errorf("postgres: check index: %w", err)
	}
	onlyRef, err := seqs(ctx, tx, `SELECT seq FROM (SELECT `+cols+` FROM pg_temp.ref_index WHERE seq < $1
		EXCEPT SELECT `+cols+` FROM entry_index) x`, w)
	if err != nil {
		return rep, fmt.Errorf("postgres: check index: %w", err)
	}
	for seq := range onlyLive {
		if !onlyRef[seq] {
			rep.Diffs = append(rep.Diffs, audit.IndexDiff{Seq: seq, Kind: "extra", Part: "fields", Detail: "the index has a row for an entry the log does not hold"})
			continue
		}
		detail, err := fieldChanges(ctx, tx, seq)
		if err != nil {
			return rep, fmt.Errorf("postgres: check index: %w", err)
		}
		rep.Diffs = append(rep.Diffs, audit.IndexDiff{Seq: seq, Kind: "altered", Part: "fields", Detail: detail})
	}
	for seq := range onlyRef {
		if !onlyLive[seq] {
			rep.Diffs = append(rep.Diffs, audit.IndexDiff{Seq: seq, Kind: "missing", Part: "fields", Detail: "the entry has no row in the index"})
		}
	}
	for _, p := range []struct{ part, what, expr string }{
		{"mask_rules", "rules", "unnest(mask_rules)"},
		{"text", "terms", "unnest(tsvector_to_array(search_tsv))"},
	} {
		extra, err := pairs(ctx, tx, `SELECT seq, v FROM (SELECT seq, `+p.expr+` AS v FROM entry_index WHERE seq < $1
			EXCEPT SELECT seq, `+p.expr+` FROM pg_temp.ref_index
			UNION SELECT seq, `+p.expr+` FROM entry_index WHERE seq >= $2) x ORDER BY 1, 2`, n, now)
		if err != nil {
			return rep, fmt.Errorf("postgres: check index: %w", err)
		}
		missing, err := pairs(ctx, tx, `SELECT seq, v FROM (SELECT seq, `+p.expr+` AS v FROM pg_temp.ref_index WHERE seq < $1
			EXCEPT SELECT seq, `+p.expr+` FROM entry_index) x ORDER BY 1, 2`, w)
		if err != nil {
			return rep, fmt.Errorf("postgres: check index: %w", err)
		}
		rep.Diffs = append(rep.Diffs, audit.TermDiffs(p.part, p.what, extra, missing)...)
	}
	slices.SortStableFunc(rep.Diffs, func(a, b audit.IndexDiff) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Part, b.Part))
	})
	return rep, nil
}

func seqs(ctx context.Context, tx pgx.Tx, sql string, args ...any) (map[int64]bool, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out := map[int64]bool{}
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&seq}, func() error { out[seq] = true; return nil })
	return out, err
}

func pairs(ctx context.Context, tx pgx.Tx, sql string, args ...any) (map[int64][]string, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out := map[int64][]string{}
	var seq int64
	var v string
	_, err = pgx.ForEachRow(rows, []any{&seq, &v}, func() error { out[seq] = append(out[seq], v); return nil })
	return out, err
}

// fieldChanges names the copied columns of seq that differ.
func fieldChanges(ctx context.Context, tx pgx.Tx, seq int64) (string, error) {
	cols := []string{"time_ns::text", "kind", "subject", "route", "model", "request_id", "approval_id", "action"}
	get := func(table string) ([]string, error) {
		v := make([]string, len(cols))
		ptr := make([]any, len(v))
		for i := range v {
			ptr[i] = &v[i]
		}
		err := tx.QueryRow(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+table+" WHERE seq = $1", seq).Scan(ptr...)
		return v, err
	}
	live, err := get("entry_index")
	if err != nil {
		return "", err
	}
	want, err := get("pg_temp.ref_index")
	if err != nil {
		return "", err
	}
	var ch []string
	for i := range live {
		if live[i] != want[i] {
			ch = append(ch, fmt.Sprintf("%s is %q in the index, %q in the log", strings.TrimSuffix(cols[i], "::text"), live[i], want[i]))
		}
	}
	return strings.Join(ch, "; "), nil
}
