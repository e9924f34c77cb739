package audit_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// The tamper suite: each case edits a closed store the way an attacker
// with file access could, then checks that offline Verify AND start-up
// (Open) both refuse it, pointing at the place.
//
// The log under test has 50 entries: 0 gateway.started, 1..48 requests,
// 49 gateway.stopped, and checkpoints at sizes 1, 11, 21, 31, 41, 50.

func tamperEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 10 })
	appendN(t, e.log, 48)
	e.close(t)
	return e
}

// rawDB opens the store file with plain SQL, as an attacker would.
func rawDB(t *testing.T, e *env) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

const dropTriggers = `DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;
DROP TRIGGER hashes_no_update; DROP TRIGGER hashes_no_delete;
DROP TRIGGER checkpoints_no_update; DROP TRIGGER checkpoints_no_delete;`

func entryData(t *testing.T, db *sql.DB, seq int64) []byte {
	t.Helper()
	var b []byte
	if err := db.QueryRow("SELECT data FROM entries WHERE seq = ?", seq).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyOffline runs what `warden verify --data-dir` runs.
func verifyOffline(t *testing.T, e *env) (audit.Report, error) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), e.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ext, err := os.ReadFile(e.cfg.CheckpointFile)
	if err != nil {
		t.Fatal(err)
	}
	return audit.Verify(context.Background(), st, e.ver, audit.VerifyOptions{External: ext, SingleWriter: true})
}

// rehash recomputes the whole hash table from the (tampered) entries, as
// an attacker who knows the algorithm but not the signing key would.
func rehash(t *testing.T, db *sql.DB) {
	t.Helper()
	mustExec(t, db, "DELETE FROM hashes")
	rows, err := db.Query("SELECT data FROM entries ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	var datas [][]byte
	for rows.Next() {
		var b []byte
		rows.Scan(&b)
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
	for i, h := range all {
		if _, err := db.Exec("INSERT INTO hashes(idx, hash) VALUES (?, ?)", i, h[:]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTamper(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, e *env, db *sql.DB)
		wantSeq int64  // -1: not about one entry
		wantCP  int64  // -1: not about one checkpoint
		want    string // in the message
		// noContinue: even allow_unverified_start cannot append to it.
		noContinue bool
	}{
		{
			name: "one byte of an entry changed",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				b := entryData(t, db, 23)
				i := strings.Index(string(b), "req-")
				b[i+4] ^= 0x01
				mustExec(t, db, dropTriggers)
				if _, err := db.Exec("UPDATE entries SET data = ? WHERE seq = 23", b); err != nil {
					t.Fatal(err)
				}
			},
			wantSeq: 23, wantCP: -1, want: "entry 23: leaf hash mismatch",
		},
		{
			name: "edited with SQL after dropping the trigger",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				mustExec(t, db, dropTriggers,
					`UPDATE entries SET data = CAST(replace(CAST(data AS TEXT), '"allow"', '"deny"') AS BLOB) WHERE seq = 5`)
			},
			wantSeq: 5, wantCP: -1, want: "entry 5: leaf hash mismatch",
		},
		{
			name: "entry deleted",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				mustExec(t, db, dropTriggers, "DELETE FROM entries WHERE seq = 17")
			},
			wantSeq: 17, wantCP: -1, want: "entry 17 is missing",
		},
		{
			name: "two entries swapped",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				a, b := entryData(t, db, 10), entryData(t, db, 11)
				mustExec(t, db, dropTriggers)
				db.Exec("UPDATE entries SET data = ? WHERE seq = 10", b)
				db.Exec("UPDATE entries SET data = ? WHERE seq = 11", a)
			},
			wantSeq: 10, wantCP: -1, want: "entry 10: leaf hash mismatch",
		},
		{
			name: "tail truncated (entries only)",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				mustExec(t, db, dropTriggers, "DELETE FROM entries WHERE seq >= 45")
			},
			wantSeq: 45, wantCP: 50, want: "store has 45 entries but the checkpoint file says 50: the store was truncated or rolled back",
			noContinue: true,
		},
		{
			name: "tail truncated with its hashes and checkpoints",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				mustExec(t, db, dropTriggers, "DELETE FROM entries WHERE seq >= 45",
					fmt.Sprintf("DELETE FROM hashes WHERE idx >= %d", tlog.StoredHashCount(45)),
					"DELETE FROM checkpoints WHERE size > 45")
			},
			wantSeq: 45, wantCP: 50, want: "store has 45 entries but the checkpoint file says 50",
		},
		{
			name: "forged entry appended after the gateway stopped",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				db.Close()
				// The attacker uses Warden's own store code, so every stored
				// hash is right; only the signature is missing.
				st, err := sqlite.Open(context.Background(), e.cfg.Path)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				forged := request(99)
				forged.V, forged.ID = 1, "forged"
				data, _ := audit.Marshal(forged)
				hs, err := tlog.StoredHashes(50, data, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
					return st.ReadHashes(context.Background(), idx)
				}))
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Append(context.Background(), audit.Batch{
					Records:   []audit.Record{{Seq: 50, Data: data, Entry: forged}},
					HashStart: tlog.StoredHashCount(50), Hashes: hs,
				}); err != nil {
					t.Fatal(err)
				}
			},
			wantSeq: 50, wantCP: 50, want: "entries [50, 51) were added after the gateway stopped",
		},
		{
			name: "forged entry inserted in the middle (later ones shifted)",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				mustExec(t, db, dropTriggers)
				// Shift 30..49 up by one, then put a forged entry at 30.
				for s := int64(49); s >= 30; s-- {
					if _, err := db.Exec("UPDATE entries SET seq = seq + 1 WHERE seq = ?", s); err != nil {
						t.Fatal(err)
					}
				}
				f := request(77)
				f.V, f.ID = 1, "forged-mid"
				data, _ := audit.Marshal(f)
				if _, err := db.Exec("INSERT INTO entries(seq, data) VALUES (30, ?)", data); err != nil {
					t.Fatal(err)
				}
			},
			wantSeq: 30, wantCP: -1, want: "entry 30: leaf hash mismatch",
		},
		{
			name: "entry rewritten and every stored hash recomputed",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				b := entryData(t, db, 23)
				i := strings.Index(string(b), "alice")
				copy(b[i:], "mallo")
				mustExec(t, db, dropTriggers)
				db.Exec("UPDATE entries SET data = ? WHERE seq = 23", b)
				rehash(t, db)
			},
			wantSeq: -1, wantCP: 31, want: "checkpoint 4 (size 31): signed tree hash does not match the entries: entries in [21, 31)",
		},
		{
			name: "stored tree hash edited",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				mustExec(t, db, dropTriggers, "UPDATE hashes SET hash = zeroblob(32) WHERE idx = 2") // level 1 over entries 0,1
			},
			wantSeq: 1, wantCP: -1, want: "entry 1: stored tree hash at level 1",
		},
		{
			name: "checkpoint replaced by an older one",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				mustExec(t, db, dropTriggers,
					"UPDATE checkpoints SET note = (SELECT note FROM checkpoints WHERE size = 21), hash = (SELECT hash FROM checkpoints WHERE size = 21) WHERE size = 41")
			},
			wantSeq: -1, wantCP: 41, want: "checkpoint 5: the stored row says size 41 but its signed note is for size 21: the checkpoint was replaced",
		},
		{
			name: "checkpoint forged with another key",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				skey, _, _ := note.GenerateKey(rand.Reader, "test-audit")
				s, _ := note.NewSigner(skey)
				var h []byte
				db.QueryRow("SELECT hash FROM checkpoints WHERE size = 31").Scan(&h)
				c, err := audit.SignCheckpoint(s, 31, tlog.Hash(h), e.log0time())
				if err != nil {
					t.Fatal(err)
				}
				mustExec(t, db, dropTriggers)
				if _, err := db.Exec("UPDATE checkpoints SET note = ? WHERE size = 31", c.Note); err != nil {
					t.Fatal(err)
				}
			},
			wantSeq: -1, wantCP: 31, want: "checkpoint 4 (size 31): audit: checkpoint signature invalid",
		},
		{
			name: "checkpoint note altered by one byte",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				mustExec(t, db, dropTriggers, "UPDATE checkpoints SET note = CAST(replace(CAST(note AS TEXT), char(10) || '11' || char(10), char(10) || '12' || char(10)) AS BLOB) WHERE size = 11")
			},
			wantSeq: -1, wantCP: 11, want: "checkpoint 2 (size 11): audit: checkpoint signature invalid",
		},
		{
			name: "whole store rolled back to an older copy",
			tamper: func(t *testing.T, e *env, db *sql.DB) {
				db.Close()
				// Keep a copy, let the gateway run on, then put the copy back.
				old, err := os.ReadFile(e.cfg.Path)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.open(t); err != nil {
					t.Fatal(err)
				}
				appendN(t, e.log, 5)
				e.close(t)
				os.Remove(e.cfg.Path + "-wal")
				os.Remove(e.cfg.Path + "-shm")
				if err := os.WriteFile(e.cfg.Path, old, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantSeq: 50, wantCP: 57, want: "store has 50 entries but the checkpoint file says 57: the store was truncated or rolled back",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tamperEnv(t)
			// Make the WAL part of the main file so a copy is complete.
			db := rawDB(t, e)
			mustExec(t, db, "PRAGMA wal_checkpoint(TRUNCATE)")
			tc.tamper(t, e, db)
			db.Close()

			check := func(how string, err error) {
				t.Helper()
				var d *audit.Divergence
				if !errors.As(err, &d) {
					t.Fatalf("%s: err = %v, want a *Divergence", how, err)
				}
				if !strings.Contains(d.Msg, tc.want) {
					t.Fatalf("%s: message %q does not contain %q", how, d.Msg, tc.want)
				}
				if d.Seq != tc.wantSeq || d.CheckpointSize != tc.wantCP {
					t.Fatalf("%s: points at seq %d checkpoint %d, want seq %d checkpoint %d (%s)", how, d.Seq, d.CheckpointSize, tc.wantSeq, tc.wantCP, d.Msg)
				}
			}
			_, err := verifyOffline(t, e)
			check("Verify", err)
			err = e.open(t)
			check("Open", err)
			if !strings.Contains(err.Error(), "allow_unverified_start") {
				t.Errorf("Open error does not say how to override: %v", err)
			}

			// With the override, the gateway starts and records why.
			e.cfg.AllowUnverifiedStart = true
			if tc.noContinue {
				err := e.open(t)
				if err == nil || !strings.Contains(err.Error(), "archive it and start a new one") {
					t.Fatalf("Open with allow_unverified_start on a store that cannot continue: %v", err)
				}
				check("Open (override)", err)
				return
			}
			if err := e.open(t); err != nil {
				t.Fatalf("Open with allow_unverified_start: %v", err)
			}
			rep, verr := e.log.StartReport()
			if verr == nil {
				t.Fatal("StartReport has no divergence")
			}
			got, err := e.log.Search(context.Background(), audit.Query{Kind: audit.KindGatewayStarted, Desc: true, Limit: 1})
			if err != nil || len(got) != 1 {
				t.Fatalf("search gateway.started: %v %v", got, err)
			}
			if got[0].Details["unverified_start"] != true || !strings.Contains(got[0].Details["divergence"].(string), tc.want) {
				t.Fatalf("gateway.started details = %v", got[0].Details)
			}
			_ = rep
		})
	}
}

// TestUntamperedVerifies is the control: the same log, untouched,
// verifies offline and opens.
func TestUntamperedVerifies(t *testing.T) {
	e := tamperEnv(t)
	rep, err := verifyOffline(t, e)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 50 || rep.Checkpoints != 6 || rep.Latest.Size != 50 || rep.UnsignedTail != 0 {
		t.Fatalf("report = %+v", rep)
	}
	if err := e.open(t); err != nil {
		t.Fatal(err)
	}
}
