package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
)

// TestIndexTamper: edits of entry_index alone (a copied column, a row,
// the mask rules, the full text) hide entries from searches; CheckIndex
// reports each one and RebuildIndex makes searches whole again.
func TestIndexTamper(t *testing.T) {
	schema := newSchema(t)
	st := openStore(t, schema)
	ctx := context.Background()
	const n = 20
	storetest.AppendEach(t, st, n, storetest.IndexEntry)
	search := func(q audit.Query) []int64 {
		t.Helper()
		q.Limit = 1000
		recs, err := st.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range recs {
			out = append(out, r.Seq)
		}
		return out
	}
	has := func(s []int64, x int64) bool {
		for _, y := range s {
			if y == x {
				return true
			}
		}
		return false
	}
	if got := search(audit.Query{Principal: "alice"}); len(got) != n/2 {
		t.Fatalf("Search(alice) = %v", got)
	}
	if rep, err := st.CheckIndex(ctx); err != nil || len(rep.Diffs) != 0 || rep.Indexed != n {
		t.Fatalf("CheckIndex of an untouched index = %+v, %v", rep, err)
	}
	c := rawConn(t, schema)
	for _, stmt := range []string{
		"UPDATE entry_index SET subject = 'mallory' WHERE seq = 4",
		"DELETE FROM entry_index WHERE seq = 6",
		"UPDATE entry_index SET mask_rules = '{}' WHERE seq = 10",
		"UPDATE entry_index SET search_text = replace(search_text, 'word8', '') WHERE seq = 8",
	} {
		if _, err := c.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	cases := []struct {
		q   audit.Query
		seq int64
	}{
		{audit.Query{Principal: "alice"}, 4},
		{audit.Query{RequestID: "req-006"}, 6},
		{audit.Query{MaskRule: "email"}, 10},
		{audit.Query{Text: "word8"}, 8},
	}
	for _, c := range cases {
		if got := search(c.q); has(got, c.seq) {
			t.Fatalf("tampering did not hide entry %d from %+v: %v", c.seq, c.q, got)
		}
	}
	// A row beyond the log (the next search would see the index ahead of
	// the log and rebuild it: so after the searches). The store's
	// background indexer catches up every IndexerDelay and would rebuild
	// it too, before CheckIndex could see the row (CI caught that race):
	// holding the indexers' advisory lock, which the rebuild's reset
	// takes, keeps it out until CheckIndex is done.
	lock := lockKey(schema, "index")
	if _, err := c.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO entry_index SELECT 42, time_ns, kind, subject, route, model, request_id, approval_id, action, mask_rules, search_text FROM entry_index WHERE seq = 2"); err != nil {
		t.Fatal(err)
	}
	rep, err := st.CheckIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "SELECT pg_advisory_unlock($1)", lock); err != nil {
		t.Fatal(err)
	}
	// One table here: a deleted or added row is also text (and rules).
	want := []string{"4 altered fields subject", "6 missing fields", "6 missing text word6", "8 missing text word8",
		"10 missing mask_rules email", "42 extra fields", "42 extra text word2"}
	if len(rep.Diffs) != len(want) {
		t.Errorf("CheckIndex found %d differences, want %d: %+v", len(rep.Diffs), len(want), rep.Diffs)
	}
	for i, w := range want {
		if i >= len(rep.Diffs) {
			break
		}
		d, f := rep.Diffs[i], strings.Fields(w)
		if got := fmt.Sprintf("%d %s %s", d.Seq, d.Kind, d.Part); got != strings.Join(f[:3], " ") || (len(f) > 3 && !strings.Contains(d.Detail, f[3])) {
			t.Errorf("difference %d = %+v, want %q", i, d, w)
		}
	}
	if got, err := st.RebuildIndex(ctx); err != nil || got != n {
		t.Fatalf("RebuildIndex = %d, %v", got, err)
	}
	if rep, err := st.CheckIndex(ctx); err != nil || len(rep.Diffs) != 0 {
		t.Fatalf("CheckIndex after RebuildIndex = %+v, %v", rep, err)
	}
	for _, c := range cases {
		if got := search(c.q); !has(got, c.seq) {
			t.Errorf("after rebuild, %+v does not find entry %d: %v", c.q, c.seq, got)
		}
	}
}
