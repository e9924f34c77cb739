package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
	"github.com/wardenhq/warden/internal/store/framelog"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// migrateEnv is a data dir with keys and an audit config.
type migrateEnv struct {
	cfg    audit.Config
	signer note.Signer
	ver    note.Verifier
}

func newMigrateEnv(t *testing.T) *migrateEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := audit.Config{CheckpointEvery: 7}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "migrate-test")
	if err != nil {
		t.Fatal(err)
	}
	return &migrateEnv{cfg: cfg, signer: s, ver: v}
}

// appendLog opens a Log on st, appends n entries from 4 goroutines (so
// batches vary) and closes the Log (not st).
func (m *migrateEnv) appendLog(t *testing.T, st audit.Store, n int) {
	t.Helper()
	ctx := context.Background()
	l, err := audit.Open(ctx, st, m.cfg, m.signer, m.ver, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				if _, err := l.Append(ctx, storetest.IndexEntry(i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// verifyAll runs audit.Verify (every record, hash and checkpoint) and
// checks inclusion proofs of records on both sides of base, and
// consistency proofs from sizes on both sides, against the tree hash the
// store's hashes give, through the store's ReadHashes.
func (m *migrateEnv) verifyAll(t *testing.T, st audit.Store, want, base int64) {
	t.Helper()
	ctx := context.Background()
	rep, err := audit.Verify(ctx, st, m.ver, audit.VerifyOptions{SingleWriter: true})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Size != want {
		t.Fatalf("Verify covered %d entries, want %d", rep.Size, want)
	}
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) })
	root, err := tlog.TreeHash(want, hr)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Latest.Size == want && rep.Latest.Hash != root {
		t.Fatalf("the latest checkpoint's hash is not the tree's")
	}
	recs, err := st.ReadRecords(ctx, 0, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{0, base - 1, base, base + 1, want - 1} {
		if n < 0 || n >= want {
			continue
		}
		p, err := tlog.ProveRecord(want, n, hr)
		if err != nil {
			t.Fatalf("prove record %d: %v", n, err)
		}
		if err := tlog.CheckRecord(p, want, root, n, tlog.RecordHash(recs[n].Data)); err != nil {
			t.Fatalf("record %d: %v", n, err)
		}
		if n == 0 {
			continue
		}
		old, err := tlog.TreeHash(n, hr)
		if err != nil {
			t.Fatal(err)
		}
		tp, err := tlog.ProveTree(want, n, hr)
		if err != nil {
			t.Fatalf("prove tree %d: %v", n, err)
		}
		if err := tlog.CheckTree(tp, want, root, n, old); err != nil {
			t.Fatalf("tree %d → %d: %v", n, want, err)
		}
	}
}

// TestMigrateOldStore: a store written by the schema-version-2 append
// path (entries and hashes tables, no frame file) is opened by Open: the
// frame file is made with base = its size, the tables stay as the read
// prefix, appends go to the frames, and everything verifies across the
// boundary, after a reopen and from a read-only open too.
func TestMigrateOldStore(t *testing.T) {
	ctx := context.Background()
	m := newMigrateEnv(t)
	path := m.cfg.Path
	old, err := sqlite.OpenV2ForTest(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	m.appendLog(t, old, 40)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sqlite.FramesPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old store has a frame file: %v", err)
	}
	// The log's own entries (gateway.started, .stopped) are in it too.
	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := ro.Size(ctx)
	m.verifyAll(t, ro, base, base)
	ro.Close()
	if base < 40 {
		t.Fatalf("old store size %d", base)
	}

	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fr, _, err := framelog.OpenReadOnly(sqlite.FramesPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if fr.Base() != base || fr.Frames() != 0 {
		t.Fatalf("frame file base %d with %d frames, want base %d and none", fr.Base(), fr.Frames(), base)
	}
	fr.Close()
	if fi, err := os.Stat(sqlite.FramesPath(path)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("frame file mode: %v, %v", fi.Mode(), err)
	}
	m.appendLog(t, st, 50)
	size, err := st.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m.verifyAll(t, st, size, base)
	// The tables did not grow: new records are in the frames only.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var tableSize, marker, version int64
	if err := db.QueryRow("SELECT COALESCE(MAX(seq)+1, 0) FROM entries").Scan(&tableSize); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT base FROM frames_base").Scan(&marker); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if tableSize != base || marker != base || version != 3 {
		t.Fatalf("entries table size %d, marker %d, version %d; want %d, %d, 3", tableSize, marker, version, base, base)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened, appended to again, and read-only.
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	m.appendLog(t, st, 10)
	size, _ = st.Size(ctx)
	m.verifyAll(t, st, size, base)
	// Searches find records on both sides: on the writable store (whose
	// Search first catches the index up with the log), then read-only
	// (which reads the index as the writer left it: Close does not wait
	// for the indexer, so the searches above are what make it whole).
	ids := []string{storetest.IndexEntry(1).RequestID, storetest.IndexEntry(45).RequestID}
	search := func(st *sqlite.Store) {
		t.Helper()
		for _, id := range ids {
			recs, err := st.Search(ctx, audit.Query{RequestID: id})
			if err != nil || len(recs) == 0 {
				t.Fatalf("search %s: %d, %v", id, len(recs), err)
			}
		}
	}
	search(st)
	st.Close()
	ro, err = sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	m.verifyAll(t, ro, size, base)
	search(ro)
}

// TestMigrateCrashStates: the states a crash between making the frame
// file and committing the marker can leave, and the ones it cannot.
func TestMigrateCrashStates(t *testing.T) {
	ctx := context.Background()
	oldStore := func(t *testing.T) (*migrateEnv, int64) {
		m := newMigrateEnv(t)
		old, err := sqlite.OpenV2ForTest(ctx, m.cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		m.appendLog(t, old, 12)
		n, _ := old.Size(ctx)
		old.Close()
		return m, n
	}
	t.Run("empty frame file at the size is adopted", func(t *testing.T) {
		m, n := oldStore(t)
		fr, err := framelog.Create(sqlite.FramesPath(m.cfg.Path), n)
		if err != nil {
			t.Fatal(err)
		}
		fr.Close()
		st, err := sqlite.Open(ctx, m.cfg.Path)
		if err != nil {
			t.Fatalf("Open did not adopt the empty frame file: %v", err)
		}
		m.appendLog(t, st, 5)
		size, _ := st.Size(ctx)
		m.verifyAll(t, st, size, n)
		st.Close()
	})
	t.Run("frame file at another base is refused", func(t *testing.T) {
		m, n := oldStore(t)
		fr, err := framelog.Create(sqlite.FramesPath(m.cfg.Path), n-1)
		if err != nil {
			t.Fatal(err)
		}
		fr.Close()
		if st, err := sqlite.Open(ctx, m.cfg.Path); err == nil || !strings.Contains(err.Error(), "marker") {
			if st != nil {
				st.Close()
			}
			t.Fatalf("Open of a store with a foreign frame file: %v, want a refusal", err)
		}
		if _, err := sqlite.OpenReadOnly(ctx, m.cfg.Path); err == nil {
			t.Fatal("OpenReadOnly of a store with a foreign frame file succeeded")
		}
	})
	t.Run("missing frame file is refused", func(t *testing.T) {
		m, _ := oldStore(t)
		st, err := sqlite.Open(ctx, m.cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		m.appendLog(t, st, 5)
		st.Close()
		fp := sqlite.FramesPath(m.cfg.Path)
		if err := os.Rename(fp, fp+".gone"); err != nil {
			t.Fatal(err)
		}
		if st, err := sqlite.Open(ctx, m.cfg.Path); err == nil || !strings.Contains(err.Error(), "missing") {
			if st != nil {
				st.Close()
			}
			t.Fatalf("Open without the frame file: %v, want a refusal", err)
		}
		// Nothing was created in its place.
		if _, err := os.Stat(fp); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a frame file appeared: %v", err)
		}
	})
}

// TestOpenCutsTornTail: a partial frame at the end of the frame file (a
// crash during a write) is cut at Open, and the store goes on.
func TestOpenCutsTornTail(t *testing.T) {
	ctx := context.Background()
	m := newMigrateEnv(t)
	st, err := sqlite.Open(ctx, m.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	m.appendLog(t, st, 20)
	size, _ := st.Size(ctx)
	st.Close()
	fp := sqlite.FramesPath(m.cfg.Path)
	// The file is preallocated: a torn write lands at the frames' end (the
	// last non-zero byte), not at EOF.
	b, err := os.ReadFile(fp)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fp, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("WFR1 torn"), int64(len(bytes.TrimRight(b, "\x00")))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ro, err := sqlite.OpenReadOnly(ctx, m.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if ro.Torn() != 9 {
		t.Fatalf("read-only open reports a torn tail of %d bytes, want 9", ro.Torn())
	}
	ro.Close()
	st, err = sqlite.Open(ctx, m.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m.appendLog(t, st, 3)
	got, _ := st.Size(ctx)
	m.verifyAll(t, st, got, 0)
	if got <= size {
		t.Fatalf("size %d after reopening at %d", got, size)
	}
}
