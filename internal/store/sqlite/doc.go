// Package sqlite is the embedded audit store: an audit.Store on one SQLite
// file (modernc.org/sqlite, pure Go), the default under the data dir.
//
// It guarantees: Append commits a whole batch in one transaction and
// returns after the WAL is fsynced (journal_mode=WAL, synchronous=FULL);
// one writer connection, so batches never interleave; readers use their
// own connections and see only committed batches. The schema refuses
// UPDATE and DELETE on entries, hashes, checkpoints and the mask index
// with triggers — defense in depth, since anyone with the file can drop a
// trigger; the Merkle tree and signed checkpoints are what detect that.
//
// It never rewrites or deletes a record; retention works by archiving
// whole segments (see docs/audit.md).
package sqlite
