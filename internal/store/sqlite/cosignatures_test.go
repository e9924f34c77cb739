package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

func openCosignatures(t *testing.T) *sqlite.CosignatureStore {
	t.Helper()
	st, err := sqlite.OpenCosignatures(context.Background(), filepath.Join(t.TempDir(), "cosignatures.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestCosignatureConformance(t *testing.T) {
	witnesstest.RunStore(t, func(t *testing.T) witness.Store { return openCosignatures(t) })
}

// TestCosignaturesAppendOnly: the schema refuses to change or remove a
// stored cosignature; a read-only open (warden verify) reads them and
// cannot write.
func TestCosignaturesAppendOnly(t *testing.T) {
	st := openCosignatures(t)
	ctx := context.Background()
	c := witness.Cosignature{Size: 3, Witness: "w", KeyHash: 0xdeadbeef, Time: time.Unix(1700000000, 0).UTC(), Note: []byte("n")}
	if err := st.PutCosignature(ctx, c); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := st.PutCosignature(ctx, c); err == nil {
		t.Fatal("PutCosignature after Close succeeded")
	}
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
	ro, err := sqlite.OpenCosignaturesReadOnly(ctx, st.Path())
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

func TestCosignaturesReadOnlyRefusals(t *testing.T) {
	ctx := context.Background()
	if _, err := sqlite.OpenCosignaturesReadOnly(ctx, filepath.Join(t.TempDir(), "none.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	// Another SQLite file (the approvals store) is not a cosignature store.
	other := filepath.Join(t.TempDir(), "approvals.db")
	a, err := sqlite.OpenApprovals(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := sqlite.OpenCosignaturesReadOnly(ctx, other); err == nil || !strings.Contains(err.Error(), "not a cosignature store") {
		t.Fatalf("approvals file: %v", err)
	}
}
