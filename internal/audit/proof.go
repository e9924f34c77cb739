package audit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrProof: a proof does not verify. CheckEntryProof and
// CheckConsistencyProof wrap it, so errors.Is(err, ErrProof) works
// (tlog's own errors are not exported).
var ErrProof = errors.New("audit: proof does not verify")

// ProveEntry returns the inclusion proof of entry seq in the tree of size
// treeSize (seq < treeSize <= size of the log).
func (l *Log) ProveEntry(ctx context.Context, seq, treeSize int64) (tlog.RecordProof, error) {
	if seq < 0 || seq >= treeSize {
		return nil, fmt.Errorf("audit: prove entry %d in tree %d: out of range: %w", seq, treeSize, ErrNotFound)
	}
	p, err := tlog.ProveRecord(treeSize, seq, hashReader(ctx, l.st))
	if err != nil {
		return nil, fmt.Errorf("audit: prove entry %d in tree %d: %w", seq, treeSize, err)
	}
	return p, nil
}

// ProveConsistency returns the proof that the tree of size n is a prefix
// of the tree of size m (0 < n <= m).
func (l *Log) ProveConsistency(ctx context.Context, n, m int64) (tlog.TreeProof, error) {
	if n <= 0 || n > m {
		return nil, fmt.Errorf("audit: prove consistency %d..%d: out of range: %w", n, m, ErrNotFound)
	}
	p, err := tlog.ProveTree(m, n, hashReader(ctx, l.st))
	if err != nil {
		return nil, fmt.Errorf("audit: prove consistency %d..%d: %w", n, m, err)
	}
	return p, nil
}

// CheckEntryProof checks that data is entry seq of the tree in cp.
func CheckEntryProof(p tlog.RecordProof, cp Checkpoint, seq int64, data []byte) error {
	if err := tlog.CheckRecord(p, cp.Size, cp.Hash, seq, tlog.RecordHash(data)); err != nil {
		return fmt.Errorf("%w: entry %d in tree %d: %v", ErrProof, seq, cp.Size, err)
	}
	return nil
}

// CheckConsistencyProof checks that older is a prefix of newer.
func CheckConsistencyProof(p tlog.TreeProof, older, newer Checkpoint) error {
	if err := tlog.CheckTree(p, newer.Size, newer.Hash, older.Size, older.Hash); err != nil {
		return fmt.Errorf("%w: tree %d is not a prefix of tree %d: %v", ErrProof, older.Size, newer.Size, err)
	}
	return nil
}

// Entry returns entry seq and its canonical bytes.
func (l *Log) Entry(ctx context.Context, seq int64) (*Entry, []byte, error) {
	recs, err := l.st.ReadRecords(ctx, seq, seq+1)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: entry %d: %w", seq, err)
	}
	e, err := ParseEntry(seq, recs[0].Data)
	if err != nil {
		return nil, nil, err
	}
	return e, recs[0].Data, nil
}

// Search returns the entries matching q (see Query): the store's search
// index selects them, and entries that do not meet q's filters (an
// altered index row; see Query.Matches) are left out.
func (l *Log) Search(ctx context.Context, q Query) ([]*Entry, error) {
	recs, err := l.st.Search(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audit: search: %w", err)
	}
	out := make([]*Entry, 0, len(recs))
	for _, r := range recs {
		e, err := ParseEntry(r.Seq, r.Data)
		if err != nil {
			return nil, err
		}
		if q.Matches(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Checkpoints returns every stored checkpoint, by ascending size.
func (l *Log) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	cps, err := l.st.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoints: %w", err)
	}
	return cps, nil
}
