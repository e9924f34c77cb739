package audit

import (
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestTreeMatchesTlog checks the frontier tree against tlog's own
// StoredHashes and TreeHash for every size up to 300.
func TestTreeMatchesTlog(t *testing.T) {
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(stored)) {
				return nil, fmt.Errorf("no hash %d", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	var tr tree
	for n := int64(0); n < 300; n++ {
		data := []byte(fmt.Sprintf("record %d", n))
		want, err := tlog.StoredHashes(n, data, r)
		if err != nil {
			t.Fatal(err)
		}
		got := tr.add(data)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("record %d: stored hashes %v, want %v", n, got, want)
		}
		stored = append(stored, want...)
		th, err := tlog.TreeHash(n+1, r)
		if err != nil {
			t.Fatal(err)
		}
		if tr.root() != th {
			t.Fatalf("size %d: root %v, want %v", n+1, tr.root(), th)
		}
		// The frontier indexes point at the frontier hashes.
		for i, x := range FrontierIndexes(n + 1) {
			if stored[x] != tr.frontier[i] {
				t.Fatalf("size %d: frontier %d at index %d differs", n+1, i, x)
			}
		}
	}
	empty, _ := tlog.TreeHash(0, r)
	if (&tree{}).root() != empty {
		t.Fatal("empty tree root differs from tlog")
	}
}
