package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/wardenhq/warden/internal/audit"
)

// doc is what an entry contributes to the search indexes.
type doc struct {
	id, kind, subject, route, model, requestID, approvalID, action string
	timeNS                                                         int64
	text                                                           string
	maskRules                                                      []string
}

func docOf(e *audit.Entry) doc {
	f := audit.Index(e)
	return doc{
		id: e.ID, kind: e.Kind, route: e.Route, model: e.Model,
		requestID: e.RequestID, approvalID: e.ApprovalID, timeNS: e.Time.UnixNano(),
		subject: f.Subject, action: f.Action, text: f.Text, maskRules: f.MaskRules,
	}
}

// ftsQuery turns words into an FTS5 query: each word a quoted string,
// implicitly ANDed, so no FTS5 syntax from the user is interpreted.
func ftsQuery(text string) string {
	var parts []string
	for _, w := range strings.Fields(text) {
		parts = append(parts, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
	}
	return strings.Join(parts, " ")
}

// Search returns the records matching q.
func (s *Store) Search(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("e.subject", q.Principal)
	eq("e.route", q.Route)
	eq("e.model", q.Model)
	eq("e.kind", q.Kind)
	eq("e.request_id", q.RequestID)
	eq("e.approval_id", q.ApprovalID)
	eq("e.action", q.Action)
	if !q.From.IsZero() {
		where = append(where, "e.time_ns >= ?")
		args = append(args, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		where = append(where, "e.time_ns < ?")
		args = append(args, q.To.UnixNano())
	}
	if q.Start > 0 {
		where = append(where, "e.seq >= ?")
		args = append(args, q.Start)
	}
	if q.End > 0 {
		where = append(where, "e.seq < ?")
		args = append(args, q.End)
	}
	if q.MaskRule != "" {
		where = append(where, "e.seq IN (SELECT seq FROM entry_masks WHERE rule = ?)")
		args = append(args, q.MaskRule)
	}
	if fq := ftsQuery(q.Text); fq != "" {
		where = append(where, "e.seq IN (SELECT rowid FROM entry_text WHERE entry_text MATCH ?)")
		args = append(args, fq)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	query := "SELECT e.seq, e.data FROM entries e"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if q.Desc {
		query += " ORDER BY e.seq DESC"
	} else {
		query += " ORDER BY e.seq"
	}
	query += fmt.Sprintf(" LIMIT %d", limit)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		var r audit.Record
		if err := rows.Scan(&r.Seq, &r.Data); err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	return out, nil
}
