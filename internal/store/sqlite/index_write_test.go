package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// TestIndexWriteBatching: the index written in batches of any size
// (extending the count block the last batch left, decision 035) holds
// exactly what one batch writes, also when the stored block changed
// behind the writer's back (deleted, cut short, the index reset), where
// the block must be read again, not taken from memory.
func TestIndexWriteBatching(t *testing.T) {
	ctx := context.Background()
	recs := indexBenchEntries(9000) // three chunks of 4096
	dump := func(ix *index) (rows [][]any) {
		t.Helper()
		// Every term of the full text (request ids, subjects, rules,
		// words), where it is: the index's one writer connection.
		if _, err := ix.w.ExecContext(ctx, "CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, entry_text, instance)"); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			"SELECT start, n, min_ns, max_ns, hex(vals), hex(data) FROM count_blocks ORDER BY start",
			"SELECT seq, approval_id, '', '', '', '' FROM entry_approvals ORDER BY seq",
			"SELECT indexed, '', '', '', '', '' FROM index_state",
			"SELECT doc, col, term, offset, '', '' FROM temp.vocab ORDER BY doc, col, offset, term",
			"SELECT rowid, '', '', '', '', '' FROM entry_text WHERE entry_text MATCH 'rules : " + ruleTokens([]string{"email"}) + "' ORDER BY rowid",
			"SELECT rowid, '', '', '', '', '' FROM entry_text WHERE entry_text MATCH 'rules : " + ruleTokens([]string{"iban"}) + "' ORDER BY rowid",
		} {
			rs, err := ix.w.QueryContext(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for rs.Next() {
				v := make([]any, 6)
				p := make([]any, 6)
				for i := range v {
					p[i] = &v[i]
				}
				if err := rs.Scan(p...); err != nil {
					t.Fatal(err)
				}
				rows = append(rows, v)
			}
			rs.Close()
		}
		return rows
	}
	open := func() *index {
		t.Helper()
		ix, err := openIndexRW(ctx, filepath.Join(t.TempDir(), "index.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ix.close() })
		return ix
	}
	write := func(ix *index, from, to int) {
		t.Helper()
		if err := ix.WriteIndex(ctx, recs[from:to]); err != nil {
			t.Fatalf("WriteIndex [%d, %d): %v", from, to, err)
		}
	}
	ref := open()
	write(ref, 0, len(recs))
	want := dump(ref)

	for _, tc := range []struct {
		name string
		// meddle runs on the index after the batch ending at its key.
		meddle map[int]string
		reset  bool
	}{
		{name: "batches"},
		{name: "block deleted", meddle: map[int]string{1000: "DELETE FROM count_blocks WHERE start = 0"}},
		{name: "block cut short", meddle: map[int]string{1000: "UPDATE count_blocks SET n = 999 WHERE start = 0"}},
		{name: "block replaced", meddle: map[int]string{4097: "UPDATE count_blocks SET data = x'00' WHERE start = 4096"}},
		{name: "reset", reset: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// cached extends the block in memory; reread reads it from the
			// file every time (as before decision 035): the oracle.
			run := func(reread bool) [][]any {
				ix := open()
				from := 0
				for _, end := range []int{1, 8, 300, 1000, 4095, 4096, 4097, 6000, 8192, 9000} {
					if reread {
						ix.blk = nil
					}
					write(ix, from, end)
					from = end
					if q := tc.meddle[end]; q != "" {
						if _, err := ix.w.ExecContext(ctx, q); err != nil {
							t.Fatal(err)
						}
					}
					if tc.reset && end == 4097 {
						if err := ix.ResetIndex(ctx); err != nil {
							t.Fatal(err)
						}
						write(ix, 0, end)
					}
				}
				return dump(ix)
			}
			eq := func(a, b []any) bool { return slices.Equal(a, b) }
			cached, reread := run(false), run(true)
			if !slices.EqualFunc(cached, reread, eq) {
				t.Fatalf("index extended from memory differs from one read back each batch (%d rows, %d)", len(cached), len(reread))
			}
			if len(tc.meddle) == 0 && !slices.EqualFunc(cached, want, eq) {
				t.Fatalf("index written in batches differs from one written at once (%d rows, want %d)", len(cached), len(want))
			}
		})
	}
}

// TestDocMemo: the documents a batch's memo builds (subjects' tokens and
// the rules column remembered from entry to entry, decision 050) are
// those of each entry on its own, whatever repeats or changes between
// entries.
func TestDocMemo(t *testing.T) {
	subjects := []string{"", "bench-user", "0f3a", "bench-user", "", "0F3A", "0f3a", "x72", "r"}
	rules := [][]string{nil, {"email"}, {"email"}, {"Email"}, {"email", "card"}, {"email", "card"}, nil, {""}, {"card", "email"}, {"email"}}
	var memo docMemo
	for i := range 40 {
		e := &audit.Entry{RequestID: fmt.Sprintf("req-%d", i%3), Kind: audit.KindRequestCompleted}
		if s := subjects[i%len(subjects)]; s != "" {
			e.Principal = &identity.Principal{Subject: s}
		}
		if i%4 == 0 {
			e.Params = map[string]any{"model": "m", "stream": i%8 == 0, "n": json.Number("2")}
		}
		for _, r := range rules[i%len(rules)] {
			e.Masking = append(e.Masking, audit.MaskAction{Rule: r, Count: 1})
		}
		f := audit.Index(e)
		want := doc{requestID: e.RequestID, approvalID: e.ApprovalID, subject: keyToken(f.Subject), text: f.Text, rules: ruleTokens(f.MaskRules)}
		if got := memo.doc(e); got != want {
			t.Fatalf("entry %d: memo doc %+v, want %+v", i, got, want)
		}
	}
}
