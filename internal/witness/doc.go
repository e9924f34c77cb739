// Package witness sends Warden's signed audit checkpoints to independent
// witnesses and checks what they signed back, so that the log's history is
// pinned outside the operator's hands.
//
// A signature by the gateway's own key proves nothing against whoever
// holds that key or the data directory: they can truncate the log, roll
// the whole data directory back to a backup, or rewrite history and sign
// it again. A witness (C2SP tlog-witness, https://c2sp.org/tlog-witness)
// remembers the largest checkpoint it has seen for a log and cosigns a new
// one only with a consistency proof from that size (C2SP
// tlog-cosignature, https://c2sp.org/tlog-cosignature). A cosigned
// checkpoint is therefore a statement by a third party that the log had
// at least that many entries with that tree hash, and a witness asked to
// cosign a shorter or forked log refuses.
//
// What the package provides:
//   - Client: the add-checkpoint call, with the protocol's answers as
//     typed errors (409 Conflict carries the witness's size).
//   - Verifier: Ed25519 cosignature/v1 verification (vkey type 0x04), a
//     note.Verifier usable with golang.org/x/mod/sumdb/note.
//   - Submitter: submits every new checkpoint (or one every interval) to
//     each configured witness, stores the cosignatures (Store), keeps a
//     cosigned checkpoint file, exports metrics and logs every refusal;
//     it never blocks or fails the gateway's requests. Its Check, run at
//     start-up, finds a store older than, or forked from, what a witness
//     has cosigned.
//   - Newest and CheckTree: the newest checkpoint cosigned by enough of a
//     set of witnesses, and whether a store is consistent with it (what
//     `warden verify --witness` and the gateway's start-up run).
//
// The package knows nothing of how the log is stored: checkpoints,
// consistency proofs and tree hashes come in through Source and
// TreeReader, cosignatures are kept through Store. It never holds a
// signing key (witnesses sign, the audit log signs) and never logs or
// stores anything but checkpoints and signatures, which are public.
package witness
