package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog"
)

// openFlushStore opens a new store in a temporary directory, with a
// signer for flushBatch. It returns the directory (to reopen the store
// from), the store, closed when the test ends, and the signer and its
// verifier.
func openFlushStore(t *testing.T, origin string) (string, *Store, note.Signer, note.Verifier) {
	t.Helper()
	dir := t.TempDir()
	st, err := Open(context.Background(), filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signer, verifier, err := audit.LoadOrCreateKeys(filepath.Join(dir, "keys", audit.SignerFile), origin)
	if err != nil {
		t.Fatal(err)
	}
	return dir, st, signer, verifier
}

// flushBatch builds the batch of records [from, to) after the records
// already hashed into hs (which it extends), with its signed head.
func flushBatch(t testing.TB, s note.Signer, hs *[]tlog.Hash, from, to int64) audit.Batch {
	t.Helper()
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = (*hs)[x]
		}
		return out, nil
	})
	b := audit.Batch{HashStart: tlog.StoredHashCount(from)}
	for seq := from; seq < to; seq++ {
		e := &audit.Entry{V: 1, Kind: audit.KindGatewayStarted, ID: "e" + string(rune('a'+seq)), Time: time.Unix(seq, 0).UTC()}
		data, err := audit.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = seq
		add, err := tlog.StoredHashes(seq, data, reader)
		if err != nil {
			t.Fatal(err)
		}
		*hs = append(*hs, add...)
		b.Records = append(b.Records, audit.Record{Seq: seq, Data: data, Entry: e})
		b.Hashes = append(b.Hashes, add...)
	}
	root, err := tlog.TreeHash(to, reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := audit.SignCheckpoint(s, to, root, time.Unix(to, 0))
	if err != nil {
		t.Fatal(err)
	}
	b.Head, b.HeadHistory = &c, true
	return b
}

// TestFlushVisibility: a batch committed by AppendNoFlush is not in the
// store's reads (size, records, hashes, checkpoints, head) until Flush;
// Append is both (decision 026).
func TestFlushVisibility(t *testing.T) {
	ctx := context.Background()
	_, st, signer, verifier := openFlushStore(t, "flush-test")
	var hs []tlog.Hash
	if err := st.Append(ctx, flushBatch(t, signer, &hs, 0, 3)); err != nil {
		t.Fatal(err)
	}
	b := flushBatch(t, signer, &hs, 3, 5)
	if err := st.AppendNoFlush(ctx, b); err != nil {
		t.Fatal(err)
	}
	want := func(n int64) {
		t.Helper()
		if got, err := st.Size(ctx); err != nil || got != n {
			t.Fatalf("Size = %d, %v; want %d", got, err, n)
		}
		if _, err := st.ReadRecords(ctx, 0, 5); (n == 5) != (err == nil) {
			t.Fatalf("ReadRecords [0, 5) at size %d: %v", n, err)
		}
		if _, err := st.ReadHashes(ctx, []int64{tlog.StoredHashCount(5) - 1}); (n == 5) != (err == nil) {
			t.Fatalf("ReadHashes of record 4 at size %d: %v", n, err)
		}
		c, err := st.LatestCheckpoint(ctx)
		if err != nil || c.Size != n {
			t.Fatalf("LatestCheckpoint = %d, %v; want %d", c.Size, err, n)
		}
		cps, err := st.Checkpoints(ctx)
		if err != nil || cps[len(cps)-1].Size != n {
			t.Fatalf("Checkpoints end at %d, %v; want %d", cps[len(cps)-1].Size, err, n)
		}
		h, err := st.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := audit.OpenCheckpoint(h, verifier); err != nil || c.Size != n {
			t.Fatalf("Head has size %d (%v), want %d", c.Size, err, n)
		}
	}
	want(3)
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want(5)
}

// TestFlushFailureFailsClosed: once a flush fails, what reached the disk
// is unknown; the append fails and so does every later call, reads
// included, until the store is reopened. Both syncs are covered: the
// frame file's (batches) and the WAL's (PutCheckpoint).
func TestFlushFailureFailsClosed(t *testing.T) {
	ctx := context.Background()
	failedAfter := func(t *testing.T, st *Store, signer note.Signer, hs *[]tlog.Hash, next int64) {
		t.Helper()
		if _, err := st.Size(ctx); !errors.Is(err, errFlushFailed) {
			t.Fatalf("Size after a failed flush: %v, want errFlushFailed", err)
		}
		if err := st.Append(ctx, flushBatch(t, signer, hs, next, next+1)); !errors.Is(err, errFlushFailed) {
			t.Fatalf("Append after a failed flush: %v, want errFlushFailed", err)
		}
		if err := st.PutCheckpoint(ctx, audit.Checkpoint{Size: 1, Note: []byte("m")}); !errors.Is(err, errFlushFailed) {
			t.Fatalf("PutCheckpoint after a failed flush: %v, want errFlushFailed", err)
		}
		if err := st.Flush(ctx); !errors.Is(err, errFlushFailed) {
			t.Fatalf("Flush after a failed flush: %v, want errFlushFailed", err)
		}
	}
	t.Run("frames", func(t *testing.T) {
		_, st, signer, _ := openFlushStore(t, "flush-test")
		var hs []tlog.Hash
		if err := st.Append(ctx, flushBatch(t, signer, &hs, 0, 2)); err != nil {
			t.Fatal(err)
		}
		if err := st.AppendNoFlush(ctx, flushBatch(t, signer, &hs, 2, 4)); err != nil {
			t.Fatal(err)
		}
		// A read-only handle in place of the frame file: its Sync fails.
		ro, _, err := framelog.OpenReadOnly(FramesPath(st.path))
		if err != nil {
			t.Fatal(err)
		}
		st.idx.Close() // nothing reads the store while its frame file is swapped
		st.fl.mu.Lock()
		rw := st.fr
		st.fr = ro
		st.fl.mu.Unlock()
		t.Cleanup(func() { rw.Close() })
		if err := st.Flush(ctx); err == nil {
			t.Fatal("Flush succeeded although the frame file's sync failed")
		}
		failedAfter(t, st, signer, &hs, 4)
	})
	t.Run("wal", func(t *testing.T) {
		dir, st, signer, _ := openFlushStore(t, "flush-test")
		var hs []tlog.Hash
		if err := st.Append(ctx, flushBatch(t, signer, &hs, 0, 2)); err != nil {
			t.Fatal(err)
		}
		// A directory where the WAL should be: opening it to sync fails.
		st.fl.mu.Lock()
		if st.fl.wal != nil {
			st.fl.wal.Close()
			st.fl.wal = nil
		}
		bad := filepath.Join(dir, "not-a-wal")
		if err := os.Mkdir(bad, 0o700); err != nil {
			t.Fatal(err)
		}
		st.fl.walPath = bad
		st.fl.mu.Unlock()
		if err := st.PutCheckpoint(ctx, audit.Checkpoint{Size: 1, Note: []byte("n")}); err == nil || errors.Is(err, audit.ErrConflict) {
			t.Fatalf("PutCheckpoint: %v, want its flush to fail", err)
		}
		failedAfter(t, st, signer, &hs, 2)
	})
}

// TestFlushCloseRace: Flush and Close at once neither deadlock nor
// reopen the WAL after Close (run with -race).
func TestFlushCloseRace(t *testing.T) {
	ctx := context.Background()
	for range 20 {
		st, err := Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
		if err != nil {
			t.Fatal(err)
		}
		st.mu.Lock()
		st.fl.commits++ // something to flush
		st.mu.Unlock()
		done := make(chan struct{})
		go func() {
			defer close(done)
			st.Flush(ctx)
		}()
		st.Close()
		<-done
		if st.fl.wal != nil {
			t.Fatal("the WAL is open after Close")
		}
	}
}

// TestFlushFollowsReplacedWAL: a WAL deleted and created again under the
// same name (SQLite deletes it when the last connection closes) is
// noticed although the old one is still open: the next flush syncs the
// new file, not the deleted one (the fstat shortcut of syncWAL only
// applies while the open file still has its name).
func TestFlushFollowsReplacedWAL(t *testing.T) {
	dir := t.TempDir()
	f := &flusher{walPath: filepath.Join(dir, "x-wal"), dbPath: filepath.Join(dir, "x")}
	for _, p := range []string{f.walPath, f.dbPath} {
		if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.syncWAL(); err != nil {
		t.Fatal(err)
	}
	old := f.wal
	if old == nil {
		t.Fatal("the WAL is not kept open")
	}
	if err := f.syncWAL(); err != nil || f.wal != old {
		t.Fatalf("second flush: err %v, reopened %v", err, f.wal != old)
	}
	if err := os.Remove(f.walPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.walPath, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.syncWAL(); err != nil {
		t.Fatal(err)
	}
	cur, err := f.wal.Stat()
	if err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(f.walPath)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(cur, now) {
		t.Fatal("the flush synced the deleted WAL, not the file now at its path")
	}
	// Deleted and not created again: the database file is synced and
	// nothing stays open.
	if err := os.Remove(f.walPath); err != nil {
		t.Fatal(err)
	}
	if err := f.syncWAL(); err != nil {
		t.Fatal(err)
	}
	if f.wal != nil {
		t.Fatal("a deleted WAL is still open")
	}
	f.close()
}
