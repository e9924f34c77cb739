package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog/framelogtest"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// The tamper suite: each case edits a closed store the way an attacker
// with file access could, then checks that offline Verify AND start-up
// (Open) both refuse it, pointing at the place.
//
// The records, tree hashes and batch heads are in the store's frame file
// (decision 042): the attacks on them rewrite that file with
// framelogtest, every CRC and the chain valid, so only the tree and the
// signed heads can catch them. The checkpoint history and the
// cosignatures stay in audit.db's tables: those attacks stay SQL.
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

// execDB runs stmts on the closed store's database and closes it.
func execDB(t *testing.T, e *env, stmts ...string) {
	t.Helper()
	db := rawDB(t, e)
	mustExec(t, db, stmts...)
	db.Close()
}

const dropTriggers = `DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;
DROP TRIGGER hashes_no_update; DROP TRIGGER hashes_no_delete;
DROP TRIGGER checkpoints_no_update; DROP TRIGGER checkpoints_no_delete;`

// editFrames rewrites the closed store's frame file with edit applied.
func editFrames(t *testing.T, e *env, edit func(f *framelogtest.File) error) {
	t.Helper()
	path := sqlite.FramesPath(e.cfg.Path)
	f, err := framelogtest.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := edit(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
}

// editRecord rewrites record seq of the frame file with edit applied to
// a copy of its bytes; the hashes stay.
func editRecord(t *testing.T, e *env, seq int64, edit func(b []byte) []byte) {
	t.Helper()
	editFrames(t, e, func(f *framelogtest.File) error {
		b, err := f.Record(seq)
		if err != nil {
			return err
		}
		return f.SetRecord(seq, edit(bytes.Clone(b)))
	})
}

// flipReq changes the digit after "req-" in a record.
func flipReq(b []byte) []byte {
	i := bytes.Index(b, []byte("req-"))
	b[i+4] ^= 0x01
	return b
}

func allowToDeny(b []byte) []byte {
	return bytes.Replace(b, []byte(`"allow"`), []byte(`"deny"`), 1)
}

// verifyOffline runs what `warden verify --data-dir` runs: a read-only
// open (a torn tail of the frame file is left and reported, never cut)
// and the newest head of the checkpoint file, the head file and the
// store's last frame.
func verifyOffline(t *testing.T, e *env) (audit.Report, error) {
	t.Helper()
	st, err := sqlite.OpenReadOnly(context.Background(), e.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ext, src, err := audit.ReadHeadFrom(context.Background(), st, e.cfg.CheckpointFile)
	if err != nil {
		t.Fatal(err)
	}
	return audit.Verify(context.Background(), st, e.ver, audit.VerifyOptions{External: ext, ExternalSource: src, SingleWriter: true})
}

func TestTamper(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, e *env)
		wantSeq int64  // -1: not about one entry
		wantCP  int64  // -1: not about one checkpoint
		want    string // in the message
		// noContinue: even allow_unverified_start cannot append to it.
		noContinue bool
	}{
		{
			name: "one byte of a record changed, both CRCs fixed",
			tamper: func(t *testing.T, e *env) {
				editRecord(t, e, 23, flipReq)
			},
			wantSeq: 23, wantCP: -1, want: "entry 23: leaf hash mismatch",
		},
		{
			name: "decision edited in the frame file",
			tamper: func(t *testing.T, e *env) {
				editRecord(t, e, 5, allowToDeny)
			},
			wantSeq: 5, wantCP: -1, want: "entry 5: leaf hash mismatch",
		},
		{
			name: "record deleted, later ones renumbered",
			tamper: func(t *testing.T, e *env) {
				editFrames(t, e, func(f *framelogtest.File) error { return f.DeleteRecord(17) })
			},
			wantSeq: 49, wantCP: 50, want: "store has 49 entries but the checkpoint file says 50",
		},
		{
			name: "record deleted and a forged one appended to keep the size",
			tamper: func(t *testing.T, e *env) {
				f := request(98)
				f.V, f.ID = 1, "forged-end"
				data, _ := audit.Marshal(f)
				editFrames(t, e, func(f *framelogtest.File) error {
					if err := f.DeleteRecord(17); err != nil {
						return err
					}
					return f.InsertRecord(f.Size(), data)
				})
			},
			wantSeq: 17, wantCP: -1, want: "entry 17: leaf hash mismatch",
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, e *env) {
				editFrames(t, e, func(f *framelogtest.File) error { return f.SwapRecords(10, 11) })
			},
			wantSeq: 10, wantCP: -1, want: "entry 10: leaf hash mismatch",
		},
		{
			name: "records from 45 cut with their hashes and heads",
			tamper: func(t *testing.T, e *env) {
				editFrames(t, e, func(f *framelogtest.File) error { return f.TruncateAt(45) })
			},
			wantSeq: 45, wantCP: 50, want: "store has 45 entries but the checkpoint file says 50: the store was truncated or rolled back",
		},
		{
			name: "records from 45 cut with their checkpoints",
			tamper: func(t *testing.T, e *env) {
				editFrames(t, e, func(f *framelogtest.File) error { return f.TruncateAt(45) })
				execDB(t, e, dropTriggers, "DELETE FROM checkpoints WHERE size > 45")
			},
			wantSeq: 45, wantCP: 50, want: "store has 45 entries but the checkpoint file says 50",
		},
		{
			name: "last frames dropped at a frame boundary",
			tamper: func(t *testing.T, e *env) {
				editFrames(t, e, func(f *framelogtest.File) error { return f.DropFrames(2) })
			},
			wantSeq: 48, wantCP: 50, want: "store has 48 entries but the checkpoint file says 50: the store was truncated or rolled back",
		},
		{
			name: "last frames dropped, checkpoints and head file too",
			tamper: func(t *testing.T, e *env) {
				editFrames(t, e, func(f *framelogtest.File) error { return f.DropFrames(2) })
				execDB(t, e, dropTriggers, "DELETE FROM checkpoints WHERE size > 48")
				os.Remove(audit.HeadPath(e.cfg.CheckpointFile))
			},
			// The checkpoint file still holds the final checkpoint.
			wantSeq: 48, wantCP: 50, want: "store has 48 entries but the checkpoint file says 50",
		},
		{
			name: "forged entry appended after the gateway stopped",
			tamper: func(t *testing.T, e *env) {
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
			name: "forged entry appended to the last frame",
			tamper: func(t *testing.T, e *env) {
				forged := request(99)
				forged.V, forged.ID = 1, "forged"
				data, _ := audit.Marshal(forged)
				editFrames(t, e, func(f *framelogtest.File) error { return f.InsertRecord(50, data) })
			},
			wantSeq: 50, wantCP: 50, want: "entries [50, 51) were added after the gateway stopped",
		},
		{
			name: "forged entry inserted in the middle (later ones shifted)",
			tamper: func(t *testing.T, e *env) {
				f := request(77)
				f.V, f.ID = 1, "forged-mid"
				data, _ := audit.Marshal(f)
				editFrames(t, e, func(f *framelogtest.File) error { return f.InsertRecord(30, data) })
			},
			wantSeq: 30, wantCP: -1, want: "entry 30: leaf hash mismatch",
		},
		{
			name: "entry rewritten and every stored hash recomputed",
			tamper: func(t *testing.T, e *env) {
				editFrames(t, e, func(f *framelogtest.File) error {
					b, _ := f.Record(23)
					i := bytes.Index(b, []byte("alice"))
					copy(b[i:], "mallo")
					return f.Rehash(0, f.Size())
				})
			},
			wantSeq: -1, wantCP: 31, want: "checkpoint 4 (size 31): signed tree hash does not match the entries: entries in [21, 31)",
		},
		{
			name: "entry rewritten and its frame's hashes recomputed",
			tamper: func(t *testing.T, e *env) {
				editFrames(t, e, func(f *framelogtest.File) error {
					i, err := f.FrameOf(23)
					if err != nil {
						return err
					}
					b, _ := f.Record(23)
					at := bytes.Index(b, []byte("alice"))
					copy(b[at:], "mallo")
					fr := f.Frames[i]
					return f.Rehash(fr.FirstSeq, fr.FirstSeq+int64(len(fr.Records)))
				})
			},
			wantSeq: -1, wantCP: 31, want: "checkpoint 4 (size 31): signed tree hash does not match the entries: entries in [21, 31)",
		},
		{
			name: "stored tree hash edited",
			tamper: func(t *testing.T, e *env) {
				editFrames(t, e, func(f *framelogtest.File) error { return f.SetHash(2, tlog.Hash{}) }) // level 1 over entries 0,1
			},
			wantSeq: 1, wantCP: -1, want: "entry 1: stored tree hash at level 1",
		},
		{
			name: "last frame's head replaced by one signed with another key",
			tamper: func(t *testing.T, e *env) {
				skey, _, _ := note.GenerateKey(rand.Reader, "test-audit")
				s, _ := note.NewSigner(skey)
				editFrames(t, e, func(f *framelogtest.File) error {
					last := len(f.Frames) - 1
					c, err := audit.SignCheckpoint(s, f.Size()+1, tlog.Hash{}, e.log0time())
					if err != nil {
						return err
					}
					return f.SetHead(last, c.Note, false)
				})
			},
			// The store's head claims the larger tree, so it is the one
			// verified as the external head, named by where it is.
			wantSeq: -1, wantCP: -1, want: "frame file's last head: audit: checkpoint signature invalid",
		},
		{
			name: "checkpoint replaced by an older one",
			tamper: func(t *testing.T, e *env) {
				execDB(t, e, dropTriggers,
					"UPDATE checkpoints SET note = (SELECT note FROM checkpoints WHERE size = 21), hash = (SELECT hash FROM checkpoints WHERE size = 21) WHERE size = 41")
			},
			wantSeq: -1, wantCP: 41, want: "checkpoint 5: the stored row says size 41 but its signed note is for size 21: the checkpoint was replaced",
		},
		{
			name: "checkpoint forged with another key",
			tamper: func(t *testing.T, e *env) {
				db := rawDB(t, e)
				skey, _, _ := note.GenerateKey(rand.Reader, "test-audit")
				s, _ := note.NewSigner(skey)
				defer db.Close()
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
			wantSeq: -1, wantCP: 31, want: "checkpoint 4 (size 31, the checkpoints table's row; the history head in frame 30 of audit.db.frames differs): audit: checkpoint signature invalid",
		},
		{
			name: "checkpoint note altered by one byte",
			tamper: func(t *testing.T, e *env) {
				execDB(t, e, dropTriggers, "UPDATE checkpoints SET note = CAST(replace(CAST(note AS TEXT), char(10) || '11' || char(10), char(10) || '12' || char(10)) AS BLOB) WHERE size = 11")
			},
			wantSeq: -1, wantCP: 11, want: "checkpoint 2 (size 11, the checkpoints table's row; the history head in frame 10 of audit.db.frames differs): audit: checkpoint signature invalid",
		},
		{
			name: "whole store rolled back to an older copy",
			tamper: func(t *testing.T, e *env) {
				// Keep a copy of both files, let the gateway run on, then
				// put the copy back.
				files := []string{e.cfg.Path, sqlite.FramesPath(e.cfg.Path)}
				var old [][]byte
				for _, p := range files {
					b, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					old = append(old, b)
				}
				if err := e.open(t); err != nil {
					t.Fatal(err)
				}
				appendN(t, e.log, 5)
				e.close(t)
				os.Remove(e.cfg.Path + "-wal")
				os.Remove(e.cfg.Path + "-shm")
				for i, p := range files {
					if err := os.WriteFile(p, old[i], 0o600); err != nil {
						t.Fatal(err)
					}
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
			db.Close()
			tc.tamper(t, e)

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
	// The evidence the suite attacks is where it edits: every record in
	// the frame file, none in the entries table.
	f, err := framelogtest.Read(sqlite.FramesPath(e.cfg.Path))
	if err != nil || f.Base != 0 || f.Size() != 50 || f.Torn != 0 {
		t.Fatalf("frame file: %v", err)
	}
	db := rawDB(t, e)
	var rows int
	if err := db.QueryRow("SELECT count(*) FROM entries").Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("entries table: %d rows, %v", rows, err)
	}
	db.Close()
	if err := e.open(t); err != nil {
		t.Fatal(err)
	}
}
