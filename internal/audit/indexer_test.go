package audit_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// TestIndexerOverflow: entries the indexer could not keep in memory are
// read back from the log, so a search still finds every one of them.
func TestIndexerOverflow(t *testing.T) {
	old := audit.IndexerMaxPending
	audit.IndexerMaxPending = 4
	t.Cleanup(func() { audit.IndexerMaxPending = old })
	e := newEnv(t, nil)
	appendN(t, e.log, 50)
	got, err := e.log.Search(context.Background(), audit.Query{Kind: request(0).Kind, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("search found %d of 50 entries", len(got))
	}
	for i, en := range got {
		if en.RequestID != request(i).RequestID {
			t.Fatalf("result %d is %s, want %s", i, en.RequestID, request(i).RequestID)
		}
	}
}

// TestSearchIgnoresAlteredRows: an index row altered to match a query
// does not put its entry into the results (the entry from the log does
// not match).
func TestSearchIgnoresAlteredRows(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	refs := appendN(t, e.log, 3)
	if _, err := e.log.Search(ctx, audit.Query{}); err != nil { // index caught up
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+sqlite.IndexPath(e.cfg.Path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Request ids are exact terms of the full text (decision 046): the
	// entry gets a second one, forged (x and the hex of its bytes).
	if _, err := db.Exec("INSERT INTO entry_text(rowid, ids) VALUES (?, 'x' || lower(hex('forged')))", refs[1].Seq); err != nil {
		t.Fatal(err)
	}
	// Principal and model are searched in the count block (decision 027):
	// every entry's subject becomes mallory, its model forged.
	var data []byte
	if err := db.QueryRow("SELECT data FROM count_blocks WHERE start = 0").Scan(&data); err != nil {
		t.Fatal(err)
	}
	b, err := audit.ParseCountBlock(0, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ dim, v string }{{audit.ByPrincipal, "mallory"}, {audit.ByModel, "forged"}} {
		for i := range b.Values(d.dim) {
			b.SetValue(d.dim, i, d.v)
		}
	}
	if _, err := db.Exec("UPDATE count_blocks SET data = ? WHERE start = 0", b.AppendBinary(nil)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []audit.Query{{Principal: "mallory"}, {Model: "forged"}, {RequestID: "forged"}, {Principal: "mallory", RequestID: request(1).RequestID}} {
		got, err := e.log.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("Search(%+v) returned %d entries the log says do not match", q, len(got))
		}
	}
}
