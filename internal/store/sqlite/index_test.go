package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

var indexEntry = storetest.IndexEntry

// appendEntries appends entries [0, n) one batch each.
func appendEntries(t *testing.T, st *sqlite.Store, n int) {
	t.Helper()
	storetest.AppendEach(t, st, n, indexEntry)
}

func seqsOf(recs []audit.Record) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

func contains(s []int64, x int64) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// TestIndexTamper edits only the search index — an entry's request id and
// subject, its whole row, an approval id, the mask rules and the words of
// the full-text index — so that searches silently
// omit entries (the log still verifies). CheckIndex reports each edit;
// RebuildIndex makes searches whole again.
func TestIndexTamper(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	appendEntries(t, st, n)
	// A search catches the index up with the log.
	if recs, err := st.Search(ctx, audit.Query{Principal: "alice", Limit: 1000}); err != nil || len(recs) != n/2 {
		t.Fatalf("Search(alice) = %d records, %v; want %d", len(recs), err, n/2)
	}
	st.Close()

	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := ro.CheckIndex(ctx)
	if err != nil || len(rep.Diffs) != 0 || rep.Indexed != n || rep.LogSize != n {
		t.Fatalf("CheckIndex of an untouched index = %+v, %v", rep, err)
	}

	db, err := sql.Open("sqlite", "file:"+sqlite.IndexPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// row returns entry_text's values for entry i (its body, request id,
	// rules and subject tokens), as contentless FTS5 needs them to delete
	// it.
	row := func(i int, id, subject string) string {
		rules := ""
		if i%5 == 0 {
			rules = "656d61696c" // email
		}
		return fmt.Sprintf("%d, '%s', '%s', '%s', '%s'", i, text(i), sqlite.KeyToken(id), rules, sqlite.KeyToken(subject))
	}
	for _, stmt := range []string{
		"INSERT INTO entry_text(entry_text, rowid, body, ids, rules, subject) VALUES ('delete', " + row(4, "req-004", "alice") + ")", // request id and subject
		"INSERT INTO entry_text(rowid, body, ids, rules, subject) VALUES (" + row(4, "req-x", "mallory") + ")",
		"INSERT INTO entry_text(entry_text, rowid, body, ids, rules, subject) VALUES ('delete', " + row(6, "req-006", "alice") + ")",                       // a whole row
		"INSERT INTO entry_text(entry_text, rowid, rules) VALUES ('delete', 10, '656d61696c')",                                                             // mask rule email (its hex), from the full text
		"INSERT INTO entry_text(rowid, rules) VALUES (3, '73736e')",                                                                                        // a rule (ssn) the entry lacks
		"INSERT INTO entry_text(entry_text, rowid, body) VALUES ('delete', 8, '" + text(8) + "')",                                                          // full text
		"INSERT INTO entry_text(rowid, ids, subject) VALUES (" + fmt.Sprintf("42, '%s', '%s'", sqlite.KeyToken("req-042"), sqlite.KeyToken("alice")) + ")", // not in the log
		"INSERT INTO entry_approvals VALUES (12, 'ap-forged')",                                                                                             // an approval the entry lacks
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	// The count block (principal, route, … search, decision 027): alice
	// becomes mallory.
	renameInBlock(t, db, 0, audit.ByPrincipal, "alice", "mallory")

	// Searches now omit entries the log holds.
	search := func(q audit.Query) []int64 {
		t.Helper()
		q.Limit = 1000
		recs, err := ro.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return seqsOf(recs)
	}
	for _, c := range []struct {
		q   audit.Query
		seq int64
	}{
		{audit.Query{Principal: "alice"}, 4},
		{audit.Query{Principal: "alice", Text: "word4"}, 4},
		{audit.Query{RequestID: "req-004"}, 4},
		{audit.Query{RequestID: "req-006"}, 6},
		{audit.Query{MaskRule: "email"}, 10},
		{audit.Query{Text: "word8"}, 8},
	} {
		if got := search(c.q); contains(got, c.seq) {
			t.Fatalf("tampering did not hide entry %d from %+v: %v", c.seq, c.q, got)
		}
	}

	rep, err = ro.CheckIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"0 altered counts",
		"3 extra mask_rules ssn",
		"4 altered text request_id=req-x",
		"6 missing text request_id=req-006",
		"8 missing text word8",
		"10 missing mask_rules email",
		"12 extra fields",
		"42 extra text subject=alice",
	}
	if len(rep.Diffs) != len(want) {
		t.Errorf("CheckIndex found %d differences, want %d: %+v", len(rep.Diffs), len(want), rep.Diffs)
	}
	for i, w := range want {
		if i >= len(rep.Diffs) {
			break
		}
		d := rep.Diffs[i]
		f := strings.Fields(w)
		got := fmt.Sprintf("%d %s %s", d.Seq, d.Kind, d.Part)
		if got != strings.Join(f[:3], " ") || (len(f) > 3 && !strings.Contains(d.Detail, f[3])) {
			t.Errorf("difference %d = %+v, want %q", i, d, w)
		}
	}

	if got, err := ro.RebuildIndex(ctx); err != nil || got != n {
		t.Fatalf("RebuildIndex = %d, %v", got, err)
	}
	if rep, err := ro.CheckIndex(ctx); err != nil || len(rep.Diffs) != 0 {
		t.Fatalf("CheckIndex after RebuildIndex = %+v, %v", rep, err)
	}
	for _, c := range []struct {
		q   audit.Query
		seq int64
	}{
		{audit.Query{Principal: "alice"}, 4},
		{audit.Query{Principal: "alice", Text: "word4"}, 4},
		{audit.Query{RequestID: "req-004"}, 4},
		{audit.Query{RequestID: "req-006"}, 6},
		{audit.Query{MaskRule: "email"}, 10},
		{audit.Query{Text: "word8"}, 8},
	} {
		if got := search(c.q); !contains(got, c.seq) {
			t.Errorf("after rebuild, %+v does not find entry %d: %v", c.q, c.seq, got)
		}
	}
	if got := search(audit.Query{RequestID: "req-042", Principal: "alice"}); contains(got, 42) {
		t.Errorf("after rebuild, the forged index row 42 is still found")
	}
}

func text(i int) string { return audit.Index(indexEntry(i)).Text }

// renameInBlock replaces value from of dimension d with to in the count
// block of the chunk starting at start, as someone editing the index
// file could.
func renameInBlock(t *testing.T, db *sql.DB, start int64, d, from, to string) {
	t.Helper()
	var data []byte
	if err := db.QueryRow("SELECT data FROM count_blocks WHERE start = ?", start).Scan(&data); err != nil {
		t.Fatal(err)
	}
	b, err := audit.ParseCountBlock(start, data)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(b.Values(d), from)
	if i < 0 {
		t.Fatalf("block %d has no %s %q: %q", start, d, from, b.Values(d))
	}
	b.SetValue(d, i, to)
	if _, err := db.Exec("UPDATE count_blocks SET data = ? WHERE start = ?", b.AppendBinary(nil), start); err != nil {
		t.Fatal(err)
	}
}

// TestIndexCatchUp: the index lags after a crash (nothing fed), is ahead
// of a log restored from a backup, or is not a database at all; the store
// opens in every case and searches find exactly the log's entries.
func TestIndexCatchUp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	appendEntries(t, st, 10)
	st.Close()

	// Not a database: set aside, rebuilt.
	if err := writeFile(sqlite.IndexPath(path), "this is not an index"); err != nil {
		t.Fatal(err)
	}
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open with a damaged index: %v", err)
	}
	recs, err := st.Search(ctx, audit.Query{Limit: 1000})
	if err != nil || len(recs) != 10 {
		t.Fatalf("Search after a damaged index = %d, %v", len(recs), err)
	}
	st.Close()

	// Ahead of the log: index rows beyond the log's size.
	db, err := sql.Open("sqlite", "file:"+sqlite.IndexPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE index_state SET indexed = 51"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err = st.Search(ctx, audit.Query{Principal: "alice", Limit: 1000})
	if err != nil || len(recs) != 5 {
		t.Fatalf("Search(alice) with an index ahead of the log = %v, %v", seqsOf(recs), err)
	}
	if rep, err := st.CheckIndex(ctx); err != nil || len(rep.Diffs) != 0 {
		t.Fatalf("CheckIndex = %+v, %v", rep, err)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

// TestIndexOldVersion: an index file of an older schema version — 3
// (copied columns with an index each, no longer read) or 6 (a row per
// entry in entry_fields, request ids compared there, decision 046) — is
// dropped and rebuilt from the log when the store opens, so searches,
// aggregates and index check work at once and return what they returned
// before; an index of the current version is kept as it is.
func TestIndexOldVersion(t *testing.T) {
	layouts := []struct {
		version int
		stmts   []string
	}{
		{3, []string{
			`CREATE TABLE entry_fields (seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
				route TEXT NOT NULL, model TEXT NOT NULL, request_id TEXT NOT NULL, approval_id TEXT NOT NULL, action TEXT NOT NULL)`,
			"CREATE INDEX entry_fields_subject ON entry_fields(subject) WHERE subject != ''",
			"INSERT INTO entry_fields VALUES (0, 0, 'request.admitted', 'alice', 'chat', 'llama-3', 'req-000', '', 'allow')",
		}},
		{6, []string{
			"CREATE TABLE entry_fields (seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL, approval_id TEXT NOT NULL, subject TEXT NOT NULL)",
			"CREATE INDEX entry_fields_approval ON entry_fields(approval_id) WHERE approval_id != ''",
			"CREATE VIRTUAL TABLE entry_text USING fts5(body, ids, rules, content='', columnsize=0)",
			"INSERT INTO entry_fields VALUES (0, 'req-000', '', 'alice'), (1, 'req-001', '', 'bob')",
			"INSERT INTO entry_text(rowid, body, ids, rules) VALUES (0, 'word0 quarterly', 'req-000', '656d61696c'), (1, 'word1 quarterly', 'req-001', '')",
		}},
	}
	queries := []audit.Query{{}, {Principal: "alice"}, {RequestID: "req-007"}, {Text: "word11"}, {Principal: "alice", Text: "quarterly"},
		{MaskRule: "email"}, {RequestID: "req-004", Principal: "alice"}, {RequestID: "req-004", Principal: "bob"}, {Desc: true, Text: "quarterly", Start: 3, End: 9}}
	for _, l := range layouts {
		t.Run(fmt.Sprint("version-", l.version), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "audit.db")
			st, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			const n = 12
			appendEntries(t, st, n)
			search := func(st *sqlite.Store) (out [][]int64) {
				t.Helper()
				for _, q := range queries {
					q.Limit = 1000
					recs, err := st.Search(ctx, q)
					if err != nil {
						t.Fatalf("Search(%+v): %v", q, err)
					}
					out = append(out, seqsOf(recs))
				}
				return out
			}
			before := search(st) // the index caught up
			st.Close()

			db, err := sql.Open("sqlite", "file:"+sqlite.IndexPath(path))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			version := func() (v int) {
				t.Helper()
				if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
					t.Fatal(err)
				}
				return v
			}
			current := version()
			if current <= l.version {
				t.Fatalf("index version %d, want more than %d", current, l.version)
			}
			// The old layout, with rows a search of the current version
			// cannot read, and no count blocks.
			stmts := append([]string{"DROP TABLE entry_text", "DROP TABLE entry_approvals", "DROP TABLE index_state", "DELETE FROM count_blocks"},
				append(l.stmts, fmt.Sprintf("PRAGMA user_version = %d", l.version))...)
			for _, stmt := range stmts {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			st, err = sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if v := version(); v != current {
				t.Fatalf("after opening, the index is version %d, want %d", v, current)
			}
			after := search(st)
			for i, q := range queries {
				if !slices.Equal(after[i], before[i]) {
					t.Errorf("Search(%+v) after the upgrade = %v, before %v", q, after[i], before[i])
				}
			}
			if len(before[0]) != n || len(before[2]) != 1 || len(before[6]) != 1 || len(before[7]) != 0 {
				t.Errorf("searches before the upgrade = %v", before)
			}
			var old int
			if err := db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name LIKE 'entry_fields%'").Scan(&old); err != nil || old != 0 {
				t.Errorf("the old entry_fields table or its index is still there (%d, %v)", old, err)
			}
			if rep, err := st.CheckIndex(ctx); err != nil || len(rep.Diffs) != 0 || rep.Indexed != n {
				t.Fatalf("CheckIndex after the upgrade = %+v, %v", rep, err)
			}
		})
	}
}

// TestIndexRequestID: request ids, and subjects beside words, are found
// through the full-text index as exact tokens (keyToken, decision 046), so
// ids that tokenize alike (case, punctuation, hex digits in either case,
// an id that is another's token) do not find each other, and an id with
// no letter or digit is still found.
func TestIndexRequestID(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ids := []string{"req-007", "req.007", "REQ-007", "req-007-x", "--------", "________", "0f3a9c2e5b7d41a8b6c3e9f0a1d2c4b5",
		"0F3A9C2E5B7D41A8B6C3E9F0A1D2C4B5", "r", "x72", "X72", "ab", "6162", "xab"}
	storetest.AppendEach(t, st, len(ids), func(i int) *audit.Entry {
		e := indexEntry(i)
		e.RequestID = ids[i]
		e.Principal.Subject = ids[len(ids)-1-i] // subjects that tokenize alike too
		return e
	})
	for i, id := range ids {
		recs, err := st.Search(ctx, audit.Query{RequestID: id, Limit: 1000})
		if err != nil {
			t.Fatalf("Search(%q): %v", id, err)
		}
		if got := seqsOf(recs); !slices.Equal(got, []int64{int64(i)}) {
			t.Errorf("Search(%q) = %v, want [%d]", id, got, i)
		}
		// A principal beside words is a term of the same query.
		want := int64(len(ids) - 1 - i)
		recs, err = st.Search(ctx, audit.Query{Principal: id, Text: "quarterly", Limit: 1000})
		if err != nil {
			t.Fatalf("Search(principal %q): %v", id, err)
		}
		if got := seqsOf(recs); !slices.Equal(got, []int64{want}) {
			t.Errorf("Search(principal %q, quarterly) = %v, want [%d]", id, got, want)
		}
	}
	// With words too: both must hold.
	for _, tc := range []struct {
		id, text string
		want     []int64
	}{
		{"req-007", "word0", []int64{0}},
		{"req-007", "word1", nil},
		{"req.007", "quarterly", []int64{1}},
	} {
		recs, err := st.Search(ctx, audit.Query{RequestID: tc.id, Text: tc.text, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(recs); !slices.Equal(got, tc.want) {
			t.Errorf("Search(%q, %q) = %v, want %v", tc.id, tc.text, got, tc.want)
		}
	}
	// A word is not found in the ids, nor an id among the words.
	if recs, err := st.Search(ctx, audit.Query{Text: "0f3a9c2e5b7d41a8b6c3e9f0a1d2c4b5"}); err != nil || len(recs) != 0 {
		t.Errorf("Search(text: a request id) = %v, %v; want none", seqsOf(recs), err)
	}
}

// TestIndexIncrementalSearch: an index written in many small increments
// (a search catches it up every few appends, as the gateway's indexer
// does between batches) answers every query exactly as one rebuilt from
// the log in a single pass, and as a scan of the entries says for the
// exact filters. The mask rules and request ids include names a
// tokenizer would split or fold (case, punctuation, non-ASCII, a rule
// that is part of another's name), which must still match exactly
// (decision 039: both are exact tokens of the full-text index).
func TestIndexIncrementalSearch(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rules := []string{"email", "Email", "card", "credit-card", "credit card", "ünï", "iban", "x\"y"}
	ids := []string{"req-1", "REQ-1", "req 1", "0f3a9c2e5b7d41a8b6c3e9f0a1d2c4b5", "--", "ünï", "req-10"}
	const n = 300
	entries := make([]*audit.Entry, n)
	entry := func(i int) *audit.Entry {
		if i%23 == 0 && i > 0 {
			// Catch the index up with what the log holds so far.
			if _, err := st.Search(ctx, audit.Query{Limit: 1}); err != nil {
				t.Fatal(err)
			}
		}
		e := indexEntry(i)
		e.Masking = nil
		for b, r := range rules {
			if (i>>b)&1 == 1 && i%3 != 0 {
				e.Masking = append(e.Masking, audit.MaskAction{Rule: r, Count: 1})
			}
		}
		if i%4 == 0 {
			e.RequestID = ids[(i/4)%len(ids)]
		}
		entries[i] = e
		return e
	}
	storetest.AppendEach(t, st, n, entry)
	var queries []audit.Query
	for _, r := range append(rules, "absent", "crEdit-card", "credit") {
		queries = append(queries, audit.Query{MaskRule: r},
			audit.Query{MaskRule: r, Principal: "bob"},
			audit.Query{MaskRule: r, Text: "quarterly"},
			audit.Query{MaskRule: r, RequestID: "req-1"},
			audit.Query{MaskRule: r, Start: 40, End: 200, Desc: true})
	}
	for _, id := range append(ids, "req-2", "Req-1") {
		queries = append(queries, audit.Query{RequestID: id}, audit.Query{RequestID: id, Text: "word8"})
	}
	queries = append(queries, audit.Query{Text: "quarterly"}, audit.Query{Text: "word17"}, audit.Query{Text: "card"},
		audit.Query{Text: "email"}, audit.Query{Principal: "alice", Text: "word20 quarterly"})
	search := func() [][]int64 {
		t.Helper()
		var out [][]int64
		for _, q := range queries {
			for _, lim := range []int{3, 1000} {
				q.Limit = lim
				recs, err := st.Search(ctx, q)
				if err != nil {
					t.Fatalf("Search(%+v): %v", q, err)
				}
				out = append(out, seqsOf(recs))
			}
		}
		return out
	}
	incremental := search()
	// The exact filters, against the entries themselves.
	for qi, q := range queries {
		if q.Text != "" {
			continue
		}
		var want []int64
		for i, e := range entries {
			e.Seq = int64(i)
			if q.Matches(e) {
				want = append(want, int64(i))
			}
		}
		if q.Desc {
			slices.Reverse(want)
		}
		if got := incremental[2*qi+1]; !slices.Equal(got, want) {
			t.Errorf("Search(%+v) = %v, want %v", q, got, want)
		}
	}
	if got := incremental[2*0+1]; len(got) == 0 {
		t.Fatalf("Search(mask rule %q) found nothing: the test proves nothing", rules[0])
	}
	if _, err := st.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	rebuilt := search()
	for qi := range incremental {
		if !slices.Equal(incremental[qi], rebuilt[qi]) {
			t.Errorf("Search(%+v, limit %d): incremental index %v, rebuilt %v", queries[qi/2], []int{3, 1000}[qi%2], incremental[qi], rebuilt[qi])
		}
	}
	if rep, err := st.CheckIndex(ctx); err != nil || len(rep.Diffs) != 0 {
		t.Fatalf("CheckIndex = %+v, %v", rep, err)
	}
}
