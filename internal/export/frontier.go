package export

import (
	"context"
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// frontier is the right edge of an RFC 6962 Merkle tree of n leaves: the
// roots of its complete subtrees, largest (leftmost) first — one per set
// bit of n. From it and the leaves that follow, the tree hash at any
// later size can be computed without the earlier leaves. (The same
// representation as the frontier of an audit segment.)
type frontier struct {
	n      int64
	hashes []tlog.Hash
}

// add appends a leaf hash.
func (f *frontier) add(leaf tlog.Hash) {
	h := leaf
	for n := f.n; n&1 == 1; n >>= 1 {
		h = tlog.NodeHash(f.hashes[len(f.hashes)-1], h)
		f.hashes = f.hashes[:len(f.hashes)-1]
	}
	f.hashes = append(f.hashes, h)
	f.n++
}

// root returns the tree hash of the n leaves.
func (f *frontier) root() tlog.Hash {
	if f.n == 0 {
		h, _ := tlog.TreeHash(0, nil)
		return h
	}
	h := f.hashes[len(f.hashes)-1]
	for i := len(f.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(f.hashes[i], h)
	}
	return h
}

// snapshot returns a copy of the hashes, never nil (an empty tree has an
// empty, but present, frontier).
func (f *frontier) snapshot() []tlog.Hash {
	return append(make([]tlog.Hash, 0, len(f.hashes)), f.hashes...)
}

// newFrontier checks that hashes is a well-formed frontier of size n.
func newFrontier(n int64, hashes []tlog.Hash) (frontier, error) {
	if n < 0 || len(hashes) != bits.OnesCount64(uint64(n)) {
		return frontier{}, fmt.Errorf("a frontier of a tree of %d leaves has %d hashes, not %d", n, bits.OnesCount64(uint64(max(n, 0))), len(hashes))
	}
	return frontier{n: n, hashes: append([]tlog.Hash(nil), hashes...)}, nil
}

// loadFrontier reads the frontier of the tree of size n from src.
func loadFrontier(ctx context.Context, src Source, n int64) (frontier, error) {
	if n == 0 {
		return frontier{}, nil
	}
	hs, err := src.ReadHashes(ctx, audit.FrontierIndexes(n))
	if err != nil {
		return frontier{}, fmt.Errorf("export: read the tree frontier at %d: %w", n, err)
	}
	return newFrontier(n, hs)
}
