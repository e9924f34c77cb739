package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
)

// TestIndexOpenMarker: the index is never fsynced (synchronous=OFF), so
// opening it tells a process that ended (marker of this boot: the OS had
// every write, the index is kept) from a machine that went down with the
// index open (marker of another boot: set aside and rebuilt from the
// log, since its damage may not show). A clean close leaves no marker.
// The index is edited before each reopen (a request id the log does not
// have) to see whether it was kept or rebuilt.
func TestIndexOpenMarker(t *testing.T) {
	if bootID() == "" {
		t.Skip("no boot id here: every marker counts as a power loss")
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		marker  string // written after a clean close; "" none
		rebuilt bool
	}{
		{"clean close", "", false},
		{"process ended", fmt.Sprintf("boot %s\npid 1\n", bootID()), false},
		{"machine went down", "boot 00000000-another-boot\npid 1\n", true},
		{"marker without a boot id", "pid 1\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			ixPath := IndexPath(path)
			st, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			const n = 10
			storetest.AppendEach(t, st, n, storetest.IndexEntry)
			if _, err := st.Search(ctx, audit.Query{}); err != nil { // caught up
				t.Fatal(err)
			}
			if _, err := os.Stat(ixPath + markerSuffix); err != nil {
				t.Fatalf("no marker while the index is open: %v", err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(ixPath + markerSuffix); !os.IsNotExist(err) {
				t.Fatalf("marker after a clean close: %v", err)
			}

			db, err := sql.Open("sqlite", "file:"+ixPath)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("INSERT INTO entry_text(entry_text, rowid, ids) VALUES ('delete', 4, ?)", keyToken("req-004")); err != nil {
				t.Fatal(err)
			}
			db.Close()
			if tc.marker != "" {
				if err := os.WriteFile(ixPath+markerSuffix, []byte(tc.marker), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			st, err = Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			recs, err := st.Search(ctx, audit.Query{RequestID: "req-004"})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(recs) == 1; got != tc.rebuilt {
				t.Errorf("Search(req-004) found %d records: rebuilt = %v, want %v", len(recs), got, tc.rebuilt)
			}
			aside, _ := filepath.Glob(ixPath + ".broken-*")
			if (len(aside) > 0) != tc.rebuilt {
				t.Errorf("set aside: %v, want rebuilt = %v", aside, tc.rebuilt)
			}
			rep, err := st.CheckIndex(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if clean := len(rep.Diffs) == 0; clean != tc.rebuilt {
				t.Errorf("CheckIndex: %d differences, want clean = %v", len(rep.Diffs), tc.rebuilt)
			}
			if all, err := st.Search(ctx, audit.Query{Limit: 1000}); err != nil || len(all) != n {
				t.Errorf("Search() = %d records, %v; want %d", len(all), err, n)
			}
		})
	}
}
