package witness_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

// cosignedBy has the witnesses cosign the log's newest checkpoint and
// returns each one's cosigned note, as the submitter would store it.
func cosignedBy(t *testing.T, l *testLog, ws ...*witnesstest.Witness) []witness.Cosignature {
	t.Helper()
	cp, _ := l.Latest(context.Background())
	var out []witness.Cosignature
	for _, w := range ws {
		c := &witness.Client{URL: w.URL, Key: mustVerifier(t, w.Key)}
		old := max(w.Size("warden-audit"), 0)
		proof, err := l.ConsistencyProof(context.Background(), old, cp.Size)
		if old == 0 || old == cp.Size {
			proof, err = nil, nil
		}
		if err != nil {
			t.Fatal(err)
		}
		co, err := c.AddCheckpoint(context.Background(), old, proof, cp, l.ver)
		if err != nil {
			t.Fatal(err)
		}
		s := co.Sigs[0]
		out = append(out, witness.Cosignature{Size: co.Size, Witness: s.Witness, KeyHash: s.KeyHash, Time: s.Time, Note: co.Bytes()})
	}
	return out
}

func TestNewest(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "warden-audit")
	w1, w2, w3 := witnesstest.New(t, "w1", l.vkey), witnesstest.New(t, "w2", l.vkey), witnesstest.New(t, "w3", l.vkey)
	ws := []*witness.Verifier{mustVerifier(t, w1.Key), mustVerifier(t, w2.Key)} // w3 is not trusted
	st := &memStore{}
	put := func(cs []witness.Cosignature) {
		for _, c := range cs {
			st.PutCosignature(ctx, c)
		}
	}
	l.add(t, 5)
	put(cosignedBy(t, l, w1, w2))
	l.add(t, 5)
	put(cosignedBy(t, l, w1, w3))
	l.add(t, 5)
	put(cosignedBy(t, l, w3))

	for _, tc := range []struct {
		min  int
		want int64
	}{{1, 10}, {2, 5}, {3, -1}} {
		c, ok, problems, err := witness.Newest(ctx, st, nil, l.ver, ws, tc.min)
		if err != nil || len(problems) != 0 {
			t.Fatalf("min %d: %v %v", tc.min, err, problems)
		}
		if tc.want < 0 {
			if ok {
				t.Fatalf("min %d: found %d", tc.min, c.Size)
			}
			continue
		}
		if !ok || c.Size != tc.want || len(c.Sigs) < tc.min {
			t.Fatalf("min %d: got %d (%v), want %d", tc.min, c.Size, ok, tc.want)
		}
		if err := witness.CheckTree(ctx, l, c); err != nil {
			t.Fatalf("CheckTree on the untouched log: %v", err)
		}
	}

	// An extra note (the auditor's copy) larger than anything stored.
	l.add(t, 5)
	extra := cosignedBy(t, l, w2)
	c, ok, _, err := witness.Newest(ctx, st, [][]byte{extra[0].Note}, l.ver, ws, 1)
	if err != nil || !ok || c.Size != 20 {
		t.Fatalf("with an extra note: %d %v %v", c.Size, ok, err)
	}
	// An extra note that does not verify is an error, not skipped.
	bad := []byte(strings.Replace(string(extra[0].Note), "\n20\n", "\n21\n", 1))
	if _, _, _, err := witness.Newest(ctx, st, [][]byte{bad}, l.ver, ws, 1); err == nil {
		t.Fatal("a forged extra note was accepted")
	}
	// A stored row that does not verify is skipped and reported.
	st.rows = append(st.rows, witness.Cosignature{Size: 30, Witness: "w1", Note: bad})
	c, ok, problems, err := witness.Newest(ctx, st, nil, l.ver, ws, 1)
	if err != nil || !ok || c.Size != 10 || len(problems) != 1 || !strings.Contains(problems[0], "does not verify") {
		t.Fatalf("bad row: %d %v %v %v", c.Size, ok, problems, err)
	}
}

// TestNewestFork: two log-signed checkpoints of one size with different
// hashes (a fork the key holder made) are a divergence.
func TestNewestFork(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "warden-audit")
	w1, w2 := witnesstest.New(t, "w1", l.vkey), witnesstest.New(t, "w2", l.vkey)
	ws := []*witness.Verifier{mustVerifier(t, w1.Key), mustVerifier(t, w2.Key)}
	l.add(t, 8)
	a := cosignedBy(t, l, w1)
	l.rewrite(t, 3)
	b := cosignedBy(t, l, w2) // w2 never saw the first history
	st := &memStore{}
	st.PutCosignature(ctx, a[0])
	_, _, _, err := witness.Newest(ctx, st, [][]byte{b[0].Note}, l.ver, ws, 2)
	var d *witness.Divergence
	if !errors.As(err, &d) || !strings.Contains(d.Msg, "the log signed two different trees of size 8") {
		t.Fatalf("fork: %v", err)
	}
}

// TestNewestPaging: the newest qualifying checkpoint is found below more
// than a page of rows that do not qualify.
func TestNewestPaging(t *testing.T) {
	ctx := context.Background()
	l := newTestLog(t, "warden-audit")
	w1, w2 := witnesstest.New(t, "w1", l.vkey), witnesstest.New(t, "w2", l.vkey)
	ws := []*witness.Verifier{mustVerifier(t, w1.Key), mustVerifier(t, w2.Key)}
	st := &memStore{}
	l.add(t, 1)
	for _, c := range cosignedBy(t, l, w1, w2) {
		st.PutCosignature(ctx, c)
	}
	for i := 0; i < 510; i++ {
		l.add(t, 1)
		for _, c := range cosignedBy(t, l, w1) {
			st.PutCosignature(ctx, c)
		}
	}
	c, ok, _, err := witness.Newest(ctx, st, nil, l.ver, ws, 2)
	if err != nil || !ok || c.Size != 1 {
		t.Fatalf("got %d %v %v, want size 1", c.Size, ok, err)
	}
	c, ok, _, err = witness.Newest(ctx, st, nil, l.ver, ws, 1)
	if err != nil || !ok || c.Size != 511 {
		t.Fatalf("got %d %v %v, want size 511", c.Size, ok, err)
	}
}
