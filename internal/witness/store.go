package witness

import (
	"context"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Cosignature is one witness's cosignature on one checkpoint, as a Store
// keeps it.
type Cosignature struct {
	// Size is the checkpoint's tree size.
	Size int64
	// Witness is the witness key's name; KeyHash its key ID.
	Witness string
	KeyHash uint32
	// Time is the cosignature's own timestamp.
	Time time.Time
	// Note is the checkpoint note with the log's signature and this
	// witness's cosignature line: verifiable on its own (OpenCosigned).
	Note []byte
}

// Store keeps cosignatures beside the log's checkpoints. Implementations:
// internal/store/sqlite and internal/store/postgres; the contract is
// checked by witnesstest.RunStore.
//
// Contract:
//   - PutCosignature is durable when it returns nil. A second cosignature
//     by the same witness key for the same size is a no-op (the first is
//     kept): rows are never updated or deleted.
//   - Cosignatures returns at most limit rows with Size < before (every
//     size when before <= 0), by descending Size; witness, when not empty,
//     selects one witness name. A store that has never held a cosignature
//     returns none (not an error).
//   - Methods are safe for concurrent use.
type Store interface {
	PutCosignature(ctx context.Context, c Cosignature) error
	Cosignatures(ctx context.Context, witness string, before int64, limit int) ([]Cosignature, error)
}

// Source gives the submitter the log's newest signed checkpoint and the
// consistency proofs between tree sizes.
//
// Contract: Latest returns the checkpoint with the largest size the log
// has signed and made durable (Note nil when there is none yet). It must
// never return a checkpoint a crash could still lose: a witness that
// cosigned it would then refuse the recovered log, and the gateway would
// not start. ConsistencyProof returns
// the RFC 6962 proof that the tree of size old is a prefix of the tree of
// size new (0 < old <= new <= Latest().Size).
type Source interface {
	Latest(ctx context.Context) (Checkpoint, error)
	ConsistencyProof(ctx context.Context, old, new int64) (tlog.TreeProof, error)
}

// Waiter is implemented by a Source that can block until the log has a
// checkpoint larger than after (audit.Log.WaitCheckpoint in the reworked
// log). With it the submitter wakes on each new checkpoint instead of
// waiting for the next poll. WaitCheckpoint returns ctx's error when ctx
// ends.
type Waiter interface {
	WaitCheckpoint(ctx context.Context, after int64) (Checkpoint, error)
}

// TreeReader reads a log's current size and its tree hash at any size up
// to it, for checking a store against a cosigned checkpoint.
type TreeReader interface {
	Size(ctx context.Context) (int64, error)
	TreeHash(ctx context.Context, n int64) (tlog.Hash, error)
}
