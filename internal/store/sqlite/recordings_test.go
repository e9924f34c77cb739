package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/recording/recordingtest"
)

func openCatalog(t *testing.T, path string) *RecordingCatalog {
	t.Helper()
	c, err := OpenRecordingCatalog(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRecordingCatalogConformance(t *testing.T) {
	recordingtest.RunCatalog(t, func(t *testing.T) recording.Catalog {
		return openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	})
}

// TestRecordingCatalogEraseLeavesNoKeyBytes: after an erasure, the wrapped
// key's bytes appear nowhere in the database file or its write-ahead log
// (secure_delete and the truncating checkpoint).
func TestRecordingCatalogEraseLeavesNoKeyBytes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.db")
	c := openCatalog(t, path)
	ctx := context.Background()
	var keys [][]byte
	for i := range 20 {
		e := recordingtest.Entry(i)
		e.WrappedKey = make([]byte, 60)
		rand.Read(e.WrappedKey)
		keys = append(keys, e.WrappedKey)
		if err := c.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// Fold the WAL into the main file first, so the key is on a page of
	// the database file itself before it is erased.
	if _, err := c.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	if !fileHolds(t, dir, keys[7]) {
		t.Fatal("test broken: the key is not in the files before erasure")
	}
	if _, err := c.Erase(ctx, recordingtest.Entry(7).ID, recording.Erasure{At: time.Now(), By: "t", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if fileHolds(t, dir, keys[7]) {
		t.Error("the erased wrapped key is still in the catalogue's files")
	}
	if !fileHolds(t, dir, keys[8]) {
		t.Error("a key that was not erased is gone")
	}
}

func fileHolds(t *testing.T, dir string, b []byte) bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, b) {
			return true
		}
	}
	return false
}

func TestRecordingCatalogRefusesAuditFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if c, err := OpenRecordingCatalog(context.Background(), path); err == nil {
		c.Close()
		t.Fatal("the recording catalogue opened the audit log's file")
	}
}

// TestInsertRows: a batch is cut into statements of prepared row counts
// (powers of two up to putRows) that add up to the batch.
func TestInsertRows(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{1, []int{1}},
		{2, []int{2}},
		{3, []int{2, 1}},
		{34, []int{32, 2}},
		{64, []int{64}},
		{150, []int{64, 64, 16, 4, 2}},
	} {
		var got []int
		for left := tc.n; left > 0; {
			k := insertRows(left)
			got = append(got, k)
			left -= k
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("insertRows over %d rows: %v, want %v", tc.n, got, tc.want)
		}
	}
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	for n := 1; n <= putRows; n *= 2 {
		if c.inserts[n] == nil {
			t.Errorf("no prepared insert of %d rows", n)
		}
	}
}

// TestRecordingCatalogHasNoRequestIndex: no index on the random request
// id (one random page per recording at every commit); a catalogue made
// with one loses it when opened.
func TestRecordingCatalogHasNoRequestIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path)
	if _, err := c.w.Exec("CREATE INDEX recordings_request ON recordings(request_id)"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = openCatalog(t, path)
	rows, err := c.r.Query("SELECT name FROM pragma_index_list('recordings')")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
		var cols []string
		crows, err := c.r.Query("SELECT name FROM pragma_index_info(?)", n)
		if err != nil {
			t.Fatal(err)
		}
		for crows.Next() {
			var col string
			crows.Scan(&col)
			cols = append(cols, col)
		}
		crows.Close()
		if len(cols) > 0 && cols[0] == "request_id" {
			t.Errorf("index %s leads with request_id", n)
		}
	}
	if len(names) == 0 {
		t.Error("no indexes listed at all")
	}
}
