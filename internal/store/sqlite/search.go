package sqlite

import (
	"context"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/wardenhq/warden/internal/audit"
)

// doc is what an entry contributes to the index's own tables (the count
// blocks take the rest: audit.CountBlock).
type doc struct {
	requestID, approvalID string
	subject               string // keyToken of the principal's subject
	text                  string
	rules                 string // ruleTokens of the mask rules
}

// docMemo builds the documents of one batch, remembering the
// tokens of values that repeat from entry to entry, so that each is
// encoded once per batch instead of once per entry (decision 050): the
// subjects' keyTokens (a batch has few principals) and the rules column
// of the previous entry with mask rules (the same profile masks the same
// rules). Its zero value is ready; it grows with the batch's distinct
// subjects only, and is dropped with the batch.
type docMemo struct {
	subjects  map[string]string
	lastRules []string
	lastTok   string
}

// doc returns e's document.
func (m *docMemo) doc(e *audit.Entry) doc {
	f := audit.Index(e)
	d := doc{requestID: e.RequestID, approvalID: e.ApprovalID, text: f.Text}
	if f.Subject != "" {
		tok, ok := m.subjects[f.Subject]
		if !ok {
			tok = keyToken(f.Subject)
			if m.subjects == nil {
				m.subjects = map[string]string{}
			}
			m.subjects[f.Subject] = tok
		}
		d.subject = tok
	}
	if len(f.MaskRules) > 0 {
		if m.lastRules == nil || !slices.Equal(f.MaskRules, m.lastRules) {
			m.lastRules, m.lastTok = f.MaskRules, ruleTokens(f.MaskRules)
		}
		d.rules = m.lastTok
	}
	return d
}

// textArg is s as an argument of entry_text's columns: NULL for "" (FTS5
// indexes no term for either), which spares the driver copying an empty
// string into C memory for every row and column that has none.
func textArg(s string) driver.Value {
	if s == "" {
		return nil
	}
	return s
}

// ruleTokens is the text of entry_text's rules column for an entry's
// mask rules: each rule the hex of its name, one token whatever the name
// holds (no tokenizer splits or folds it), separated by spaces. A rule
// named "" has no token (a search by mask rule never asks for it).
func ruleTokens(rules []string) string {
	var b []byte
	for _, r := range rules {
		if r == "" {
			continue
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = hex.AppendEncode(b, []byte(r))
	}
	return string(b)
}

// ftsRuleQuery is the FTS5 query of entry_text's rules column that
// matches exactly the entries with mask rule rule.
func ftsRuleQuery(rule string) string {
	return "rules : " + ftsString(hex.EncodeToString([]byte(rule)))
}

// ftsQuery turns words into an FTS5 query of entry_text's body column:
// each word a quoted string, implicitly ANDed, so no FTS5 syntax from the
// user is interpreted.
func ftsQuery(text string) string {
	var parts []string
	for _, w := range strings.Fields(text) {
		parts = append(parts, ftsString(w))
	}
	if len(parts) == 0 {
		return ""
	}
	return "body : (" + strings.Join(parts, " ") + ")"
}

// keyToken is the text of a request id or subject in entry_text's ids or
// subject column: one token that only that value has, so a MATCH of it
// is exact. A value of lowercase hex digits only (the gateway's request
// ids, apierr.NewRequestID) is its own token, as unicode61 neither splits
// nor folds it; any other is x and the hex of its bytes (never hex
// alone, so the two forms do not meet). "" has no token.
func keyToken(v string) string {
	if v == "" {
		return ""
	}
	if strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && (r < 'a' || r > 'f') }) < 0 {
		return v
	}
	return "x" + hex.EncodeToString([]byte(v))
}

// ftsKeyQuery is the FTS5 query of entry_text's column col (ids,
// subject) that matches exactly the entries whose value there is v.
func ftsKeyQuery(col, v string) string { return col + " : " + ftsString(keyToken(v)) }

// ftsString quotes s as an FTS5 string (a phrase of its tokens).
func ftsString(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Search returns the records matching q: the index selects candidates
// (after catching up with the log, so every committed entry is found),
// the log supplies their bytes, and q.Matches keeps those that meet the
// filters the index may answer loosely (entries a count block does not
// hold, decision 027), paging on through the index until q's limit is
// met. An index row for an entry the log does not hold is ignored.
func (s *Store) Search(ctx context.Context, q audit.Query) ([]audit.Record, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.ix == nil {
		return nil, fmt.Errorf("sqlite: search: %s has no search index (the gateway builds it; warden index rebuild)", s.path)
	}
	if s.idx != nil {
		if err := s.idx.CatchUp(ctx); err != nil {
			return nil, fmt.Errorf("sqlite: search: %w", err)
		}
	}
	limit := searchLimit(q)
	var out []audit.Record
	for page := q; ; {
		page.Limit = limit - len(out)
		seqs, loose, err := s.ix.search(ctx, page)
		if err != nil || len(seqs) == 0 {
			return out, err
		}
		recs, err := s.readSeqs(ctx, seqs)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			// Only loose candidates are parsed here (Log.Search checks
			// all again); one that does not parse is returned for
			// Log.Search to report.
			if !loose {
				out = append(out, r)
			} else if e, err := audit.ParseEntry(r.Seq, r.Data); err != nil || q.Matches(e) {
				out = append(out, r)
			}
		}
		if len(out) >= limit || len(seqs) < page.Limit {
			return out, nil
		}
		if last := seqs[len(seqs)-1]; q.Desc {
			page.End = last
		} else {
			page.Start = last + 1
		}
		if page.Desc && page.End <= 0 {
			return out, nil
		}
	}
}

// readSeqs returns the log records at seqs, in that order, skipping any
// the log does not hold.
func (s *Store) readSeqs(ctx context.Context, seqs []int64) ([]audit.Record, error) {
	lim := min(s.limit(), s.logSize())
	data := make(map[int64][]byte, len(seqs))
	var low, high []int64
	for _, x := range seqs {
		switch {
		case x >= lim:
		case x < s.base:
			low = append(low, x)
		default:
			high = append(high, x)
		}
	}
	if len(low) > 0 {
		if err := s.readTableSeqs(ctx, low, data); err != nil {
			return nil, err
		}
	}
	if err := s.readFrameSeqs(high, data); err != nil {
		return nil, err
	}
	out := make([]audit.Record, 0, len(seqs))
	for _, x := range seqs {
		if b, ok := data[x]; ok {
			out = append(out, audit.Record{Seq: x, Data: b})
		}
	}
	return out, nil
}

// readTableSeqs reads the records at seqs from the entries table (the
// prefix below the frames' base) into data.
func (s *Store) readTableSeqs(ctx context.Context, seqs []int64, data map[int64][]byte) error {
	args := make([]any, len(seqs))
	marks := make([]string, len(seqs))
	for i, x := range seqs {
		args[i], marks[i] = x, "?"
	}
	rows, err := s.r.QueryContext(ctx, "SELECT seq, data FROM entries WHERE seq IN ("+strings.Join(marks, ",")+")", args...)
	if err != nil {
		return fmt.Errorf("sqlite: search: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return fmt.Errorf("sqlite: search: %w", err)
		}
		data[seq] = b
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: search: %w", err)
	}
	return nil
}
