package export

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/audit"
)

// TestLogSourceOrder follows a real log while four writers append and the
// log signs checkpoints: every checkpoint is yielded exactly once, right
// between the entries it signs, entries are contiguous, and no entry is
// yielded before a checkpoint covers it.
func TestLogSourceOrder(t *testing.T) {
	l, st, _ := realLog(t)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := l.Append(ctx, sampleRequest(w*100+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); l.Close(ctx) }()

	src := NewLogSource(st, LogSourceOptions{Poll: 2 * time.Millisecond, Chunk: 7})
	next, cps := int64(0), 0
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	for it, err := range src.Follow(fctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if c := it.Checkpoint; c != nil {
			if c.Size != next {
				t.Fatalf("checkpoint of size %d yielded at position %d", c.Size, next)
			}
			cps++
			if next == 402 {
				stop() // the final checkpoint (gateway.started + 400 + gateway.stopped)
			}
			continue
		}
		if it.Entry.Seq != next {
			t.Fatalf("entry %d yielded at position %d", it.Entry.Seq, next)
		}
		// The store's newest checkpoint (the log's in-memory one is set
		// just after it is stored).
		if signed, err := st.LatestCheckpoint(ctx); err != nil || it.Entry.Seq >= signed.Size {
			t.Fatalf("entry %d yielded before a checkpoint signed it (latest %d, %v)", it.Entry.Seq, signed.Size, err)
		}
		next++
	}
	all, err := st.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next != 402 || cps != len(all) {
		t.Fatalf("followed %d entries and %d checkpoints; the log has 402 entries and %d checkpoints", next, cps, len(all))
	}

	// From a position between two checkpoints: the entries from there,
	// then the next checkpoint.
	i := 0
	for i+1 < len(all) && all[i+1].Size-all[i].Size < 2 {
		i++
	}
	if i+1 == len(all) {
		t.Fatalf("no two checkpoints with an entry between them: %d checkpoints", len(all))
	}
	mid, nextCP := all[i].Size+1, all[i+1]
	fctx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	want := mid
	for it, err := range src.Follow(fctx2, mid) {
		if err != nil {
			t.Fatal(err)
		}
		if it.Checkpoint != nil {
			if it.Checkpoint.Size != nextCP.Size || want != nextCP.Size {
				t.Fatalf("from %d: checkpoint %d at %d, want checkpoint %d", mid, it.Checkpoint.Size, want, nextCP.Size)
			}
			break
		}
		if it.Entry.Seq != want {
			t.Fatalf("from %d: entry %d, want %d", mid, it.Entry.Seq, want)
		}
		want++
	}
}

// TestLogSourceCosignatures attaches the witness cosignature lines held
// for a checkpoint to the note it exports, and the note still verifies.
func TestLogSourceCosignatures(t *testing.T) {
	l, st, v := realLog(t)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp := l.Latest()
	wskey, _, err := note.GenerateKey(rand.Reader, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := note.NewSigner(wskey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(cp.Note, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := note.Sign(n, ws) // keeps the log's signature, adds the witness's
	if err != nil {
		t.Fatal(err)
	}
	other, _ := audit.SignCheckpoint(ws, 99, cp.Hash, time.Now()) // another text: ignored
	src := NewLogSource(st, LogSourceOptions{Poll: time.Millisecond, Cosignatures: func(_ context.Context, size int64) ([][]byte, error) {
		if size == cp.Size {
			return [][]byte{cosigned, other.Note, []byte("garbage")}, nil
		}
		return nil, nil
	}})
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	for it, err := range src.Follow(fctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if it.Checkpoint == nil || it.Checkpoint.Size != cp.Size {
			continue
		}
		got := it.Checkpoint.Note
		if !bytes.HasPrefix(got, cp.Note) || strings.Count(string(got), "\n— ") != 2 || !strings.Contains(string(got), "— witness.example ") {
			t.Fatalf("exported note:\n%s\nwant the log's note plus one witness line", got)
		}
		if _, err := audit.OpenCheckpoint(got, v); err != nil {
			t.Fatalf("the cosigned note does not verify with the log key: %v", err)
		}
		if again := MergeNoteSignatures(got, cosigned); !bytes.Equal(again, got) {
			t.Fatal("merging the same cosignature twice added a line")
		}
		return
	}
	t.Fatal("the checkpoint was not yielded")
}
