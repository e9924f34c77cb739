// Package framelog is an append-only file of CRC-framed frames, one frame
// per committed batch of the audit log: the records' canonical bytes, the
// Merkle tree hashes they add and the batch's signed head, written with
// one write(2) per batch and made durable with one fdatasync per Sync
// (decision 038). It is the building block meant to take the records,
// hashes and heads of SQLite mode out of SQLite's B-trees and WAL; it is
// not wired into any store yet.
//
// File format (all integers little-endian):
//
//	file header, 32 bytes:
//	  "WARDENFL" | version u32 (1) | flags u32 (0) | base u64 | reserved u32 (0) | CRC-32C of bytes [0, 28) u32
//	frames, back to back, each:
//	  magic "WFR1" | payload length u32 | CRC-32C of payload u32 | CRC-32C of bytes [0, 12) u32 | payload
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
//     the file and no fsync; Sync fdatasyncs and only then makes the
//     frames appended before it visible to reads (the durable watermark).
//     Reads never see a frame a power loss could take back.
//   - Open verifies every frame (both CRCs, the batch prefix, the chain);
//     OpenVisit hands each verified payload to the caller during that
//     scan (BatchHead reads its head), so nothing reads the file twice.
//     An incomplete or CRC-bad frame that is the last thing in the file
//     is a torn tail: it is cut off (truncate + fsync) and the number of
//     bytes cut is returned for the caller to log. Anything else that does
//     not verify — a bad frame followed by a valid one, a valid frame that
//     breaks the chain — is corruption: Open fails with a *CorruptError
//     naming the offset and frame number, and never truncates valid
//     frames. OpenReadOnly never writes.
//   - After a failed write or Sync every later Append and Sync fails
//     (what reached the disk is unknown); the log must be reopened, which
//     cuts a partly written frame as a torn tail.
//
// It must never: rewrite or delete a frame other than a torn tail at
// Open; log or put payload bytes in an error (errors name offsets, frame
// numbers and lengths only); let two writers append to one file (Open
// takes an exclusive flock on Linux). Appends are serialised by the
// caller (one writer); Sync may run concurrently with Append, and reads
// with both.
package framelog
