// Package recording captures what a caller sent through Warden and what it
// received back — with the timing of every streamed event — and stores it
// so that an auditor can replay the conversation and prove that the
// replay is the one the audit log committed to.
//
// A recording has one canonical plaintext form (see [Encode] and
// [Reader]): a short JSON header (request line, headers, response status
// and headers, sizes) followed by the request body, the timing marks and
// the response body. Its SHA-256 ([Digest]) is what the request's terminal
// audit entry carries.
//
// The life of a recording:
//
//   - [Recorder.Reserve] is called before a request is forwarded. In
//     strict mode it refuses ([ErrUnavailable]) when the store could not
//     accept a recording now; the caller must then refuse the request
//     without forwarding it. The check reads cached state only (a
//     background probe keeps it fresh), so it costs no I/O.
//   - The [Capture] it returns is a tee on the response path: the caller
//     writes to the client first and then hands the same bytes to the
//     capture, which copies them into bounded memory and spills to an
//     encrypted, unlinked temporary file past a threshold. It never does
//     network I/O, compression or sealing on the client's path.
//   - [Capture.Finish], called once the response is over, builds the
//     canonical form, compresses it (zstd), seals it in 64 KiB chunks with
//     AES-256-GCM under a fresh per-recording data key, stores the object
//     in a [BlobStore] (filesystem or S3) and the data key — wrapped by the
//     key-encryption key — in a [Catalog] that lives apart from the
//     objects.
//   - [Recorder.Erase] destroys wrapped data keys (crypto-shredding): the
//     object becomes unreadable wherever copies of it survive (S3 object
//     versions, backups of the object store), while the audit log keeps
//     the digest. [Recorder.Sweep] erases what is older than the
//     retention period.
//   - [Recorder.Open] and [Recorder.Verify] read a recording back,
//     authenticating every chunk and recomputing the digest; [Player]
//     re-emits it with its original timing as text, JSON lines, or HAR 1.2.
//
// This package never stores a credential: request headers that carry one
// (Authorization, Cookie, X-API-Key, …, plus names the caller adds) and
// hop-by-hop headers are dropped, credential-like query parameters are
// replaced, and a request body is stored only after the caller-supplied
// redactor has run over it, unless the caller explicitly asks for the raw
// body. It never writes plaintext of a recording to disk: spill files are
// encrypted with an ephemeral key that only lives in memory. It never
// logs recording content or keys.
package recording
