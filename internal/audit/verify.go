package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Divergence is the first place where a log fails verification. Verify,
// VerifySegment and Open return it (wrapped) so callers can point at the
// place: errors.As(err, &d).
type Divergence struct {
	// Seq is the entry concerned, or -1.
	Seq int64
	// CheckpointSize is the size of the checkpoint concerned, or -1.
	CheckpointSize int64
	// Msg says what differs, in words an operator can act on.
	Msg string
}

func (d *Divergence) Error() string { return "audit: verification failed: " + d.Msg }

func diverge(seq, cp int64, format string, args ...any) error {
	return &Divergence{Seq: seq, CheckpointSize: cp, Msg: fmt.Sprintf(format, args...)}
}

// Report summarises a successful verification.
type Report struct {
	// From and Size: entries [From, Size) were verified (From is 0 for a
	// store).
	From, Size int64
	// Checkpoints is the number of signed checkpoints checked.
	Checkpoints int
	// Latest is the checkpoint with the largest size (zero if none).
	Latest Checkpoint
	// UnsignedTail is the number of entries after Latest: verified against
	// the stored hashes but not yet covered by a signature (a crash before
	// the next checkpoint leaves some; Open signs them).
	UnsignedTail int64
	// Elapsed is how long verification took.
	Elapsed time.Duration
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// External is a signed checkpoint kept outside the store (the
	// checkpoint file). It must be consistent with the store: a store
	// behind it was rolled back or truncated.
	External []byte
	// ExternalSource names where External came from in messages
	// (ReadHeadFrom's source: "checkpoint file", "head file", "frame
	// file's last head", …); empty means "checkpoint file".
	ExternalSource string
	// SingleWriter says one gateway writes this store (SQLite). Then an
	// unsigned tail after a checkpoint that ends with gateway.stopped can
	// only come from outside the gateway, unless it starts with
	// gateway.started.
	SingleWriter bool
	// Progress, if set, is called after each chunk with the entries done.
	Progress func(done, total int64)
	// From, if > 0, skips recomputing the entries before the largest
	// checkpoint size <= From: the tree resumes there from the stored
	// hashes, which must match that checkpoint's signed tree hash.
	// Checkpoint signatures, the checkpoint file, truncation and every
	// later entry are checked as usual. A changed byte in an earlier entry
	// is NOT detected; Open uses this for startup_verify: recent and runs
	// the full verification in the background.
	From int64
}

const verifyChunk = 2048

// Verify checks a whole store offline: every checkpoint signature, every
// leaf and stored tree hash recomputed from the entry bytes, every
// checkpoint's tree hash against the recomputed tree (which implies that
// consecutive checkpoints are consistent), the checkpoint file, and that
// nothing was removed from the tail. It returns the first divergence as a
// *Divergence.
func Verify(ctx context.Context, st Store, v note.Verifier, opt VerifyOptions) (Report, error) {
	start := time.Now()
	// Checkpoints before size: a live log only adds checkpoints for
	// entries it already has, so every checkpoint read is <= size.
	rows, err := st.Checkpoints(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	size, err := st.Size(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	cps, err := openCheckpoints(rows, v)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Size: size, Checkpoints: len(cps)}
	if len(cps) > 0 {
		rep.Latest = cps[len(cps)-1]
	}
	if opt.External != nil {
		src := cmp.Or(opt.ExternalSource, SourceCheckpointFile)
		ext, err := OpenCheckpoint(opt.External, v)
		if err != nil {
			return Report{}, diverge(-1, -1, "%s: %v", src, err)
		}
		// The file holds the head signed after every batch; the store's
		// history only every checkpoint_every entries, so the file may be
		// ahead of it, but never ahead of the entries.
		if ext.Size > size {
			return Report{}, diverge(size, ext.Size, "store has %d entries but the %s says %d: the store was truncated or rolled back", size, src, ext.Size)
		}
		if ext.Size > rep.Latest.Size {
			rep.Latest = ext
		}
		cps = mergeCheckpoint(cps, ext)
		if cps == nil {
			return Report{}, diverge(-1, ext.Size, "the %s and the store's checkpoint of size %d differ: the log was forked", src, ext.Size)
		}
	}
	if rep.Latest.Size > size {
		return Report{}, diverge(size, rep.Latest.Size, "store has %d entries but checkpoint %d says %d: the log was truncated", size, len(cps), rep.Latest.Size)
	}

	var tr tree
	next := 0 // next checkpoint to check
	for next < len(cps) && cps[next].Size == 0 {
		next++
	}
	begin := int64(0)
	if opt.From > 0 {
		// Resume the tree at the largest checkpoint <= From, from the
		// stored hashes, which must match that checkpoint's signed hash.
		anchor := -1
		for i, c := range cps {
			if c.Size > 0 && c.Size <= opt.From {
				anchor = i
			}
		}
		if anchor >= 0 {
			begin = cps[anchor].Size
			tr, err = loadTree(ctx, st, begin)
			if errors.Is(err, ErrNotFound) {
				return Report{}, diverge(begin-1, begin, "the stored tree hashes at size %d are missing: the hash table was edited", begin)
			}
			if err != nil {
				return Report{}, fmt.Errorf("audit: verify: %w", err)
			}
			if tr.root() != cps[anchor].Hash {
				return Report{}, diverge(-1, begin, "checkpoint %d (size %d%s): signed tree hash does not match the stored tree hashes: the store was edited before entry %d", anchor+1, begin, origin(cps[anchor]), begin)
			}
			next = anchor + 1
		}
	}
	rep.From = begin
	for from := begin; from < size; from += verifyChunk {
		if err := ctx.Err(); err != nil {
			return Report{}, err
		}
		to := min(from+verifyChunk, size)
		recs, err := st.ReadRecords(ctx, from, to)
		if errors.Is(err, ErrNotFound) {
			return Report{}, findMissing(ctx, st, from, to)
		}
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify: %w", err)
		}
		hstart := tlog.StoredHashCount(from)
		idx := make([]int64, tlog.StoredHashCount(to)-hstart)
		for i := range idx {
			idx[i] = hstart + int64(i)
		}
		stored, err := st.ReadHashes(ctx, idx)
		perRecord := errors.Is(err, ErrNotFound) // find the first record whose hashes are missing
		if err != nil && !perRecord {
			return Report{}, fmt.Errorf("audit: verify: %w", err)
		}
		for _, r := range recs {
			hs := tr.add(r.Data)
			off := tlog.StoredHashCount(r.Seq) - hstart
			if perRecord {
				var idx []int64
				for i := tlog.StoredHashCount(r.Seq); i < tlog.StoredHashCount(r.Seq+1); i++ {
					idx = append(idx, i)
				}
				mine, err := st.ReadHashes(ctx, idx)
				if errors.Is(err, ErrNotFound) {
					return Report{}, diverge(r.Seq, -1, "entry %d: its stored tree hashes are missing: the hash table was edited, or entries were inserted", r.Seq)
				}
				if err != nil {
					return Report{}, fmt.Errorf("audit: verify: %w", err)
				}
				stored, off = mine, 0
			}
			for j, h := range hs {
				if stored[off+int64(j)] != h {
					if j == 0 {
						return Report{}, diverge(r.Seq, -1, "entry %d: leaf hash mismatch (the entry's stored bytes were changed, or entries were swapped, inserted or replaced)", r.Seq)
					}
					return Report{}, diverge(r.Seq, -1, "entry %d: stored tree hash at level %d does not match the entries: the hash table was edited", r.Seq, j)
				}
			}
			for next < len(cps) && cps[next].Size == tr.n {
				if tr.root() != cps[next].Hash {
					prev := int64(0)
					if next > 0 {
						prev = cps[next-1].Size
					}
					return Report{}, diverge(-1, cps[next].Size, "checkpoint %d (size %d%s): signed tree hash does not match the entries: entries in [%d, %d) were rewritten together with their stored hashes", next+1, cps[next].Size, origin(cps[next]), prev, cps[next].Size)
				}
				next++
			}
		}
		if opt.Progress != nil {
			opt.Progress(to, size)
		}
	}
	// Entries deleted from the tail leave their hashes behind.
	if _, err := st.ReadHashes(ctx, []int64{tlog.StoredHashCount(size)}); err == nil {
		if now, err := st.Size(ctx); err == nil && now > size {
			// A live log appended meanwhile; verify what was there.
		} else {
			return Report{}, diverge(size, -1, "the hash table has hashes beyond entry %d: entries were deleted from the tail", size-1)
		}
	} else if !errors.Is(err, ErrNotFound) {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	rep.UnsignedTail = size - rep.Latest.Size
	if opt.SingleWriter && rep.UnsignedTail > 0 && rep.Latest.Size > 0 {
		// The signed log's last entry and the first one after it.
		recs, err := st.ReadRecords(ctx, rep.Latest.Size-1, rep.Latest.Size+1)
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify: %w", err)
		}
		// A start first closes admissions left open (request.abandoned),
		// then records gateway.started.
		if k := kindOf(recs[1].Data); kindOf(recs[0].Data) == KindGatewayStopped && k != KindGatewayStarted && k != KindRequestAbandoned {
			return Report{}, diverge(rep.Latest.Size, rep.Latest.Size, "entries [%d, %d) were added after the gateway stopped (entry %d) and no checkpoint covers them: written outside the gateway", rep.Latest.Size, size, rep.Latest.Size-1)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// kindOf returns the kind of canonical entry bytes ("" if unparseable).
func kindOf(data []byte) string {
	e, err := ParseEntry(0, data)
	if err != nil {
		return ""
	}
	return e.Kind
}

// openCheckpoints verifies every stored checkpoint's signature and that
// the stored row matches its signed note.
func openCheckpoints(rows []Checkpoint, v note.Verifier) ([]Checkpoint, error) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].Size < rows[j].Size })
	out := make([]Checkpoint, 0, len(rows))
	for i, row := range rows {
		c, err := OpenCheckpoint(row.Note, v)
		if err != nil {
			return nil, diverge(-1, row.Size, "checkpoint %d (size %d%s): %v", i+1, row.Size, origin(row), err)
		}
		if c.Size != row.Size || c.Hash != row.Hash {
			return nil, diverge(-1, row.Size, "checkpoint %d: the stored row says size %d but its signed note is for size %d: the checkpoint was replaced%s", i+1, row.Size, c.Size, origin(row))
		}
		c.Origin = row.Origin
		out = append(out, c)
	}
	return out, nil
}

// origin is ", " and where the store read c (Checkpoint.Origin), or "".
func origin(c Checkpoint) string {
	if c.Origin == "" {
		return ""
	}
	return ", " + c.Origin
}

// mergeCheckpoint adds c to the sorted list unless one of the same size
// is present; nil if that one has a different hash.
func mergeCheckpoint(cps []Checkpoint, c Checkpoint) []Checkpoint {
	i := sort.Search(len(cps), func(i int) bool { return cps[i].Size >= c.Size })
	if i < len(cps) && cps[i].Size == c.Size {
		if cps[i].Hash != c.Hash {
			return nil
		}
		return cps
	}
	return append(cps[:i], append([]Checkpoint{c}, cps[i:]...)...)
}

// findMissing pinpoints the first missing record in [from, to).
func findMissing(ctx context.Context, st Store, from, to int64) error {
	for s := from; s < to; s++ {
		if _, err := st.ReadRecords(ctx, s, s+1); errors.Is(err, ErrNotFound) {
			return diverge(s, -1, "entry %d is missing: it was deleted from the store", s)
		} else if err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
	}
	return fmt.Errorf("audit: verify: records [%d, %d) were missing but reappeared", from, to)
}
