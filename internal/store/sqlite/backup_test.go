package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// TestBackupUnderWrites copies a store while four writers append to it:
// every copy is a consistent snapshot that verifies (all hashes, every
// checkpoint), each at least as long as the one before, and writers see
// no error while the copy runs. A restored copy verifies too.
func TestBackupUnderWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer, verifier, err := audit.LoadOrCreateKeys(filepath.Join(dir, "keys", "audit.signer"), "backup-test")
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.Config{CheckpointEvery: 50, CheckpointInterval: 20 * time.Millisecond}
	cfg.SetDefaults()
	l, err := audit.Open(ctx, st, cfg, signer, verifier)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)

	var appended atomic.Int64
	var writeErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				e := &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "r", Route: "chat", Method: "POST", Path: "/v1/chat/completions"}
				if _, err := l.Append(ctx, e); err != nil {
					writeErr.Store(err)
					return
				}
				appended.Add(1)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for appended.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}

	var last int64
	var lastCopy string
	for i := 0; i < 3; i++ {
		dst := filepath.Join(dir, "copy", string(rune('a'+i)), "audit.db")
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := sqlite.Backup(ctx, path, dst); err != nil {
			t.Fatal(err)
		}
		for _, side := range []string{"-wal", "-shm"} {
			if _, err := os.Stat(dst + side); err == nil {
				t.Errorf("the copy is not self-contained: %s%s exists", dst, side)
			}
		}
		size := verifyCopy(t, dst, verifier)
		if size < last || size == 0 {
			t.Fatalf("copy %d holds %d entries, the one before %d", i, size, last)
		}
		last, lastCopy = size, dst
		time.Sleep(20 * time.Millisecond)
	}
	if err, _ := writeErr.Load().(error); err != nil {
		t.Fatalf("a writer failed during the backups: %v", err)
	}
	if err := sqlite.Backup(ctx, path, lastCopy); !errors.Is(err, os.ErrExist) {
		t.Fatalf("backup over an existing file: %v", err)
	}

	restored := filepath.Join(dir, "restored", "audit.db")
	if err := sqlite.Restore(ctx, lastCopy, restored); err != nil {
		t.Fatal(err)
	}
	if got := verifyCopy(t, restored, verifier); got != last {
		t.Fatalf("restored %d entries, backup had %d", got, last)
	}
}

func verifyCopy(t *testing.T, path string, v interface {
	Name() string
	KeyHash() uint32
	Verify(msg, sig []byte) bool
}) int64 {
	t.Helper()
	ro, err := sqlite.OpenReadOnly(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := audit.Verify(context.Background(), ro, v, audit.VerifyOptions{SingleWriter: true})
	if err != nil {
		t.Fatalf("%s does not verify: %v", path, err)
	}
	return rep.Size
}

func TestBackupMissingSource(t *testing.T) {
	dir := t.TempDir()
	if err := sqlite.Backup(context.Background(), filepath.Join(dir, "nope.db"), filepath.Join(dir, "copy.db")); err == nil {
		t.Fatal("backup of a missing file succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "copy.db")); err == nil {
		t.Fatal("a failed backup left a file")
	}
}
