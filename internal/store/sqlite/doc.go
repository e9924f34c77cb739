// Package sqlite is the embedded audit store: an audit.Store on one SQLite
// file (modernc.org/sqlite, pure Go), the default under the data dir.
//
// It guarantees: Append commits a whole batch in one transaction and
// returns after the WAL is fdatasynced (journal_mode=WAL; the commit
// itself runs with synchronous=NORMAL and Flush syncs, so the log's
// writer can commit the next batch meanwhile: AppendNoFlush, Flush,
// decision 026); one writer connection, so batches never interleave;
// the store's reads see only committed batches that are flushed. The log's file holds
// only what verification needs (entry bytes, tree hashes, checkpoints);
// the schema refuses UPDATE and DELETE on them with triggers — defense
// in depth, since anyone with the file can drop a trigger; the Merkle
// tree and signed checkpoints are what detect that.
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
