package export

import (
	"context"
	"iter"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// Item is one thing the log yields to the exporter: an entry with its
// canonical bytes, or a signed checkpoint.
type Item struct {
	// Entry is a committed entry (Seq set); nil for a checkpoint.
	Entry *audit.Entry
	// Data is Entry's canonical encoding (the Merkle record data); nil
	// means the exporter computes it with audit.Marshal.
	Data []byte
	// Checkpoint is a signed checkpoint; nil for an entry.
	Checkpoint *audit.Checkpoint

	// fed is set by LogSource for an entry the log fed at commit
	// (LogSource.Feed): Entry is the entry as appended, not yet in the
	// form a store read decodes (Entry.Recorded). The exporter maps it
	// directly when that gives the same event (Mapper.entryFed) and asks
	// src to settle it where it needs the decoded form (a filter).
	fed bool
	src *LogSource
}

// Source is how the exporter reads the log. In the gateway it is the
// audit log (Log.Follow plus its store's hashes); tests use an in-memory
// log.
//
// Positions: entry seq sits at position seq; a checkpoint of tree size N
// sits between entry N-1 and entry N (it signs exactly the entries before
// it).
type Source interface {
	// Follow yields, in log order, every entry with Seq >= from and every
	// checkpoint with Size >= from, then waits for new commits and yields
	// them too, until ctx ends (then it returns without an error). An
	// error is yielded once, last: the caller resumes with a new Follow
	// from its own position.
	Follow(ctx context.Context, from int64) iter.Seq2[Item, error]
	// ReadHashes has the tlog.HashReader contract over the log's stored
	// Merkle hashes (the exporter reads the frontier of its start
	// position once per session).
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// Size is the number of committed entries (for the lag metric).
	Size(ctx context.Context) (int64, error)
}
