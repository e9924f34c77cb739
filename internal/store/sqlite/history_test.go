package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog/framelogtest"
)

// TestOpenChecksFrameHistory: a writable Open compares every history
// head of the frame file with the checkpoints table (decision 047): a
// head the table lacks is copied into it, wherever it is; a head that
// differs from the table's row is returned beside it by Checkpoints,
// its Origin naming the frame and the row's naming the table, and the
// row is left as it is; a head the table lacks that cannot be copied
// (no signed note, or a size that is not its frame's end) refuses the
// store. A read-only store returns the same.
func TestOpenChecksFrameHistory(t *testing.T) {
	ctx := context.Background()
	other := func(t *testing.T, size int64) []byte {
		t.Helper()
		skey, _, err := note.GenerateKey(rand.Reader, "forger")
		if err != nil {
			t.Fatal(err)
		}
		s, err := note.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := audit.SignCheckpoint(s, size, tlog.Hash{1}, time.Unix(size, 0))
		if err != nil {
			t.Fatal(err)
		}
		return c.Note
	}
	tests := []struct {
		name string
		// sqlStmt runs on the database (triggers dropped), setHead sets
		// frame 1's head (the checkpoint of size 5) when not nil.
		sqlStmt string
		setHead func(t *testing.T) []byte
		// wantErr: Open refuses with this; else wantFrame: the frame
		// head Checkpoints returns beside the row of size 5 (nil: none).
		wantErr   string
		wantFrame func(heads [][]byte) []byte
		wantRow   func(heads [][]byte) []byte // the table's row of size 5 after Open
	}{
		{
			name:    "honest",
			wantRow: func(h [][]byte) []byte { return h[1] },
		},
		{
			name:    "a middle row deleted: caught up",
			sqlStmt: "DELETE FROM checkpoints WHERE size = 5",
			wantRow: func(h [][]byte) []byte { return h[1] },
		},
		{
			name:    "every row deleted: caught up",
			sqlStmt: "DELETE FROM checkpoints",
			wantRow: func(h [][]byte) []byte { return h[1] },
		},
		{
			name:      "the table's row replaced",
			sqlStmt:   "UPDATE checkpoints SET note = CAST('forged' AS BLOB) WHERE size = 5",
			wantFrame: func(h [][]byte) []byte { return h[1] },
			wantRow:   func([][]byte) []byte { return []byte("forged") },
		},
		{
			name:      "the frame's head replaced, the row intact",
			setHead:   func(t *testing.T) []byte { return other(t, 5) },
			wantFrame: func([][]byte) []byte { return nil }, // the new head, checked below
			wantRow:   func(h [][]byte) []byte { return h[1] },
		},
		{
			name:    "the frame's head not a signed note, the row deleted",
			sqlStmt: "DELETE FROM checkpoints WHERE size = 5",
			setHead: func(*testing.T) []byte { return []byte("not a note") },
			wantErr: "the history head of frame 1: not a signed note",
		},
		{
			name:    "the frame's head of another size, the row deleted",
			sqlStmt: "DELETE FROM checkpoints WHERE size = 5",
			setHead: func(t *testing.T) []byte { return other(t, 6) },
			wantErr: "the history head of frame 1 has size 6, the frame ends at 5",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, st, signer, _ := openFlushStore(t, "test-history")
			path := filepath.Join(dir, "audit.db")
			var hs []tlog.Hash
			var heads [][]byte
			for _, r := range [][2]int64{{0, 3}, {3, 5}, {5, 8}, {8, 10}} {
				b := flushBatch(t, signer, &hs, r[0], r[1])
				if err := st.Append(ctx, b); err != nil {
					t.Fatal(err)
				}
				heads = append(heads, b.Head.Note)
			}
			st.Close()
			var newHead []byte
			if tc.setHead != nil {
				newHead = tc.setHead(t)
				f, err := framelogtest.Read(FramesPath(path))
				if err != nil {
					t.Fatal(err)
				}
				if err := f.SetHead(1, newHead, true); err != nil {
					t.Fatal(err)
				}
				if err := f.Write(FramesPath(path)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.sqlStmt != "" {
				db, err := sql.Open("sqlite", "file:"+path)
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range []string{"DROP TRIGGER checkpoints_no_update", "DROP TRIGGER checkpoints_no_delete", tc.sqlStmt} {
					if _, err := db.Exec(q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				db.Close()
			}
			st, err := Open(ctx, path)
			if tc.wantErr != "" {
				if err == nil {
					st.Close()
				}
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ro, err := OpenReadOnly(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			var row []byte
			if err := st.r.QueryRowContext(ctx, "SELECT note FROM checkpoints WHERE size = 5").Scan(&row); err != nil {
				t.Fatalf("the table's row of size 5: %v", err)
			}
			if want := tc.wantRow(heads); !bytes.Equal(row, want) {
				t.Fatalf("the table's row of size 5 = %q, want %q", row, want)
			}
			var wantFrame []byte
			if tc.wantFrame != nil {
				if wantFrame = tc.wantFrame(heads); wantFrame == nil {
					wantFrame = newHead
				}
			}
			for name, s := range map[string]*Store{"writable": st, "read-only": ro} {
				cps, err := s.Checkpoints(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var at5 []audit.Checkpoint
				for _, c := range cps {
					if c.Size == 5 {
						at5 = append(at5, c)
					}
				}
				if wantFrame == nil {
					if len(cps) != 4 || len(at5) != 1 || at5[0].Origin != "" {
						t.Fatalf("%s: Checkpoints = %d of them, %d of size 5 (%+v); want 4, one of size 5, no Origin", name, len(cps), len(at5), at5)
					}
					continue
				}
				if len(cps) != 5 || len(at5) != 2 || !bytes.Equal(at5[0].Note, row) || !bytes.Equal(at5[1].Note, wantFrame) {
					t.Fatalf("%s: Checkpoints = %d of them, of size 5: %+v; want 5, the table's row then the frame's head", name, len(cps), at5)
				}
				if w := "the checkpoints table's row; the history head in frame 1 of audit.db.frames differs"; at5[0].Origin != w {
					t.Fatalf("%s: the row's Origin = %q, want %q", name, at5[0].Origin, w)
				}
				if w := "the history head in frame 1 of audit.db.frames; the checkpoints table holds another note of that size"; at5[1].Origin != w {
					t.Fatalf("%s: the frame head's Origin = %q, want %q", name, at5[1].Origin, w)
				}
			}
			st.Close()
		})
	}
}
