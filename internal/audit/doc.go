// Package audit is Warden's tamper-evident audit log: the evidence an
// auditor asks for (ISO 27001 A.8.15 logging, A.5.28 collection of
// evidence, A.5.33 protection of records).
//
// Every Entry has one canonical byte encoding (Marshal). The encodings are
// the records of an append-only Merkle tree (golang.org/x/mod/sumdb/tlog,
// RFC 6962 hashing); the Log signs checkpoints of the tree in the C2SP
// signed-note format (golang.org/x/mod/sumdb/note, Ed25519) every N
// records, every T seconds if the tree grew, and at Close.
//
// Guarantees:
//   - Log.Append returns only when the entry is durable (committed and
//     fsynced by the Store); concurrent appends share one transaction
//     (group commit). If the entry cannot be made durable, Append returns
//     an error and the caller must fail closed (503).
//   - Open refuses a store whose records, hashes or checkpoints do not
//     verify (edited, truncated, rolled back) unless
//     Config.AllowUnverifiedStart is set; then it records a
//     gateway.started entry saying so.
//   - Verify and VerifySegment recompute every leaf and tree hash offline
//     and report the first divergence with its sequence number.
//   - The search index is derived from the log, off the admission path
//     (Indexer, IndexWriter): searches catch it up first, verification
//     never reads it, IndexMaintainer checks it against the log and
//     rebuilds it.
//
// This package never stores or logs secrets: callers pass entries whose
// Params and Details are already redacted. It never updates or deletes a
// record. Storage lives behind the Store interface (internal/store/...).
package audit
