package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/audit"
)

// Search returns the records matching q (Data set, Entry nil), by Seq:
// entry_index selects them (after catching up with the log, so every
// sequenced entry is found), the entries table supplies their bytes.
// Text is matched with plainto_tsquery('simple', …): each word a whole
// token, case-insensitive, ANDed; no query syntax is interpreted.
func (s *Store) Search(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.idx != nil { // nil in a read-only store
		if err := s.idx.CatchUp(ctx); err != nil {
			return nil, fmt.Errorf("postgres: search: %w", err)
		}
	}
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = "+arg(noNUL(v)))
		}
	}
	eq("i.subject", q.Principal)
	eq("i.route", q.Route)
	eq("i.model", q.Model)
	eq("i.kind", q.Kind)
	eq("i.request_id", q.RequestID)
	eq("i.approval_id", q.ApprovalID)
	eq("i.action", q.Action)
	if !q.From.IsZero() {
		where = append(where, "i.time_ns >= "+arg(q.From.UnixNano()))
	}
	if !q.To.IsZero() {
		where = append(where, "i.time_ns < "+arg(q.To.UnixNano()))
	}
	if q.Start > 0 {
		where = append(where, "i.seq >= "+arg(q.Start))
	}
	if q.End > 0 {
		where = append(where, "i.seq < "+arg(q.End))
	}
	if q.MaskRule != "" {
		where = append(where, "i.mask_rules @> ARRAY["+arg(noNUL(q.MaskRule))+"::text]")
	}
	if t := strings.TrimSpace(q.Text); t != "" {
		where = append(where, "i.search_tsv @@ plainto_tsquery('simple', "+arg(noNUL(t))+")")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	sql := "SELECT e.seq, e.data FROM entry_index i JOIN entries e ON e.seq = i.seq"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Desc {
		sql += " ORDER BY i.seq DESC"
	} else {
		sql += " ORDER BY i.seq"
	}
	sql += fmt.Sprintf(" LIMIT %d", limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: search: %w", err)
	}
	var out []audit.Record
	var r audit.Record
	_, err = pgx.ForEachRow(rows, []any{&r.Seq, &r.Data}, func() error {
		out = append(out, audit.Record{Seq: r.Seq, Data: r.Data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: search: %w", err)
	}
	return out, nil
}
