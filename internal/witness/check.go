package witness

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Divergence says that a log store disagrees with what witnesses
// cosigned (or with a witness's view): it was truncated, rolled back or
// rewritten. Callers test for it with errors.As.
type Divergence struct {
	// Size is the cosigned (or witnessed) tree size concerned.
	Size int64
	// Witnesses names the witnesses whose view the store contradicts.
	Witnesses []string
	// Msg says what differs, in words an operator can act on.
	Msg string
}

func (d *Divergence) Error() string { return "witness: " + d.Msg }

// storePage is how many cosignature rows Newest reads at a time.
const storePage = 500

// Newest returns the checkpoint with the largest size that carries valid
// cosignatures from at least min distinct witnesses of ws, looking at the
// store's cosignatures (st may be nil) and at extra cosigned checkpoint
// notes (e.g. `warden verify --checkpoint`). ok is false when there is
// none. Store rows that do not verify are skipped and reported in
// problems; an extra note that does not verify is an error. Two
// checkpoints of one size with different tree hashes are a *Divergence.
func Newest(ctx context.Context, st Store, extra [][]byte, logKey note.Verifier, ws []*Verifier, min int) (best Cosigned, ok bool, problems []string, err error) {
	if min < 1 {
		min = 1
	}
	bySize := map[int64]Cosigned{}
	for i, msg := range extra {
		c, err := OpenCosigned(msg, logKey, ws)
		if err != nil {
			return Cosigned{}, false, nil, fmt.Errorf("cosigned checkpoint %d: %w", i+1, err)
		}
		if bySize[c.Size], err = merge(bySize[c.Size], c); err != nil {
			return Cosigned{}, false, nil, err
		}
	}
	for _, c := range bySize {
		if len(c.Sigs) >= min && (!ok || c.Size > best.Size) {
			best, ok = c, true
		}
	}
	if st == nil {
		return best, ok, nil, nil
	}
	// The store, newest first, until a size at or below the best found.
	before := int64(0)
	for {
		rows, err := st.Cosignatures(ctx, "", before, storePage)
		if err != nil {
			return Cosigned{}, false, problems, fmt.Errorf("witness: read cosignatures: %w", err)
		}
		full := len(rows) == storePage
		if full {
			// The last size may continue on the next page: leave it there.
			last := rows[len(rows)-1].Size
			cut := len(rows)
			for cut > 0 && rows[cut-1].Size == last {
				cut--
			}
			if cut == 0 {
				return Cosigned{}, false, problems, fmt.Errorf("witness: more than %d cosignatures for size %d", storePage, last)
			}
			rows, before = rows[:cut], last+1
		}
		for i := 0; i < len(rows); {
			size := rows[i].Size
			if ok && size <= best.Size {
				return best, ok, problems, nil
			}
			group := bySize[size]
			for ; i < len(rows) && rows[i].Size == size; i++ {
				c, err := OpenCosigned(rows[i].Note, logKey, ws)
				if err != nil {
					problems = append(problems, fmt.Sprintf("stored cosignature by %s on checkpoint %d does not verify: %v", rows[i].Witness, size, err))
					continue
				}
				if c.Size != size {
					problems = append(problems, fmt.Sprintf("stored cosignature by %s: row says size %d but its note is for size %d", rows[i].Witness, size, c.Size))
					continue
				}
				if group, err = merge(group, c); err != nil {
					return Cosigned{}, false, problems, err
				}
			}
			if len(group.Sigs) >= min {
				return group, true, problems, nil
			}
		}
		if !full {
			return best, ok, problems, nil
		}
	}
}

// CheckTree checks a store against a cosigned checkpoint: the store must
// hold at least c.Size entries, and its tree of that size must have the
// cosigned hash. It returns a *Divergence if not.
func CheckTree(ctx context.Context, tr TreeReader, c Cosigned) error {
	n, err := tr.Size(ctx)
	if err != nil {
		return fmt.Errorf("witness: check store: %w", err)
	}
	who := strings.Join(c.Witnesses(), ", ")
	if n < c.Size {
		return &Divergence{Size: c.Size, Witnesses: c.Witnesses(), Msg: fmt.Sprintf(
			"store has %d entries but checkpoint %d was cosigned by %s: the log was truncated or rolled back", n, c.Size, who)}
	}
	if c.Size == 0 {
		return nil
	}
	h, err := tr.TreeHash(ctx, c.Size)
	if err != nil {
		return fmt.Errorf("witness: check store: tree hash at %d: %w", c.Size, err)
	}
	if h != c.Hash {
		return &Divergence{Size: c.Size, Witnesses: c.Witnesses(), Msg: fmt.Sprintf(
			"the store's tree of size %d is not the one cosigned by %s: the log was rewritten after it was witnessed", c.Size, who)}
	}
	return nil
}
