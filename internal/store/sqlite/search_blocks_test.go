package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// blockEntry is entry i of TestSearchBlocks: principals, routes, models,
// kinds and actions in cycles of different lengths (so combinations are
// spread over chunks), some rare values, times out of sequence order,
// and two entries whose time a count block cannot hold (beyond int64
// nanoseconds): their chunk's block stops short of them.
func blockEntry(i int) *audit.Entry {
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	e := &audit.Entry{
		V: audit.SchemaVersion, ID: fmt.Sprintf("b-%03d", i),
		Kind:      []string{audit.KindRequestAdmitted, audit.KindRequestCompleted, audit.KindRequestDenied}[i%3],
		Time:      t0.Add(time.Duration(i)*time.Minute - time.Duration(i%4)*3*time.Minute),
		RequestID: fmt.Sprintf("r-%03d", i/2),
		Principal: &identity.Principal{Issuer: "https://idp", Subject: []string{"alice", "bob", "carol", "dave", "erin"}[i%5], Kind: "user"},
		Route:     []string{"chat", "embed"}[i%2], Model: []string{"gpt-4o", "llama-3", "mistral", "phi"}[i%4],
		Decision: &audit.Decision{Action: []string{"allow", "deny"}[i%7/6], Rule: "r"},
		Params:   map[string]any{"note": fmt.Sprintf("word%d", i%10)},
	}
	switch i {
	case 37, 150:
		e.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) // not int64 nanoseconds
	case 201:
		e.Principal.Subject, e.Route, e.Model = "zoe", "admin", "rare" // in one chunk only
	case 250:
		e.Principal = nil
	}
	return e
}

// TestSearchBlocks: kind, principal, route, model, action and time are
// answered from the count blocks (decision 027). Over many small chunks,
// each query finds exactly what a scan of the log finds, in order and up
// to its limit, ascending and descending, alone and with the filters
// answered by other tables; and still does after blocks are deleted,
// garbled or cut short (their entries become candidates that Search
// checks against the log), which index check reports.
func TestSearchBlocks(t *testing.T) {
	defer func(c int64) { audit.CountChunk = c }(audit.CountChunk)
	audit.CountChunk = 16
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 300
	storetest.AppendEach(t, st, n, blockEntry)
	var entries []*audit.Entry
	for i := range n {
		e := blockEntry(i)
		e.Seq = int64(i)
		entries = append(entries, e)
	}
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	queries := []audit.Query{
		{Principal: "carol"}, {Principal: "zoe"}, {Principal: "nobody"}, {Route: "embed"}, {Route: "admin"},
		{Model: "phi"}, {Model: "rare"}, {Kind: audit.KindRequestDenied}, {Action: "deny"},
		{Principal: "alice", Model: "mistral"}, {Principal: "bob", Route: "chat", Kind: audit.KindRequestCompleted, Action: "allow"},
		{Principal: "alice", Route: "chat"}, // never both: i%5 == 0 and i%2 == 0 … only when i%10 == 0
		{From: at(40), To: at(90)}, {From: at(100)}, {To: at(30)}, {From: at(40), To: at(41), Principal: "erin"},
		{From: at(-1000), To: at(100000)}, {From: at(295), To: at(296).Add(time.Nanosecond / 2)},
		{Principal: "dave", Text: "word3"}, {Principal: "dave", Text: "word8"}, {Model: "gpt-4o", RequestID: "r-010"},
		{Kind: audit.KindRequestAdmitted, RequestID: "r-018"}, {Principal: "alice", Text: "word0", From: at(50)},
		{Start: 100, End: 140, Route: "chat"}, {Start: 290, Principal: "alice"}, {End: 20, Model: "llama-3"},
	}
	check := func(stage string) {
		t.Helper()
		for _, base := range queries {
			for _, v := range []struct {
				desc  bool
				limit int
			}{{false, 1000}, {true, 1000}, {false, 3}, {true, 5}, {true, 1}} {
				q := base
				q.Desc, q.Limit = v.desc, v.limit
				var want []int64
				for _, e := range entries {
					if q.Matches(e) && textHas(e, q.Text) {
						want = append(want, e.Seq)
					}
				}
				if q.Desc {
					slices.Reverse(want)
				}
				want = want[:min(len(want), q.Limit)]
				recs, err := st.Search(ctx, q)
				if err != nil {
					t.Fatalf("%s: Search(%+v): %v", stage, q, err)
				}
				if got := seqsOf(recs); !slices.Equal(got, want) {
					t.Errorf("%s: Search(%+v) = %v, want %v", stage, q, got, want)
				}
			}
		}
	}
	check("fresh index")
	if rep, err := st.CheckIndex(ctx); err != nil || len(rep.Diffs) != 0 {
		t.Fatalf("CheckIndex = %+v, %v", rep, err)
	}

	db, err := sql.Open("sqlite", "file:"+sqlite.IndexPath(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"DELETE FROM count_blocks WHERE start = 48",                 // a chunk without a block
		"UPDATE count_blocks SET data = x'0102' WHERE start = 96",   // malformed
		"UPDATE count_blocks SET data = x'' WHERE start = 288",      // the unfilled chunk's, malformed
		"UPDATE count_blocks SET n = 3 WHERE start = 160",           // stops short (row says)
		"DELETE FROM count_blocks WHERE start = 192 OR start = 208", // two in a row
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	check("damaged blocks")
	rep, err := st.CheckIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rep.Diffs {
		got = append(got, fmt.Sprintf("%d %s %s", d.Seq, d.Kind, d.Part))
	}
	want := []string{"48 missing counts", "96 altered counts", "160 altered counts", "192 missing counts", "208 missing counts", "288 altered counts"}
	if !slices.Equal(got, want) {
		t.Errorf("CheckIndex of damaged blocks = %q, want %q", got, want)
	}
	if _, err := st.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	check("rebuilt")

	// The values listed beside a block (read before it, to pass it over)
	// are checked too, in whole and unfilled chunks.
	for _, stmt := range []string{
		"UPDATE count_blocks SET vals = x'00' WHERE start = 240",
		"UPDATE count_blocks SET vals = vals || x'00' WHERE start = 288",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if recs, err := st.Search(ctx, audit.Query{Principal: "alice", Start: 240, End: 256}); err != nil || len(recs) != 0 {
		t.Errorf("Search with the values of block 240 cleared = %v, %v; want nothing (the edit hides them)", seqsOf(recs), err)
	}
	rep, err = st.CheckIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, d := range rep.Diffs {
		got = append(got, fmt.Sprintf("%d %s %s", d.Seq, d.Kind, d.Part))
	}
	if want := []string{"240 altered counts", "288 altered counts"}; !slices.Equal(got, want) {
		t.Errorf("CheckIndex of edited values = %q, want %q", got, want)
	}
}

// textHas reports whether e's index text holds every word of text (the
// test's words are single tokens).
func textHas(e *audit.Entry, text string) bool {
	if text == "" {
		return true
	}
	return slices.Contains(splitWords(audit.Index(e).Text), text)
}

func splitWords(s string) []string {
	var out []string
	word := []rune{}
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			word = append(word, r)
			continue
		}
		if len(word) > 0 {
			out = append(out, string(word))
			word = word[:0]
		}
	}
	if len(word) > 0 {
		out = append(out, string(word))
	}
	return out
}

// TestSearchTextPhrases: a word the tokenizer splits (an e-mail address,
// an IBAN with its groups, a host name) is searched as a phrase of its
// tokens: found where they stand together in that order, not where the
// same tokens stand apart or in another order, alone or with a filter
// answered by the count blocks.
func TestSearchTextPhrases(t *testing.T) {
	ctx := context.Background()
	texts := []string{
		"contact alice@example.com about it",       // 0
		"alice wrote to example dot com",           // 1: the tokens apart
		"com.example@alice",                        // 2: another order
		"IBAN DE89-3704-0044-0532-0130-00 on file", // 3
		"0044 and 3704 apart, de89",                // 4
		"Alice@Example.COM in capitals",            // 5
		"alice example.com",                        // 6: adjacent tokens, the same phrase
		"résumé from Zoë at api.internal.example",  // 7
	}
	entry := func(i int) *audit.Entry {
		return &audit.Entry{V: audit.SchemaVersion, Kind: audit.KindRequestAdmitted, ID: fmt.Sprintf("t-%d", i),
			Time: time.Date(2026, 11, 30, 12, 0, i, 0, time.UTC), RequestID: fmt.Sprintf("req-%d", i),
			Principal: &identity.Principal{Issuer: "i", Subject: []string{"alice", "bob"}[i%2]},
			Params:    map[string]any{"m": texts[i]}}
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.AppendEach(t, st, len(texts), entry)
	for _, c := range []struct {
		q    audit.Query
		want []int64
	}{
		{audit.Query{Text: "alice@example.com"}, []int64{0, 5, 6}},
		{audit.Query{Text: "ALICE@EXAMPLE.COM"}, []int64{0, 5, 6}},
		{audit.Query{Text: "alice@example.com", Principal: "alice"}, []int64{0, 6}},
		{audit.Query{Text: "example.com@alice"}, nil},
		{audit.Query{Text: "com.example@alice"}, []int64{2}},
		{audit.Query{Text: "DE89-3704-0044-0532-0130-00"}, []int64{3}},
		{audit.Query{Text: "de89 3704"}, []int64{3, 4}}, // two words: ANDed
		{audit.Query{Text: "3704-0044"}, []int64{3}},
		{audit.Query{Text: "0044-3704"}, nil},
		{audit.Query{Text: "resume zoe"}, []int64{7}}, // diacritics removed
		{audit.Query{Text: "internal.example"}, []int64{7}},
		{audit.Query{Text: "example.internal"}, nil},
	} {
		c.q.Limit = 100
		recs, err := st.Search(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := seqsOf(recs); !slices.Equal(got, c.want) {
			t.Errorf("Search(%q, principal %q) = %v, want %v", c.q.Text, c.q.Principal, got, c.want)
		}
	}
}
