package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

// TestHeadCommittedWithBatch: when Append returns, the store already
// holds a signed head covering the entry (committed in the batch's
// transaction), and so does the head file beside the checkpoint file;
// ReadHead returns a head at least that large. Concurrent writers, so
// batches hold many entries.
func TestHeadCommittedWithBatch(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	hk, ok := e.log.Store().(audit.HeadKeeper)
	if !ok {
		t.Fatal("the SQLite store is not a HeadKeeper")
	}
	const writers, each = 16, 25
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ref, err := e.log.Append(ctx, request(w))
				if err != nil {
					errs <- err
					return
				}
				note, err := hk.Head(ctx)
				if err != nil {
					errs <- err
					return
				}
				c, err := audit.OpenCheckpoint(note, e.ver)
				if err != nil {
					errs <- fmt.Errorf("store head %q: %w", note, err)
					return
				}
				if c.Size <= ref.Seq {
					errs <- fmt.Errorf("entry %d acknowledged, but the store's head covers only %d entries", ref.Seq, c.Size)
					return
				}
				file, err := audit.ReadExternal(e.cfg.CheckpointFile)
				if err != nil {
					errs <- err
					return
				}
				if f, err := audit.OpenCheckpoint(file, e.ver); err != nil || f.Size <= ref.Seq {
					errs <- fmt.Errorf("entry %d acknowledged, but the head file holds %d entries (%v)", ref.Seq, f.Size, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := e.log.Stats()
	if st.Batches >= st.Appends {
		t.Logf("no batch held more than one entry (%d batches for %d appends): the machine serialised the writers", st.Batches, st.Appends)
	}
	head, src, err := audit.ReadHeadFrom(ctx, e.log.Store(), "")
	if err != nil {
		t.Fatal(err)
	}
	if src != "frame file's last head" {
		t.Errorf("ReadHeadFrom names the store's head %q, want the frame file's last head", src)
	}
	c, err := audit.OpenCheckpoint(head, e.ver)
	if err != nil || c.Size < int64(writers*each) || c.Size != e.log.Latest().Size {
		t.Fatalf("ReadHead without files = size %d (%v); want the log's latest %d", c.Size, err, e.log.Latest().Size)
	}
}
