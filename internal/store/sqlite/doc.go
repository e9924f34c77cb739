// Package sqlite is the embedded audit store: an audit.Store on a frame
// file and a SQLite file (modernc.org/sqlite, pure Go), the default under
// the data dir.
//
// It guarantees: the records, their tree hashes and each batch's signed
// head are appended to the frame file (FramesPath: audit.db.frames,
// internal/store/framelog, decision 042) as one CRC-framed frame per
// batch with one write; Append returns after the frame file is
// fdatasynced (AppendNoFlush, then Flush, so the log's writer can append
// the next batch meanwhile, decision 026); one writer (a lock and the
// file's flock), so batches never interleave; the store's reads see only
// flushed batches. The SQLite file (audit.db) holds the checkpoint
// history and, for a store written before the frame file, the entries
// and hashes tables as the log's read-only prefix; the schema refuses
// UPDATE and DELETE on them with triggers — defense in depth, since
// anyone with the files can drop a trigger or rewrite a frame and its
// CRCs; the Merkle tree and signed checkpoints are what detect that.
//
// The search index lives in a second file (IndexPath: audit-index.db),
// written after each flush by an audit.Indexer without fsync, caught up
// from the log before every search and after a restart, and compared with
// or rebuilt from the log by CheckIndex and RebuildIndex. It is not
// evidence and never read by verification.
//
// It never rewrites or deletes a record; retention works by archiving
// whole segments (see docs/audit.md).
package sqlite
