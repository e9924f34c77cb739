package console

import (
	"context"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/witness"
)

// Witnessing is what the console reads of the log's witnessing
// (audit.witnesses): the cosignatures kept beside the store and the
// configured witnesses' keys to verify them with. Only cosignatures
// that verify against these keys and the log's own key are shown.
type Witnessing struct {
	// Store holds the cosignatures (SQLite cosignatures.db or the
	// PostgreSQL schema).
	Store witness.Store
	// Witnesses are the configured witnesses' verifier keys.
	Witnesses []*witness.Verifier
}

// ExportStatus is what the overview reads of the SIEM export
// (export.Service).
type ExportStatus interface {
	Status(ctx context.Context) (export.Report, error)
}

// cosigner is one witness's verified cosignature.
type cosigner struct {
	Name string
	Time time.Time
}

// witnessView is the newest witnessed checkpoint as a page shows it,
// and for the request page whether the entry is proven in it.
type witnessView struct {
	// Configured is false without audit.witnesses.
	Configured bool
	// Found: some checkpoint carries a verified cosignature.
	Found bool
	// Size and RootHash are the newest cosigned checkpoint's; Behind is
	// how many entries the newest checkpoint has beyond it.
	Size     int64
	RootHash string
	hash     tlog.Hash
	Behind   int64
	Sigs     []cosigner
	// Proof, on the request page: "verified" (the entry's inclusion
	// proof checks against the cosigned checkpoint), "not-covered" (the
	// entry is newer than it) or "failed".
	Proof string
	// Err is why the cosignatures could not be read, or why the proof
	// failed; Problems are stored cosignatures that do not verify.
	Err      string
	Problems []string
}

// witnessed finds the newest checkpoint cosigned by at least one of the
// configured witnesses, verifying every cosignature it reads.
func (c *Console) witnessed(ctx context.Context, latest audit.Checkpoint) witnessView {
	w := c.o.Witnessing
	if w == nil || w.Store == nil || len(w.Witnesses) == 0 {
		return witnessView{}
	}
	v := witnessView{Configured: true}
	best, ok, problems, err := witness.Newest(ctx, w.Store, nil, c.o.Audit.Verifier(), w.Witnesses, 1)
	v.Problems = problems
	if err != nil {
		c.log.Error("console: witness cosignatures", "err", err)
		v.Err = err.Error()
		return v
	}
	if !ok {
		return v
	}
	v.Found, v.Size, v.RootHash, v.hash, v.Behind = true, best.Size, best.Hash.String(), best.Hash, max(latest.Size-best.Size, 0)
	for _, s := range best.Sigs {
		v.Sigs = append(v.Sigs, cosigner{s.Witness, s.Time})
	}
	return v
}

// witnessedEntry is witnessed plus the entry's inclusion proof checked
// against the cosigned checkpoint: what the witnesses' signatures add to
// the log's own.
func (c *Console) witnessedEntry(ctx context.Context, latest audit.Checkpoint, seq int64, data []byte) witnessView {
	v := c.witnessed(ctx, latest)
	if !v.Found {
		return v
	}
	if seq >= v.Size {
		v.Proof = "not-covered"
		return v
	}
	proof, err := c.o.Audit.ProveEntry(ctx, seq, v.Size)
	if err == nil {
		err = audit.CheckEntryProof(proof, audit.Checkpoint{Size: v.Size, Hash: v.hash}, seq, data)
	}
	if err != nil {
		v.Proof, v.Err = "failed", err.Error()
		return v
	}
	v.Proof = "verified"
	return v
}
