package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

func TestCosignatureConformance(t *testing.T) {
	witnesstest.RunStore(t, func(t *testing.T) witness.Store { return openTemp(t) })
}

// TestCosignaturesAppendOnly: the schema refuses to change or remove a
// stored cosignature, and a read-only open (warden verify) reads them.
func TestCosignaturesAppendOnly(t *testing.T) {
	st := openTemp(t)
	ctx := context.Background()
	c := witness.Cosignature{Size: 3, Witness: "w", KeyHash: 0xdeadbeef, Time: time.Unix(1700000000, 0).UTC(), Note: []byte("n")}
	if err := st.PutCosignature(ctx, c); err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+st.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{"UPDATE cosignatures SET note = 'x'", "DELETE FROM cosignatures"} {
		if _, err := db.Exec(stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want the append-only refusal", stmt, err)
		}
	}
	ro, err := sqlite.OpenReadOnly(ctx, st.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rows, err := ro.Cosignatures(ctx, "", 0, 10)
	if err != nil || len(rows) != 1 || rows[0].KeyHash != 0xdeadbeef || !rows[0].Time.Equal(c.Time) {
		t.Fatalf("read-only: %+v %v", rows, err)
	}
	if err := ro.PutCosignature(ctx, c); err == nil {
		t.Fatal("PutCosignature on a read-only store succeeded")
	}
}

// TestCosignaturesOldStore: a store written before witnessing existed
// (no cosignatures table) reads as having none when opened read-only.
func TestCosignaturesOldStore(t *testing.T) {
	st := openTemp(t)
	st.Close()
	db, err := sql.Open("sqlite", "file:"+st.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DROP TRIGGER cosignatures_no_update; DROP TRIGGER cosignatures_no_delete; DROP TABLE cosignatures"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ro, err := sqlite.OpenReadOnly(context.Background(), filepath.Clean(st.Path()))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rows, err := ro.Cosignatures(context.Background(), "", 0, 10)
	if err != nil || len(rows) != 0 {
		t.Fatalf("old store: %v %v", rows, err)
	}
}
