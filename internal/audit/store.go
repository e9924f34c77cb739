package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Errors a Store returns, for callers to test with errors.Is. Stores wrap
// them with context.
var (
	// ErrNotFound: the requested record, hash or checkpoint does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a batch did not start at the store's current size (another
	// writer appended first, or the caller's view is stale). Nothing was
	// written; the caller reloads its state from the store and retries.
	ErrConflict = errors.New("sequence conflict")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// Record is one sequenced entry as a store holds it.
type Record struct {
	// Seq is the record index in the tree (0-based, gap-free).
	Seq int64
	// Data is the canonical encoding of the entry (see Marshal); the store
	// keeps these bytes exactly.
	Data []byte
	// Entry is the decoded entry. Set by the Log on Append, so the store can
	// index fields for search without decoding Data; stores set it on read
	// only if they decode (the Log does not rely on it when reading).
	Entry *Entry
}

// Batch is what Log hands to Store.Append: consecutive records and the
// Merkle tree hashes they add, to be stored in ONE transaction.
type Batch struct {
	// Records have consecutive Seq values starting at the store's size.
	Records []Record
	// HashStart is the stored-hash index of Hashes[0]: it equals
	// tlog.StoredHashCount(Records[0].Seq).
	HashStart int64
	// Hashes are the stored hashes of the records, in tlog.StoredHashes
	// order, one record after another: Hashes[i] has index HashStart+i.
	// After the batch, the store holds tlog.StoredHashCount(size) hashes.
	Hashes []tlog.Hash
	// Head, if set, is the signed checkpoint of the tree after the batch
	// (Head.Size is the last Seq + 1). The Log sets it only on a
	// HeadKeeper, which keeps it in the batch's own transaction, so the
	// entries and the signature covering them become durable with one
	// flush (decision 018).
	Head *Checkpoint
	// HeadHistory asks for Head to be added to the checkpoint history too
	// (as PutCheckpoint would), in the same transaction.
	HeadHistory bool
}

// HeadKeeper is implemented by stores that keep a batch's signed head
// (Batch.Head) in the batch's transaction (SQLite).
//
// Contract:
//   - Append with Head set stores it with the records, in the same
//     transaction, replacing the previous head; Head.Size must be the
//     size after the batch, else nothing is written and Append fails.
//   - Head returns the note of the newest head kept, or nil if there is
//     none. The note is not verified here: Verify checks it (see
//     ReadHead).
type HeadKeeper interface {
	Head(ctx context.Context) ([]byte, error)
}

// Flusher is implemented by stores whose commit and flush can be apart
// (SQLite), so that the Log's writer commits the next batch while the
// previous one is being flushed: one fdatasync then covers every batch
// committed before it began (decision 026).
//
// Contract:
//   - AppendNoFlush is Append up to and including the commit, without
//     the flush: the batch is not durable yet, and the store's reads
//     (Size, ReadRecords, ReadHashes, the checkpoints, Head) do not show
//     it until a Flush covers it. Append is AppendNoFlush then Flush.
//   - Flush makes every batch and checkpoint committed before the call
//     durable, then visible. After a failed Flush every later call on
//     the store fails until it is reopened (what reached the disk is
//     unknown), so appends and the readiness probe fail closed.
type Flusher interface {
	AppendNoFlush(ctx context.Context, b Batch) error
	Flush(ctx context.Context) error
}

// Checkpoint is a signed statement of the tree at a size.
type Checkpoint struct {
	// Size is the number of records the checkpoint covers.
	Size int64
	// Hash is the tree hash (RFC 6962) of records [0, Size).
	Hash tlog.Hash
	// Time is when the checkpoint was signed (also inside Note).
	Time time.Time
	// Note is the signed note text (C2SP tlog-checkpoint), as signed.
	Note []byte
	// Origin, if not empty, says where the store read the checkpoint when
	// it keeps more than one copy (the SQLite store: "the history head of
	// frame 20 of audit.db.frames, which the checkpoints table holds
	// differently"); Verify names it when the checkpoint fails. Not
	// stored.
	Origin string
}

// Query selects entries for Store.Search. Zero fields do not filter;
// string filters match exactly unless said otherwise. Filters combine
// with AND.
type Query struct {
	// Principal matches the principal's subject.
	Principal string
	// From and To bound the entry time: From <= Time < To.
	From, To time.Time
	// Route, Model, Kind, RequestID, ApprovalID match the entry fields.
	Route, Model, Kind, RequestID, ApprovalID string
	// Action matches Decision.Action.
	Action string
	// MaskRule matches entries with a MaskAction of that rule.
	MaskRule string
	// Text is a full-text query over the redacted Params (and Decision
	// reason and Details). Words are ANDed; a word matches a whole token,
	// case-insensitively.
	Text string
	// Start and End bound Seq: Start <= Seq, and Seq < End when End > 0.
	// They are the paging cursors: the next ascending page has Start =
	// last Seq + 1; the next descending page has End = last Seq (and there
	// is none after Seq 0).
	Start, End int64
	// Desc returns newest first; otherwise oldest first.
	Desc bool
	// Limit caps the number of records (0 means 100; stores may cap it at
	// 1000).
	Limit int
}

// Store is where the Log keeps records, tree hashes and checkpoints.
// Implementations: internal/store/sqlite, internal/store/postgres; the
// contract is checked by internal/audit/storetest.
//
// Contract:
//   - Append stores the whole batch (records and hashes) in one
//     transaction and returns only once it is durable (committed and
//     flushed to stable storage). On any error nothing of the batch is
//     visible. If Records[0].Seq != Size(), Append writes nothing and
//     returns an error wrapping ErrConflict. An empty batch is a no-op.
//   - Records, hashes and checkpoints are never updated or deleted; the
//     schema rejects UPDATE and DELETE on their tables (defense in depth).
//   - Size is the number of records stored (the next Seq).
//   - ReadHashes has the tlog.HashReader contract: it returns a slice the
//     same length as indexes or a non-nil error (wrapping ErrNotFound for
//     a missing index).
//   - ReadRecords returns records [from, to) in order; to beyond Size is
//     an error wrapping ErrNotFound.
//   - Checkpoints are kept forever; PutCheckpoint of a size already held
//     with different bytes is an error wrapping ErrConflict (same bytes: a
//     no-op). Checkpoints returns all, by ascending Size.
//     LatestCheckpoint returns the one with the largest Size, or an error
//     wrapping ErrNotFound when there is none.
//   - Search returns records matching q (Data set; Entry may be nil).
//   - After Close, every method returns an error (wrapping ErrClosed).
//   - Methods are safe for concurrent use.
type Store interface {
	Append(ctx context.Context, b Batch) error
	Size(ctx context.Context) (int64, error)
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	ReadRecords(ctx context.Context, from, to int64) ([]Record, error)
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	Search(ctx context.Context, q Query) ([]Record, error)
	Close() error
}

// Pending is a durably queued entry that has no Seq yet.
type Pending struct {
	// ID is the entry ID (unique).
	ID string
	// Data is the canonical encoding of the entry.
	Data []byte
	// Entry is the decoded entry (set on Enqueue; optional on read).
	Entry *Entry
}

// Queue is implemented by stores shared by several gateway replicas
// (PostgreSQL). With a Queue, Log.Append enqueues the entry durably and
// returns without a Seq; one replica at a time (the integrator, holding
// leadership) takes pending entries in order, sequences them with
// Store.Append and signs checkpoints, so replicas share one gap-free log.
//
// Contract:
//   - Enqueue is durable when it returns nil (committed and flushed).
//   - Unsequenced returns up to max pending entries not yet appended, in
//     enqueue order.
//   - Store.Append on a Queue store also removes (or marks sequenced), in
//     the same transaction, the pending entries whose IDs are in the batch.
//     Its ErrConflict check fences out a stale integrator.
//   - Lead tries to become (or stay) the integrator; it returns true while
//     this process holds leadership. Resign gives it up.
type Queue interface {
	Enqueue(ctx context.Context, p []Pending) error
	Unsequenced(ctx context.Context, max int) ([]Pending, error)
	Lead(ctx context.Context) (bool, error)
	Resign(ctx context.Context) error
}

// IndexDiff is one difference between a search index and the log it is
// derived from.
type IndexDiff struct {
	// Seq is the entry concerned.
	Seq int64
	// Kind is "missing" (the log has it, the index does not), "extra" (the
	// index has it, the log does not) or "altered" (both, differently).
	Kind string
	// Part is what differs: "fields" (copied columns), "text" (full-text
	// index), "mask_rules" (mask-rule index), "counts" (per-chunk
	// aggregate counts, Seq the chunk's first entry).
	Part string
	// Detail says how (column values, terms, rules).
	Detail string
}

// IndexReport is the result of checking a search index against the log.
type IndexReport struct {
	// LogSize is the number of log records the check compared against.
	LogSize int64
	// Indexed is the number of leading records the index holds; records
	// in [Indexed, LogSize) are not indexed yet (the gateway catches up;
	// not a difference).
	Indexed int64
	// Diffs are the differences, by Seq.
	Diffs []IndexDiff
}

// IndexMaintainer is implemented by stores whose search index is derived
// from the log (both stores). The index is not evidence: verification
// never reads it; CheckIndex shows whether searches can be trusted to
// find every entry.
//
// Contract:
//   - CheckIndex builds a reference index from the log's entries (as
//     audit.Index derives them) and returns every difference from the
//     store's index: rows missing, extra or altered in the copied
//     columns, the full-text index and the mask-rule index. It changes
//     nothing. An error wrapping ErrNotFound means the store has no index.
//   - RebuildIndex replaces the index with one built from the log and
//     returns the number of entries indexed.
type IndexMaintainer interface {
	CheckIndex(ctx context.Context) (IndexReport, error)
	RebuildIndex(ctx context.Context) (int64, error)
}

// TermDiffs turns the values (terms, rules) of part that an index has
// beyond the log (extra) and lacks (missing), by Seq, into differences:
// extra, missing, or altered when both. Stores use it in CheckIndex.
func TermDiffs(part, what string, extra, missing map[int64][]string) []IndexDiff {
	var out []IndexDiff
	list := func(v []string) string {
		v = slices.Compact(v)
		if len(v) > 10 {
			return strings.Join(v[:10], " ") + fmt.Sprintf(" … (%d in all)", len(v))
		}
		return strings.Join(v, " ")
	}
	for seq, x := range extra {
		d := IndexDiff{Seq: seq, Kind: "extra", Part: part, Detail: fmt.Sprintf("%s the entry does not have: %s", what, list(x))}
		if m, ok := missing[seq]; ok {
			d.Kind = "altered"
			d.Detail += fmt.Sprintf("; %s missing: %s", what, list(m))
		}
		out = append(out, d)
	}
	for seq, m := range missing {
		if _, ok := extra[seq]; !ok {
			out = append(out, IndexDiff{Seq: seq, Kind: "missing", Part: part, Detail: fmt.Sprintf("%s missing: %s", what, list(m))})
		}
	}
	return out
}
