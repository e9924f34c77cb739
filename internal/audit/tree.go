package audit

import (
	"context"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// tree is the right edge of an RFC 6962 Merkle tree: the roots of its
// complete subtrees, largest (leftmost) first. That is all a writer needs
// to compute the stored hashes of the next record (tlog.StoredHashes reads
// exactly these) and the tree hash, without reading the store.
type tree struct {
	n        int64
	frontier []tlog.Hash
}

// add appends a record and returns its stored hashes in tlog.StoredHashes
// order: the leaf hash, then one hash per completed subtree.
func (t *tree) add(data []byte) []tlog.Hash {
	h := tlog.RecordHash(data)
	out := []tlog.Hash{h}
	for n := t.n; n&1 == 1; n >>= 1 {
		left := t.frontier[len(t.frontier)-1]
		t.frontier = t.frontier[:len(t.frontier)-1]
		h = tlog.NodeHash(left, h)
		out = append(out, h)
	}
	t.frontier = append(t.frontier, h)
	t.n++
	return out
}

// root returns the tree hash of the records added so far.
func (t *tree) root() tlog.Hash {
	if t.n == 0 {
		h, _ := tlog.TreeHash(0, nil)
		return h
	}
	h := t.frontier[len(t.frontier)-1]
	for i := len(t.frontier) - 2; i >= 0; i-- {
		h = tlog.NodeHash(t.frontier[i], h)
	}
	return h
}

func (t *tree) clone() tree {
	return tree{n: t.n, frontier: append([]tlog.Hash(nil), t.frontier...)}
}

// FrontierIndexes returns the stored-hash indexes (tlog.StoredHashIndex)
// of the complete subtrees of a tree of size n, leftmost first: the hashes
// from which the tree can be extended (the export reads them too).
func FrontierIndexes(n int64) []int64 {
	var idx []int64
	start := int64(0)
	for level := 62; level >= 0; level-- {
		if n&(1<<level) != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, start>>level))
			start += 1 << level
		}
	}
	return idx
}

// loadTree reads the frontier of the tree of size n from the store.
func loadTree(ctx context.Context, st Store, n int64) (tree, error) {
	idx := FrontierIndexes(n)
	if len(idx) != bits.OnesCount64(uint64(n)) {
		return tree{}, fmt.Errorf("audit: bad frontier for size %d", n)
	}
	hs, err := st.ReadHashes(ctx, idx)
	if err != nil {
		return tree{}, fmt.Errorf("audit: load tree at size %d: %w", n, err)
	}
	return tree{n: n, frontier: hs}, nil
}

// hashReader adapts a Store to tlog.HashReader for one context.
func hashReader(ctx context.Context, st Store) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return st.ReadHashes(ctx, idx)
	})
}
