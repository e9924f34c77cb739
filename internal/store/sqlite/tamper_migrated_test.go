package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog/framelogtest"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// The tamper suite on a migrated store (decision 042): records [0, base)
// stay in the entries and hashes tables a version-2 binary wrote, the
// rest are in the frame file. The old SQL attacks on the tables still
// fail verification, and so do the frame attacks above the base (the
// frames' tree continues the tables').
//
// It lives here, not with internal/audit's tamper suite, because
// OpenV2ForTest (the version-2 append path) is this package's test hook.

// migratedStore writes 40 entries with the version-2 path, opens the
// store with Open (the migration) and appends 30 more; it returns the
// frames' base and the store's size, the store closed.
func migratedStore(t *testing.T, m *migrateEnv) (base, size int64) {
	t.Helper()
	ctx := context.Background()
	old, err := sqlite.OpenV2ForTest(ctx, m.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	m.appendLog(t, old, 40)
	if base, err = old.Size(ctx); err != nil {
		t.Fatal(err)
	}
	old.Close()
	st, err := sqlite.Open(ctx, m.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	m.appendLog(t, st, 30)
	if size, err = st.Size(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return base, size
}

func execSQL(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

const dropTableTriggers = `DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;
DROP TRIGGER hashes_no_update; DROP TRIGGER hashes_no_delete;`

// rehashTables recomputes the hashes table from the (edited) entries
// table, as an attacker who knows the algorithm but not the key would.
func rehashTables(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT data FROM entries ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	var datas [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		datas = append(datas, b)
	}
	rows.Close()
	var all []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = all[x]
		}
		return out, nil
	})
	for n, d := range datas {
		hs, err := tlog.StoredHashes(int64(n), d, r)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, hs...)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range all {
		if _, err := tx.Exec("UPDATE hashes SET hash = ? WHERE idx = ?", h[:], i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// tableHashes reads the hashes table of the closed store at path, for
// framelogtest's Prefix.
func tableHashes(t *testing.T, path string) tlog.HashReader {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for k, x := range idx {
			var b []byte
			if err := db.QueryRow("SELECT hash FROM hashes WHERE idx = ?", x).Scan(&b); err != nil {
				return nil, fmt.Errorf("hash %d: %w", x, err)
			}
			copy(out[k][:], b)
		}
		return out, nil
	})
}

func editMigratedFrames(t *testing.T, path string, edit func(f *framelogtest.File) error) {
	t.Helper()
	f, err := framelogtest.Read(sqlite.FramesPath(path))
	if err != nil {
		t.Fatal(err)
	}
	f.Prefix = tableHashes(t, path)
	if err := edit(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(sqlite.FramesPath(path)); err != nil {
		t.Fatal(err)
	}
}

// none is a wantSeq or cpAfter of -1.
func none(int64) int64 { return -1 }

func TestTamperMigratedStore(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, path string, base int64)
		// wantSeq as audit.Divergence has it; want in its message.
		wantSeq func(base int64) int64
		want    string
		// cpAfter >= 0: the divergence is at the first checkpoint whose
		// tree holds record cpAfter (batch sizes vary, so the size is
		// looked up); -1: at no checkpoint.
		cpAfter func(base int64) int64
	}{
		{
			name: "prefix entry edited with SQL after dropping the trigger",
			tamper: func(t *testing.T, path string, base int64) {
				execSQL(t, path, dropTableTriggers,
					`UPDATE entries SET data = CAST(replace(CAST(data AS TEXT), '"llama-3"', '"llama-4"') AS BLOB) WHERE seq = 5`)
			},
			wantSeq: func(int64) int64 { return 5 }, cpAfter: none, want: "entry 5: leaf hash mismatch",
		},
		{
			name: "prefix tree hash edited",
			tamper: func(t *testing.T, path string, base int64) {
				execSQL(t, path, dropTableTriggers, "UPDATE hashes SET hash = zeroblob(32) WHERE idx = 2") // level 1 over entries 0,1
			},
			wantSeq: func(int64) int64 { return 1 }, cpAfter: none, want: "entry 1: stored tree hash at level 1",
		},
		{
			name: "prefix entry edited and the hashes table recomputed",
			tamper: func(t *testing.T, path string, base int64) {
				execSQL(t, path, dropTableTriggers,
					`UPDATE entries SET data = CAST(replace(CAST(data AS TEXT), '"llama-3"', '"llama-4"') AS BLOB) WHERE seq = 5`)
				rehashTables(t, path)
			},
			wantSeq: none, cpAfter: func(int64) int64 { return 5 }, want: "signed tree hash does not match the entries",
		},
		{
			name: "record above the base edited in the frame file, CRCs fixed",
			tamper: func(t *testing.T, path string, base int64) {
				editMigratedFrames(t, path, func(f *framelogtest.File) error {
					b, err := f.Record(base + 2)
					if err != nil {
						return err
					}
					return f.SetRecord(base+2, bytes.Replace(b, []byte(`"llama-3"`), []byte(`"llama-4"`), 1))
				})
			},
			wantSeq: func(base int64) int64 { return base + 2 }, cpAfter: none, want: "leaf hash mismatch",
		},
		{
			name: "records above the base edited and the frames rehashed over the tables' hashes",
			tamper: func(t *testing.T, path string, base int64) {
				editMigratedFrames(t, path, func(f *framelogtest.File) error {
					b, err := f.Record(base + 2)
					if err != nil {
						return err
					}
					f.SetRecord(base+2, bytes.Replace(b, []byte(`"llama-3"`), []byte(`"llama-4"`), 1))
					return f.Rehash(f.Base, f.Size())
				})
			},
			wantSeq: none, cpAfter: func(base int64) int64 { return base + 2 }, want: "signed tree hash does not match the entries",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := newMigrateEnv(t)
			base, size := migratedStore(t, m)
			if base < 40 || size <= base {
				t.Fatalf("base %d, size %d", base, size)
			}
			execSQL(t, m.cfg.Path, "PRAGMA wal_checkpoint(TRUNCATE)")
			tc.tamper(t, m.cfg.Path, base)

			ro, err := sqlite.OpenReadOnly(ctx, m.cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			wantCP := int64(-1)
			if after := tc.cpAfter(base); after >= 0 {
				cps, err := ro.Checkpoints(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range cps {
					if c.Size > after && (wantCP < 0 || c.Size < wantCP) {
						wantCP = c.Size
					}
				}
			}
			check := func(how string, err error) {
				t.Helper()
				var d *audit.Divergence
				if !errors.As(err, &d) {
					t.Fatalf("%s: err = %v, want a *Divergence", how, err)
				}
				if !strings.Contains(d.Msg, tc.want) || d.Seq != tc.wantSeq(base) || d.CheckpointSize != wantCP {
					t.Fatalf("%s: divergence at seq %d checkpoint %d %q, want seq %d checkpoint %d %q (base %d)", how, d.Seq, d.CheckpointSize, d.Msg, tc.wantSeq(base), wantCP, tc.want, base)
				}
			}
			ext, err := audit.ReadHead(ctx, ro, m.cfg.CheckpointFile)
			if err != nil {
				t.Fatal(err)
			}
			_, err = audit.Verify(ctx, ro, m.ver, audit.VerifyOptions{External: ext, SingleWriter: true})
			ro.Close()
			check("Verify", err)

			st, err := sqlite.Open(ctx, m.cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			l, err := audit.Open(ctx, st, m.cfg, m.signer, m.ver, audit.WithLogger(slog.New(slog.DiscardHandler)))
			if err == nil {
				l.Close(ctx)
			}
			check("Open", err)
		})
	}
}

// Deleting the end of the table prefix makes the tables and the frame
// file disagree on where the frames start: the store does not open, for
// writing or reading.
func TestTamperMigratedPrefixTailDeleted(t *testing.T) {
	ctx := context.Background()
	m := newMigrateEnv(t)
	base, _ := migratedStore(t, m)
	execSQL(t, m.cfg.Path, dropTableTriggers, fmt.Sprintf("DELETE FROM entries WHERE seq >= %d", base-3),
		fmt.Sprintf("DELETE FROM hashes WHERE idx >= %d", tlog.StoredHashCount(base-3)))
	want := fmt.Sprintf("the entries table holds %d records but the frame file starts at %d", base-3, base)
	if st, err := sqlite.Open(ctx, m.cfg.Path); err == nil || !strings.Contains(err.Error(), want) {
		if err == nil {
			st.Close()
		}
		t.Fatalf("Open = %v, want %q", err, want)
	}
	if st, err := sqlite.OpenReadOnly(ctx, m.cfg.Path); err == nil || !strings.Contains(err.Error(), want) {
		if err == nil {
			st.Close()
		}
		t.Fatalf("OpenReadOnly = %v, want %q", err, want)
	}
}
