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

// TestIndexTamper edits only the search index — a copied column, a row,
// the mask rules and the words of the full-text index — so that searches silently
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
	for _, stmt := range []string{
		"UPDATE entry_fields SET request_id = 'req-x', subject = 'mallory' WHERE seq = 4",                         // copied columns
		"DELETE FROM entry_fields WHERE seq = 6",                                                                  // a whole row
		"INSERT INTO entry_text(entry_text, rowid, rules) VALUES ('delete', 10, '656d61696c')",                    // mask rule email (its hex), from the full text
		"INSERT INTO entry_text(rowid, rules) VALUES (3, '73736e')",                                               // a rule (ssn) the entry lacks
		"INSERT INTO entry_text(entry_text, rowid, body, ids) VALUES ('delete', 8, '" + text(8) + "', 'req-008')", // full text
		"INSERT INTO entry_fields VALUES (42, 'req-042', '', 'alice')",                                            // not in the log
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
		"4 altered fields request_id",
		"6 missing fields",
		"8 missing text word8",
		"10 missing mask_rules email",
		"42 extra fields",
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
	if _, err := db.Exec("INSERT INTO entry_fields VALUES (50, 'req-050', '', 'alice')"); err != nil {
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

// TestIndexOldVersion: an index file of schema version 3 (copied columns
// with an index each, no longer read) is dropped and rebuilt from the log
// when the store opens, so searches, aggregates and index check work at
// once; an index of the current version is kept as it is.
func TestIndexOldVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	appendEntries(t, st, n)
	if _, err := st.Search(ctx, audit.Query{}); err != nil { // index caught up
		t.Fatal(err)
	}
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
	if current < 4 {
		t.Fatalf("index version %d, want at least 4", current)
	}
	// The version-3 layout, with rows a search of version 4 cannot read.
	for _, stmt := range []string{
		"DROP TABLE entry_fields",
		`CREATE TABLE entry_fields (seq INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
			route TEXT NOT NULL, model TEXT NOT NULL, request_id TEXT NOT NULL, approval_id TEXT NOT NULL, action TEXT NOT NULL)`,
		"CREATE INDEX entry_fields_subject ON entry_fields(subject) WHERE subject != ''",
		"INSERT INTO entry_fields VALUES (0, 0, 'request.admitted', 'alice', 'chat', 'llama-3', 'req-000', '', 'allow')",
		"DELETE FROM count_blocks",
		"PRAGMA user_version = 3",
	} {
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
	for _, q := range []audit.Query{{Limit: 1000}, {Principal: "alice", Limit: 1000}, {RequestID: "req-007"}, {Text: "word11"}} {
		recs, err := st.Search(ctx, q)
		if err != nil {
			t.Fatalf("Search(%+v): %v", q, err)
		}
		want := map[string]int{"": n, "alice": n / 2, "req-007": 1, "word11": 1}[q.Principal+q.RequestID+q.Text]
		if len(recs) != want {
			t.Errorf("Search(%+v) after the upgrade = %v, want %d records", q, seqsOf(recs), want)
		}
	}
	var cols int
	if err := db.QueryRow("SELECT count(*) FROM pragma_table_info('entry_fields')").Scan(&cols); err != nil || cols != 4 {
		t.Errorf("entry_fields has %d columns (%v), want 4", cols, err)
	}
	var subjectIndex int
	if err := db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'entry_fields_subject'").Scan(&subjectIndex); err != nil || subjectIndex != 0 {
		t.Errorf("the version-3 subject index is still there (%d, %v)", subjectIndex, err)
	}
	if rep, err := st.CheckIndex(ctx); err != nil || len(rep.Diffs) != 0 || rep.Indexed != n {
		t.Fatalf("CheckIndex after the upgrade = %+v, %v", rep, err)
	}
}

// TestIndexRequestID: request ids are found through the full-text index
// (decision 035) and compared in their row, so ids that tokenize alike
// (case, punctuation) do not find each other, and an id with no letter or
// digit (nothing to look up by) is still found.
func TestIndexRequestID(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ids := []string{"req-007", "req.007", "REQ-007", "req-007-x", "--------", "________", "0f3a9c2e5b7d41a8b6c3e9f0a1d2c4b5"}
	storetest.AppendEach(t, st, len(ids), func(i int) *audit.Entry {
		e := indexEntry(i)
		e.RequestID = ids[i]
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
