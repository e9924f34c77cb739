package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/audit"
)

// Search returns the records matching q (Data set, Entry nil), by Seq.
// Text is matched with plainto_tsquery('simple', …): each word a whole
// token, case-insensitive, ANDed; no query syntax is interpreted.
func (s *Store) Search(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	if err := s.check(); err != nil {
		return nil, err
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
	eq("subject", q.Principal)
	eq("route", q.Route)
	eq("model", q.Model)
	eq("kind", q.Kind)
	eq("request_id", q.RequestID)
	eq("approval_id", q.ApprovalID)
	eq("action", q.Action)
	if !q.From.IsZero() {
		where = append(where, "time_ns >= "+arg(q.From.UnixNano()))
	}
	if !q.To.IsZero() {
		where = append(where, "time_ns < "+arg(q.To.UnixNano()))
	}
	if q.Start > 0 {
		where = append(where, "seq >= "+arg(q.Start))
	}
	if q.End > 0 {
		where = append(where, "seq < "+arg(q.End))
	}
	if q.MaskRule != "" {
		where = append(where, "mask_rules @> ARRAY["+arg(noNUL(q.MaskRule))+"::text]")
	}
	if t := strings.TrimSpace(q.Text); t != "" {
		where = append(where, "search_tsv @@ plainto_tsquery('simple', "+arg(noNUL(t))+")")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	sql := "SELECT seq, data FROM entries"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Desc {
		sql += " ORDER BY seq DESC"
	} else {
		sql += " ORDER BY seq"
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
