package witness_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

// TestOmniwitnessProtocol walks the protocol against the real
// transparency-dev witness: the same answers as the spec (and our
// in-process witness) give, and cosignatures our verifier accepts.
// Skipped without the binary unless WARDEN_TEST_REQUIRE_WITNESS=1.
func TestOmniwitnessProtocol(t *testing.T) {
	l := newTestLog(t, "warden-audit")
	w := witnesstest.Omniwitness(t, "witness-a.test", l.vkey)
	c := &witness.Client{URL: w.URL, Key: mustVerifier(t, w.Key)}
	ctx := context.Background()

	cp5 := l.add(t, 5)
	co, err := c.AddCheckpoint(ctx, 0, nil, cp5, l.ver)
	if err != nil {
		t.Fatalf("first checkpoint: %v\n%s", err, w.Output())
	}
	if co.Size != 5 || len(co.Sigs) != 1 || co.Sigs[0].Witness != "witness-a.test" {
		t.Fatalf("cosigned = %+v", co)
	}
	cp12 := l.add(t, 7)
	proof, _ := l.ConsistencyProof(ctx, 5, 12)
	if _, err := c.AddCheckpoint(ctx, 5, proof, cp12, l.ver); err != nil {
		t.Fatalf("extension with a proof: %v", err)
	}
	if _, err := c.AddCheckpoint(ctx, 12, nil, cp12, l.ver); err != nil {
		t.Fatalf("same checkpoint again: %v", err)
	}
	// Stale old size: 409 with the witness's size.
	cp20 := l.add(t, 8)
	proof, _ = l.ConsistencyProof(ctx, 5, 20)
	_, err = c.AddCheckpoint(ctx, 5, proof, cp20, l.ver)
	var ce *witness.ConflictError
	if !errors.As(err, &ce) || ce.Size != 12 {
		t.Fatalf("stale old size: %v, want 409 with size 12", err)
	}
	// A rolled-back log: its checkpoint is smaller than what the witness
	// cosigned; old 0 gets 409 with the larger size.
	small := l.truncate(t, 9)
	if _, err := c.AddCheckpoint(ctx, 0, nil, small, l.ver); !errors.As(err, &ce) || ce.Size != 12 {
		t.Fatalf("rolled-back log: %v, want 409 with size 12", err)
	}
	// A rewritten history: 422.
	l.mu.Lock()
	l.fork++ // other content after entry 9
	l.mu.Unlock()
	l.add(t, 11)
	fork, _ := l.Latest(ctx)
	proof, _ = l.ConsistencyProof(ctx, 12, 20)
	if _, err := c.AddCheckpoint(ctx, 12, proof, fork, l.ver); !errors.Is(err, witness.ErrInconsistent) {
		t.Fatalf("fork: %v, want ErrInconsistent (422)", err)
	}
	// Same size, other hash: 422.
	fork12 := l.truncate(t, 12)
	if _, err := c.AddCheckpoint(ctx, 12, nil, fork12, l.ver); !errors.Is(err, witness.ErrInconsistent) {
		t.Fatalf("same size, other hash: %v, want ErrInconsistent (422)", err)
	}
	// An unknown origin: the spec says 404; this omniwitness build with
	// SQLite storage answers 500 (its log lookup turns "no row" into an
	// error). Either way the submission fails and is counted, and the
	// gateway keeps serving.
	stranger := newTestLog(t, "another-log")
	_, err = c.AddCheckpoint(ctx, 0, nil, stranger.add(t, 1), stranger.ver)
	var se *witness.StatusError
	if !errors.Is(err, witness.ErrUnknownLog) && !(errors.As(err, &se) && se.Code == 500) {
		t.Fatalf("unknown origin: %v, want 404 (or this build's 500)", err)
	}
	// The witness's stored view is the checkpoint of size 12 it cosigned,
	// and it verifies with our code.
	held, err := witness.OpenCosigned(w.Latest(t, "warden-audit"), l.ver, []*witness.Verifier{mustVerifier(t, w.Key)})
	if err != nil || held.Size != 12 || len(held.Sigs) != 1 {
		t.Fatalf("the witness's own copy: %+v %v", held, err)
	}
}
