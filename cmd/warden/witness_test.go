package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/store/framelog/framelogtest"
	"github.com/wardenhq/warden/internal/store/postgres"
	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

// The witnessed tamper suite: attacks by someone who holds the data dir
// (and, for the last one, the signing key). Without witnesses each leaves
// a store that `warden verify` passes; with them, `warden verify
// --witness KEY --checkpoint FILE` fails and the gateway refuses to start.

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// witnessedEnv is a data dir whose audit log is witnessed.
type witnessedEnv struct {
	dir   string
	vkey  string // the log's verifier key
	ws    []*witnesstest.Witness
	logs  *lockedBuffer
	allow bool // allow_unverified_start
	extra string
}

func newWitnessedEnv(t *testing.T, nWitnesses int) *witnessedEnv {
	t.Helper()
	e := &witnessedEnv{dir: t.TempDir(), logs: &lockedBuffer{}}
	signer, _ := audit.KeyPaths(e.dir)
	vkey, err := audit.GenerateKeyFiles(signer, "warden-audit")
	if err != nil {
		t.Fatal(err)
	}
	e.vkey = vkey
	for i := 0; i < nWitnesses; i++ {
		e.ws = append(e.ws, witnesstest.New(t, fmt.Sprintf("witness-%c.example", 'a'+i), vkey))
	}
	return e
}

func (e *witnessedEnv) config(t *testing.T) *config.Config {
	t.Helper()
	var ws strings.Builder
	for _, w := range e.ws {
		fmt.Fprintf(&ws, "    - url: %s\n      key: %s\n      timeout: 2s\n", w.URL, w.Key)
	}
	y := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: %s
allow_anonymous: true
routes:
  - {name: m, path_prefix: /v1/, upstream: "http://127.0.0.1:1"}
audit:
  checkpoint_every: 10
  allow_unverified_start: %v
  witnesses:
%s  witnessing:
    poll: 20ms
%s`, e.dir, e.allow, ws.String(), e.extra)
	cfg, err := config.Parse("witness-test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// open starts the app on the data dir (without serving).
func (e *witnessedEnv) open(t *testing.T) (*app, error) {
	t.Helper()
	return newApp(context.Background(), e.config(t), slog.New(slog.NewTextHandler(e.logs, nil)))
}

// run starts the app, appends n request entries and stops it; every
// witness must then hold the final checkpoint.
func (e *witnessedEnv) run(t *testing.T, n int) int64 {
	t.Helper()
	a, err := e.open(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if _, err := a.audit.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: fmt.Sprintf("req-%d", i), Model: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	a.close()
	size := e.storeSize(t)
	for _, w := range e.ws {
		if got := w.Size("warden-audit"); got != size {
			t.Fatalf("witness %s holds size %d after the gateway stopped, want %d\n%s", w.Name, got, size, e.logs)
		}
	}
	return size
}

func (e *witnessedEnv) db() string { return filepath.Join(e.dir, "audit.db") }

func (e *witnessedEnv) storeSize(t *testing.T) int64 {
	t.Helper()
	st, err := sqlite.OpenReadOnly(context.Background(), e.db())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// auditorCopy writes what witness i holds for the log (what its operator
// hands an auditor) to a file outside the data dir.
func (e *witnessedEnv) auditorCopy(t *testing.T, i int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cosigned.note")
	if err := os.WriteFile(p, e.ws[i].Latest("warden-audit"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *witnessedEnv) verify(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCmd(t, newVerifyCmd(), append([]string{"--data-dir", e.dir}, args...)...)
}

func sqlExec(t *testing.T, path string, stmts ...string) {
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

// editFrames rewrites the frame file of the closed store at db (its
// records, tree hashes and batch heads) with edit applied; every CRC and
// the chain stay valid (framelogtest), so only the tree and the signed
// heads can give the edit away.
func editFrames(t *testing.T, db string, edit func(f *framelogtest.File) error) {
	t.Helper()
	path := sqlite.FramesPath(db)
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

// replaceInRecord replaces old by new in record seq of the store at db.
func replaceInRecord(t *testing.T, db string, seq int64, old, new string) {
	t.Helper()
	editFrames(t, db, func(f *framelogtest.File) error {
		b, err := f.Record(seq)
		if err != nil {
			return err
		}
		nb := bytes.ReplaceAll(b, []byte(old), []byte(new))
		if bytes.Equal(nb, b) {
			return fmt.Errorf("record %d has no %q", seq, old)
		}
		return f.SetRecord(seq, nb)
	})
}

const dropAllTriggers = `DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;
DROP TRIGGER hashes_no_update; DROP TRIGGER hashes_no_delete;
DROP TRIGGER checkpoints_no_update; DROP TRIGGER checkpoints_no_delete;`

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		return os.WriteFile(dst, b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// expectRefusedStart: the gateway does not start, says why and how to
// override.
func expectRefusedStart(t *testing.T, e *witnessedEnv, want string) {
	t.Helper()
	a, err := e.open(t)
	if err == nil {
		a.close()
		t.Fatalf("the gateway started on a tampered store")
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "allow_unverified_start") {
		t.Fatalf("start-up error %q does not contain %q and the override", err, want)
	}
}

// TestWitnessTamperTruncateWithOlderCheckpoint: the tail of the log is
// cut (records, hashes and heads in the frame file, checkpoints and
// cosignatures in the databases) and the database's
// own older signed checkpoint is put into the checkpoint file. `warden
// verify` passes on that alone; given the witness's cosigned checkpoint it
// fails, and the gateway refuses to start because the witness remembers.
func TestWitnessTamperTruncateWithOlderCheckpoint(t *testing.T) {
	e := newWitnessedEnv(t, 1)
	size := e.run(t, 48) // entries: started, 48 requests, stopped
	if size != 50 {
		t.Fatalf("size %d, want 50", size)
	}
	auditor := e.auditorCopy(t, 0)
	if out, code := e.verify(t, "--witness", e.ws[0].Key, "--checkpoint", auditor); code != 0 || !strings.Contains(out, "witnessed: checkpoint of size 50") {
		t.Fatalf("untampered: exit %d\n%s", code, out)
	}

	// The attack.
	var old []byte
	db, _ := sql.Open("sqlite", "file:"+e.db())
	if err := db.QueryRow("SELECT note FROM checkpoints WHERE size = 41").Scan(&old); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// The records from 45 on go with their hashes and heads (cut in the
	// frame file, CRCs and chain valid); so do the heads signed after the
	// batches past 41, which would give the cut away, and the history
	// past 41.
	editFrames(t, e.db(), func(f *framelogtest.File) error {
		if err := f.TruncateAt(45); err != nil {
			return err
		}
		for i, b := range f.Frames {
			if b.FirstSeq+int64(len(b.Records)) > 41 {
				f.SetHead(i, nil, false)
			}
		}
		return nil
	})
	sqlExec(t, e.db(), dropAllTriggers, "DELETE FROM checkpoints WHERE size > 41", "PRAGMA wal_checkpoint(TRUNCATE)")
	sqlExec(t, filepath.Join(e.dir, "cosignatures.db"), "DROP TRIGGER cosignatures_no_delete", "DELETE FROM cosignatures WHERE size > 41")
	if err := os.WriteFile(filepath.Join(e.dir, "audit.checkpoint"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(e.dir, "audit.cosigned"))
	// The head signed after every batch would give it away: it goes too,
	// from the store (above) and the head file (without them, plain
	// verify refuses: TestTamperDeleteTailAfterCrash).
	os.Remove(audit.HeadPath(filepath.Join(e.dir, "audit.checkpoint")))

	// Without the witness's view, the store looks fine: that is the attack.
	// (The search index is derived and may hold rows for the removed tail,
	// depending on whether the indexer ran before the gateway stopped; a
	// careful attacker rebuilds it, so it is left out of this check.)
	if out, code := e.verify(t, "--skip-index"); code != 0 {
		t.Fatalf("plain verify should pass on this attack (it is what witnesses are for): exit %d\n%s", code, out)
	}
	out, code := e.verify(t, "--witness", e.ws[0].Key, "--checkpoint", auditor)
	if code != 1 || !strings.Contains(out, "FAILED: store has 45 entries but checkpoint 50 was cosigned by witness-a.example: the log was truncated or rolled back") {
		t.Fatalf("verify --witness --checkpoint: exit %d\n%s", code, out)
	}
	expectRefusedStart(t, e, "witness witness-a.example has cosigned a tree of size 50 for this log, but the store has only 45 entries")
	if e.ws[0].Size("warden-audit") != 50 {
		t.Fatal("the witness moved")
	}

	// The override starts, records why, keeps alerting; verify reports it.
	e.allow = true
	a, err := e.open(t)
	if err != nil {
		t.Fatalf("allow_unverified_start: %v", err)
	}
	got, err := a.audit.Search(context.Background(), audit.Query{Kind: audit.KindGatewayStarted, Desc: true, Limit: 1})
	if err != nil || len(got) != 1 || got[0].Details["witness_unverified_start"] != true ||
		!strings.Contains(fmt.Sprint(got[0].Details["witness_divergence"]), "has cosigned a tree of size 50") {
		t.Fatalf("gateway.started = %+v %v", got, err)
	}
	a.close()
	if !strings.Contains(e.logs.String(), "THE WITNESS REFUSED") {
		t.Fatalf("no refusal alert in the log:\n%s", e.logs)
	}
	out, _ = e.verify(t)
	if !strings.Contains(out, "although the store contradicted its witnesses") {
		t.Fatalf("verify does not report the override:\n%s", out)
	}
}

// TestWitnessTamperRollbackDataDir: the whole data dir (database,
// checkpoint file, cosigned file) is put back to an earlier copy. Two
// witnesses; verify needs both (--min-witnesses 2).
func TestWitnessTamperRollbackDataDir(t *testing.T) {
	e := newWitnessedEnv(t, 2)
	e.run(t, 20)
	backup := t.TempDir()
	copyDir(t, e.dir, backup)
	size := e.run(t, 20)
	auditor := e.auditorCopy(t, 1)
	keys := filepath.Join(t.TempDir(), "witnesses.keys")
	os.WriteFile(keys, []byte("# the auditor's list\n"+e.ws[0].Key+"\n"+e.ws[1].Key+"\n"), 0o644)
	out, code := e.verify(t, "--witness", keys, "--min-witnesses", "2")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("witnessed: checkpoint of size %d", size)) {
		t.Fatalf("untampered, store's own cosignatures: exit %d\n%s", code, out)
	}

	// The attack: restore the copy.
	if err := os.RemoveAll(e.dir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, backup, e.dir)

	if out, code := e.verify(t); code != 0 {
		t.Fatalf("plain verify should pass on a whole rollback: exit %d\n%s", code, out)
	}
	// The store's own cosignatures rolled back with it: consistent, but
	// older. The witness's copy is what shows the rollback.
	if out, code := e.verify(t, "--witness", keys, "--min-witnesses", "2"); code != 0 {
		t.Fatalf("the rolled-back store is consistent with its own cosignatures: exit %d\n%s", code, out)
	}
	out, code = e.verify(t, "--witness", keys, "--checkpoint", auditor)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("checkpoint %d was cosigned by witness-b.example: the log was truncated or rolled back", size)) {
		t.Fatalf("verify with the witness's copy: exit %d\n%s", code, out)
	}
	// One cosignature is not enough when two are required.
	out, code = e.verify(t, "--witness", keys, "--min-witnesses", "2", "--checkpoint", auditor)
	if code != 0 || strings.Contains(out, "FAILED") {
		t.Fatalf("a checkpoint with one cosignature counted for --min-witnesses 2: exit %d\n%s", code, out)
	}
	expectRefusedStart(t, e, fmt.Sprintf("has cosigned a tree of size %d for this log, but the store has only 22 entries", size))
}

// TestWitnessTamperRewriteWithKey: whoever holds the signing key rewrites
// one entry, recomputes every hash, re-signs every checkpoint and drops
// the cosignatures. Everything the operator controls verifies; the witness
// refuses the forked checkpoint at start-up, and verify with its copy
// fails.
func TestWitnessTamperRewriteWithKey(t *testing.T) {
	e := newWitnessedEnv(t, 1)
	e.run(t, 30)
	auditor := e.auditorCopy(t, 0)
	rewriteStore(t, e, 7)
	if out, code := e.verify(t); code != 0 {
		t.Fatalf("plain verify should pass on a re-signed store: exit %d\n%s", code, out)
	}
	out, code := e.verify(t, "--witness", e.ws[0].Key, "--checkpoint", auditor)
	if code != 1 || !strings.Contains(out, "FAILED: the store's tree of size 32 is not the one cosigned by witness-a.example") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	expectRefusedStart(t, e, "witness witness-a.example refused the store's checkpoint of size 32 as inconsistent with the tree of size 32 it cosigned")
}

// rewriteStore rebuilds the store with entry seq changed, every hash and
// checkpoint recomputed and re-signed with the log's key, no
// cosignatures, and a matching checkpoint file.
func rewriteStore(t *testing.T, e *witnessedEnv, seq int64) {
	t.Helper()
	ctx := context.Background()
	old, err := sqlite.OpenReadOnly(ctx, e.db())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := old.Size(ctx)
	recs, err := old.ReadRecords(ctx, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	cps, _ := old.Checkpoints(ctx)
	old.Close()
	recs[seq].Data = bytes.Replace(recs[seq].Data, []byte(`"model":"m"`), []byte(`"model":"x"`), 1)

	// The rewritten log gets a fresh search index too, as an attacker's
	// rebuild would: a leftover index of the old log is reset or kept
	// depending on timing, which made this test flaky.
	for _, p := range []string{e.db(), sqlite.IndexPath(e.db())} {
		os.Remove(p)
		os.Remove(p + "-wal")
		os.Remove(p + "-shm")
	}
	os.Remove(sqlite.FramesPath(e.db()))
	st, err := sqlite.Open(ctx, e.db())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer, _, err := audit.LoadSigner(filepath.Join(e.dir, "keys", "audit.signer"))
	if err != nil {
		t.Fatal(err)
	}
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) })
	next := 0
	var last audit.Checkpoint
	for i, rec := range recs {
		hs, err := tlog.StoredHashes(int64(i), rec.Data, r)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := audit.ParseEntry(int64(i), rec.Data)
		if err := st.Append(ctx, audit.Batch{Records: []audit.Record{{Seq: int64(i), Data: rec.Data, Entry: e}},
			HashStart: tlog.StoredHashCount(int64(i)), Hashes: hs}); err != nil {
			t.Fatal(err)
		}
		for next < len(cps) && cps[next].Size == int64(i+1) {
			h, err := tlog.TreeHash(int64(i+1), r)
			if err != nil {
				t.Fatal(err)
			}
			if last, err = audit.SignCheckpoint(signer, int64(i+1), h, cps[next].Time); err != nil {
				t.Fatal(err)
			}
			if err := st.PutCheckpoint(ctx, last); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	if err := os.WriteFile(filepath.Join(e.dir, "audit.checkpoint"), last.Note, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(e.dir, "audit.cosigned"))
	os.Remove(filepath.Join(e.dir, "cosignatures.db"))
}

// TestWitnessDownGatewayServes: with every witness unreachable the
// gateway starts, records requests and signs checkpoints; the outage is in
// the log and the metrics.
func TestWitnessDownGatewayServes(t *testing.T) {
	e := newWitnessedEnv(t, 1)
	e.ws[0].Close()
	a, err := e.open(t)
	if err != nil {
		t.Fatalf("an unreachable witness stopped the start: %v", err)
	}
	defer a.close()
	for i := 0; i < 15; i++ {
		if _, err := a.audit.Append(context.Background(), &audit.Entry{Kind: audit.KindRequestAdmitted}); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := a.server.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var up, unreachable float64 = -1, 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "warden_witness_up":
				up = m.GetGauge().GetValue()
			case "warden_witness_submissions_total":
				for _, l := range m.GetLabel() {
					if l.GetName() == "result" && l.GetValue() == "unreachable" {
						unreachable += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if up != 0 || unreachable < 1 || !strings.Contains(e.logs.String(), "unreachable") {
		t.Fatalf("up=%v unreachable=%v; log:\n%s", up, unreachable, e.logs)
	}
}

// TestVerifyWitnessFlags: bad --witness input is a usage error (exit 2),
// and a store without any witnessed checkpoint fails (exit 1).
func TestVerifyWitnessFlags(t *testing.T) {
	e := newWitnessedEnv(t, 1)
	e.run(t, 3)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--checkpoint", "x"}, 2, "--checkpoint needs --witness"},
		{[]string{"--witness", "nope"}, 2, "neither a witness verifier key nor a readable file"},
		{[]string{"--witness", strings.Replace(e.ws[0].Key, "+", "+0", 1)}, 2, "bad verifier key"},
		{[]string{"--witness", e.ws[0].Key, "--min-witnesses", "2"}, 2, "--min-witnesses must be between 1 and"},
		{[]string{"--witness", e.ws[0].Key, "--checkpoint", filepath.Join(e.dir, "missing")}, 2, "no such file"},
		{[]string{"--witness", e.vkeyOfNewWitness(t)}, 1, "FAILED: no checkpoint is cosigned by at least 1 of the given witnesses"},
	} {
		out, code := e.verify(t, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
	// A forged cosigned checkpoint file is refused as input.
	f := filepath.Join(t.TempDir(), "forged")
	os.WriteFile(f, bytes.Replace(e.ws[0].Latest("warden-audit"), []byte("\n5\n"), []byte("\n6\n"), 1), 0o644)
	if out, code := e.verify(t, "--witness", e.ws[0].Key, "--checkpoint", f); code != 2 || !strings.Contains(out, "cosigned checkpoint 1") {
		t.Errorf("forged --checkpoint: exit %d\n%s", code, out)
	}
}

func (e *witnessedEnv) vkeyOfNewWitness(t *testing.T) string {
	return witnesstest.New(t, "stranger.example", e.vkey).Key
}

// TestWitnessPostgresReplicas: two gateways share one PostgreSQL log and
// one witness. Only checkpoints the integrator signed are submitted, a
// replica skips what the other already had cosigned, cosignatures land in
// PostgreSQL, `warden verify --dsn … --witness` accepts them, and after
// the tail is cut (triggers dropped, cosignatures deleted) neither
// replica starts: the witness remembers.
func TestWitnessPostgresReplicas(t *testing.T) {
	dsn := testDatabase(t)
	e := newWitnessedEnv(t, 1)
	dir2 := t.TempDir()
	copyDir(t, filepath.Join(e.dir, "keys"), filepath.Join(dir2, "keys"))
	e.extra = "" // witnessing section is the last block of the config
	pg := func(dir string) *config.Config {
		cfg := e.config(t)
		cfg.DataDir = dir
		cfg.Audit.Store, cfg.Audit.DSN = "postgres", dsn
		cfg.Audit.CheckpointFile = filepath.Join(dir, "audit.checkpoint")
		cfg.Audit.SigningKeyFile = filepath.Join(dir, "keys", "audit.signer")
		cfg.Audit.Witnessing.CosignedFile = filepath.Join(dir, "audit.cosigned")
		cfg.Audit.Witnessing.CosignatureDB = filepath.Join(dir, "cosignatures.db")
		cfg.Approvals.Path = filepath.Join(dir, "approvals.db")
		return cfg
	}
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	ctx := context.Background()
	a1, err := newApp(ctx, pg(e.dir), log)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := newApp(ctx, pg(dir2), log)
	if err != nil {
		a1.close()
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		a := a1
		if i%2 == 1 {
			a = a2
		}
		if _, err := a.audit.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	a2.close()
	a1.close()

	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := st.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.Cosignatures(ctx, "", 0, 1000)
	st.Close()
	if err != nil || len(rows) == 0 || rows[0].Size != latest.Size {
		t.Fatalf("cosignatures in PostgreSQL: %d rows (newest %v), latest checkpoint %d: %v\ngateway logs:\n%s", len(rows), rows, latest.Size, err, e.logs)
	}
	if got := e.ws[0].Size("warden-audit"); got != latest.Size {
		t.Fatalf("witness at %d, latest checkpoint %d\n%s", got, latest.Size, e.logs)
	}
	if strings.Contains(e.logs.String(), "THE WITNESS REFUSED") {
		t.Fatalf("a replica was refused:\n%s", e.logs)
	}
	out, code := runCmd(t, newVerifyCmd(), "--dsn", dsn, "--key", filepath.Join(e.dir, "keys", "audit.verifier"), "--witness", e.ws[0].Key)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("witnessed: checkpoint of size %d", latest.Size)) {
		t.Fatalf("verify --dsn --witness: exit %d\n%s", code, out)
	}

	// Cut the tail, with its checkpoints and cosignatures.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	cut := latest.Size - 5
	for _, s := range []string{
		"SET search_path = warden",
		"ALTER TABLE entries DISABLE TRIGGER USER", "ALTER TABLE hashes DISABLE TRIGGER USER",
		"ALTER TABLE checkpoints DISABLE TRIGGER USER", "ALTER TABLE cosignatures DISABLE TRIGGER USER",
		fmt.Sprintf("DELETE FROM entries WHERE seq >= %d", cut),
		fmt.Sprintf("DELETE FROM hashes WHERE idx >= %d", tlog.StoredHashCount(cut)),
		fmt.Sprintf("DELETE FROM checkpoints WHERE size > %d", cut),
		fmt.Sprintf("DELETE FROM cosignatures WHERE size > %d", cut),
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			conn.Close(ctx)
			t.Fatalf("%s: %v", s, err)
		}
	}
	conn.Close(ctx)
	a, err := newApp(ctx, pg(dir2), log)
	if err == nil {
		a.close()
		t.Fatal("a replica started on a truncated PostgreSQL log")
	}
	// Which evidence refuses first (the witness's answer, or the replica's
	// own cosigned file written by a late final submission) depends on
	// timing; either way the refusal must name the cosigned size.
	msg := err.Error()
	byWitness := strings.Contains(msg, fmt.Sprintf("has cosigned a tree of size %d for this log, but the store has only %d entries", latest.Size, cut))
	byFile := strings.Contains(msg, "entries but checkpoint") && strings.Contains(msg, "was cosigned by") && strings.Contains(msg, "the log was truncated or rolled back")
	if !byWitness && !byFile {
		t.Fatalf("start-up error: %v", err)
	}
}
