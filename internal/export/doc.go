// Package export delivers Warden's audit log to the systems security
// teams watch: every committed entry, and every signed checkpoint, mapped
// to OCSF 1.8 and sent at least once, in log order, to each configured
// sink (file, syslog, Splunk HEC, NATS JetStream, Kafka, webhook).
//
// How it works:
//   - An Exporter reads the log through a Source (Follow from a
//     position) — never from the request path, so the data path never
//     waits for a sink. Each sink has its own durable Cursor, CEL filter,
//     batching, exponential backoff and dead-letter file.
//   - A Mapper turns an entry (or checkpoint) into one OCSF event whose
//     metadata.uid is "<origin>/<seq>", stable for de-duplication. Each
//     event carries its Merkle leaf hash and (unless the sink drops
//     parameters) the canonical entry bytes; the first event of every
//     delivered batch carries the frontier of the tree before it.
//   - VerifyStream checks an exported stream offline with only the log's
//     verifier key: events contiguous in sequence, every event's content
//     bound to its leaf, every leaf inside the signed checkpoints.
//
// Guarantees: an entry is delivered to a sink (or written to its dead-
// letter file with the reason, when the receiver refuses it for good)
// before the sink's cursor moves past it; after a crash, delivery resumes
// from the cursor, so receivers may see an event twice (they de-duplicate
// on metadata.uid) but never miss one.
//
// This package never exports anything the log does not hold: parameters
// are as redacted by policy (and droppable per sink), masking records
// carry fingerprints, never values; no credential is in any entry. It
// never logs a sink's secret (tokens, HMAC keys, passwords).
package export
