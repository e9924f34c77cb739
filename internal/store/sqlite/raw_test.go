package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// TestAppendTxnRollsBack: the append transaction runs on the driver
// connection (raw.go, decision 033), so its BEGIN, ROLLBACK and COMMIT
// are this package's to get right. A batch that fails after its rows
// were inserted leaves none of them, the connection is left outside any
// transaction (the database/sql path, PutCheckpoint, begins its own),
// and the same batch then commits; a batch whose context ended before
// it ran writes nothing.
func TestAppendTxnRollsBack(t *testing.T) {
	ctx := context.Background()
	_, st, signer, _ := openFlushStore(t, "raw-test")
	var hs []tlog.Hash
	if err := st.Append(ctx, flushBatch(t, signer, &hs, 0, 3)); err != nil {
		t.Fatal(err)
	}
	good := flushBatch(t, signer, &hs, 3, 7)

	// Records and hashes are inserted before the head is checked: a head
	// of the wrong size fails the batch after its inserts ran.
	bad := good
	wrong := *good.Head
	wrong.Size++
	bad.Head = &wrong
	if err := st.Append(ctx, bad); err == nil {
		t.Fatal("a batch with a head of the wrong size was stored")
	}
	if n, err := st.Size(ctx); err != nil || n != 3 {
		t.Fatalf("after the failed batch: size %d, %v; want 3", n, err)
	}
	// Outside a transaction: database/sql's BEGIN on the same connection.
	cp := audit.Checkpoint{Size: 2, Hash: tlog.Hash{1}, Time: time.Unix(2, 0), Note: []byte("n")}
	if err := st.PutCheckpoint(ctx, cp); err != nil {
		t.Fatalf("PutCheckpoint after the failed batch: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.Append(cctx, good); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with an ended context: %v, want context.Canceled", err)
	}

	// The rows of the failed batches are gone: the same seqs and hash
	// indexes insert again (their primary keys would conflict otherwise).
	if err := st.Append(ctx, good); err != nil {
		t.Fatalf("the batch after the failures: %v", err)
	}
	if n, err := st.Size(ctx); err != nil || n != 7 {
		t.Fatalf("size %d, %v; want 7", n, err)
	}
	recs, err := st.ReadRecords(ctx, 3, 7)
	if err != nil || len(recs) != 4 {
		t.Fatalf("ReadRecords: %d, %v", len(recs), err)
	}
	got, err := st.ReadHashes(ctx, []int64{good.HashStart, good.HashStart + int64(len(good.Hashes)) - 1})
	if err != nil || got[0] != good.Hashes[0] || got[1] != good.Hashes[len(good.Hashes)-1] {
		t.Fatalf("ReadHashes: %v, %v", got, err)
	}
	head, err := st.Head(ctx)
	if err != nil || string(head) != string(good.Head.Note) {
		t.Fatalf("Head after the batch: %q, %v", head, err)
	}

	// A conflicting batch (already stored) fails as a conflict and leaves
	// the store as it was.
	if err := st.Append(ctx, good); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("the same batch again: %v, want ErrConflict", err)
	}
	if err := st.Append(ctx, flushBatch(t, signer, &hs, 7, 8)); err != nil {
		t.Fatalf("the batch after the conflict: %v", err)
	}
}
