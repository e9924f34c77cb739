// Package framelog is an append-only file of CRC-framed frames, one frame
// per committed batch of the audit log: the records' canonical bytes, the
// Merkle tree hashes they add and the batch's signed head, written with
// one write(2) per batch and made durable with one fdatasync per Sync
// (decision 038). It is the building block meant to take the records,
// hashes and heads of SQLite mode out of SQLite's B-trees and WAL; the
// SQLite store keeps its log in one (decision 042), preallocated with a
// durable mark (decisions 044, 045).
//
// File format (all integers little-endian):
//
//	file header, 32 bytes:
//	  "WARDENFL" | version u32 (1) | flags u32 (0) | base u64 | reserved u32 (0) | CRC-32C of bytes [0, 28) u32
//	frames, back to back, each:
//	  magic "WFR1" | payload length u32 | CRC-32C of payload u32 | CRC-32C of bytes [0, 12) u32 | payload
//
//	after the frames: zeros to EOF, the preallocated end (Preallocate)
//
//	durable mark, "<path>.mark" (written by a preallocating Log only): two
//	slots, at offsets 0 and 512, overwritten in turn, each
//	  "WFM1" | base u64 | end u64 | frames u64 | CRC-32C of bytes [0, 28) u32
//	the valid slot of the file's base with the larger end is the mark M
//
// base is the sequence number of the first record the file holds (0 for
// a new log; the size of an older store whose records stay elsewhere).
// A payload is a batch frame (EncodeBatch): first seq, record count,
// flags, hash start, the tree hashes (32 bytes each, first so that
// ReadHashes reads one at a computed offset), the records
// (length-prefixed) and the signed head note. Frames chain: each frame's first
// seq is the previous frame's first seq plus its count, the first
// frame's is base, and each hash start is tlog.StoredHashCount(first seq).
//
// Guarantees:
//   - Append writes a whole frame with one positional write at the end of
//     the frames (over preallocated zeros, or extending the file) and no
//     fsync; Sync fdatasyncs and only then makes the
//     frames appended before it visible to reads (the durable watermark).
//     Reads never see a frame a power loss could take back.
//   - Open verifies every frame (both CRCs, the batch prefix, the chain);
//     OpenVisit hands each verified payload to the caller during that
//     scan (BatchHead reads its head), so nothing reads the file twice.
//     Zeros from the last valid frame to EOF are the preallocated end, kept
//     as they are (zeros cannot begin a frame: nothing valid is hidden).
//     The first frame that does not verify, at offset k, ends the frames,
//     and the bytes from k to the last non-zero byte are judged:
//   - with a durable mark M: k < M is corruption (frames an fdatasync had
//     made durable are damaged; never cut); k >= M is a torn tail, even
//     when valid frames follow (one Sync's frames written back out of
//     order by a power loss, possible when frames overwrite preallocated
//     blocks). When valid frames do follow, the bytes are first copied,
//     synced, to "<path>.torn-<unix time>" (TornFile) so nothing is
//     destroyed. Acknowledged frames past M that were damaged are caught
//     by the heads kept apart (the audit head and checkpoint files).
//   - without a mark (stricter; deleting the mark can only make Open
//     stricter): an incomplete or CRC-bad frame, or a bad header, followed
//     only by zeros is a torn tail; a bad frame followed by a valid header
//     or other non-zero bytes, or a valid frame that breaks the chain, is
//     corruption.
//     A torn tail is cut: zeroed and fsynced when zeros follow it (the
//     file keeps its size and preallocation), truncated when it runs to
//     EOF; the number of bytes cut (up to the last non-zero one) is
//     returned for the caller to log. Corruption is a *CorruptError naming
//     the offset and frame number, and nothing is changed. OpenReadOnly
//     applies the same rules and never writes; racing a writer, it reads a
//     bad frame once more before calling it corrupt.
//   - The mark is written by Preallocate's goroutine, off the Sync path
//     (about once a second when Syncs moved it, after each grow, after the
//     first Sync when none exists, and at Close), with fdatasync, and only
//     with the end of frames an fdatasync of this Log had covered: M never
//     covers a frame a power loss could take back. End, Frames and what a
//     backup copies ([0, End())) do not depend on it; a backup needs no
//     mark (a copy without one is judged by the stricter rule).
//   - After a failed write or Sync every later Append and Sync fails
//     (what reached the disk is unknown); the log must be reopened, which
//     cuts a partly written frame as a torn tail.
//
// It must never: rewrite or delete a frame other than a torn tail at
// Open (and a torn tail holding valid frames only once copied aside); log or put payload bytes in an error (errors name offsets, frame
// numbers and lengths only); let two writers append to one file (Open
// takes an exclusive flock on Linux). Appends are serialised by the
// caller (one writer); Sync may run concurrently with Append, and reads
// with both.
package framelog
