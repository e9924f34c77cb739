package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

func openTemp(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) audit.Store { return openTemp(t) })
}

// TestAppendOnlyTriggers checks that the schema itself refuses UPDATE and
// DELETE on every table that holds evidence: the entries and hashes
// tables of a store migrated from schema version 2 (their read-only
// prefix; a new store writes its records to the frame file), the
// checkpoints and the frames_base marker.
func TestAppendOnlyTriggers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	old, err := sqlite.OpenV2ForTest(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e := &audit.Entry{V: 1, Kind: audit.KindGatewayStarted, ID: "x", Masking: []audit.MaskAction{{Rule: "email", Count: 1}}}
	data, err := audit.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	h := tlog.RecordHash(data)
	if err := old.Append(ctx, audit.Batch{Records: []audit.Record{{Seq: 0, Data: data, Entry: e}}, HashStart: 0, Hashes: []tlog.Hash{h}}); err != nil {
		t.Fatal(err)
	}
	old.Close()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutCheckpoint(ctx, audit.Checkpoint{Size: 1, Note: []byte("n")}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+st.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"UPDATE entries SET data = x'00'",
		"DELETE FROM entries",
		"UPDATE hashes SET hash = x'00'",
		"DELETE FROM hashes",
		"UPDATE checkpoints SET note = 'forged'",
		"DELETE FROM checkpoints",
		"UPDATE frames_base SET base = 0",
		"DELETE FROM frames_base",
	} {
		_, err := db.Exec(stmt)
		if err == nil || !(strings.Contains(err.Error(), "append-only") || strings.Contains(err.Error(), "written once")) {
			t.Errorf("%s: err = %v, want append-only refusal", stmt, err)
		}
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	if _, err := sqlite.OpenReadOnly(ctx, path); err == nil {
		t.Fatal("OpenReadOnly of a missing file succeeded")
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e := &audit.Entry{V: 1, Kind: audit.KindGatewayStarted, ID: "x"}
	data, _ := audit.Marshal(e)
	if err := st.Append(ctx, audit.Batch{Records: []audit.Record{{Seq: 0, Data: data, Entry: e}}, Hashes: []tlog.Hash{tlog.RecordHash(data)}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if n, err := ro.Size(ctx); err != nil || n != 1 {
		t.Fatalf("Size = %d, %v", n, err)
	}
	if err := ro.Append(ctx, audit.Batch{Records: []audit.Record{{Seq: 1, Data: data, Entry: e}}, HashStart: 1, Hashes: []tlog.Hash{{}, {}}}); err == nil {
		t.Fatal("Append on a read-only store succeeded")
	}
	if err := ro.PutCheckpoint(ctx, audit.Checkpoint{Size: 1, Note: []byte("x")}); err == nil {
		t.Fatal("PutCheckpoint on a read-only store succeeded")
	}
}
