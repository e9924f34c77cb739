// Package mask rewrites model-server responses so that the caller never sees
// a raw PII value, and records what it masked as evidence (ISO 27001 A.8.11
// data masking, A.8.12 data leakage prevention).
//
// # What it is for
//
// The gateway builds one [Set] from configuration (New), picks a [Masker] per
// request by profile name (the policy decides which), and calls
// [Masker.WrapResponse] from httputil.ReverseProxy.ModifyResponse. Depending
// on the Content-Type the body is masked as JSON (every decoded string value
// is scanned, so \u0034-style escapes cannot hide a digit; the rest of the
// document is left byte-for-byte), as a Server-Sent Events stream (OpenAI
// chat/legacy/Responses deltas reassembled per channel, or generic data
// lines), as streamed text, passed through, or blocked.
//
// # How detection works
//
// A fast byte-class scanner splits the text into candidate windows: runs of
// identifier characters ([A-Za-z0-9@._%+()/-] and letters outside ASCII,
// after normalization) joined across one or two spaces when both sides look
// like parts of a number or the window holds IBAN groups, and across one
// line break between digit groups. Only windows that can hold an entity of
// the profile (enough digits, or an '@') are normalized (full-width and
// other digits folded, zero-width, control and combining characters
// dropped, NBSP and other spaces to ' ', every dash to '-'; in text/html,
// character references decoded) and analysed: the default entity types by
// Warden's own detectors (detectors.go: Luhn, card networks and lengths,
// mod 97 and IBAN country lengths, issued SSN ranges, numbering plans),
// any other type by the github.com/hoophq/alcatraz recognizers, plus custom
// RE2 rules and keyword lists. Up to 48 bytes of text before a window
// (across stream chunks, or a JSON member name) are its context, where
// labels like "SSN:" are read. Matches are mapped back and replaced in the
// ORIGINAL text. TestDetectorQuality measures recall and precision on a
// generated, labelled corpus.
//
// # What it guarantees
//
//   - Streaming equals whole-text masking. MaskText is the streaming masker
//     run over the whole input; a window's fate depends only on its own
//     content, and the streaming masker emits only text that lies before the
//     first window that is still open. Whatever the chunking of the upstream
//     bytes or events, the concatenated output equals MaskText of the
//     concatenated input.
//
//   - Bounded hold-back. A window longer than HoldBack normalized characters
//     is committed in overlapping pieces (overlap HoldBack/2), so a stream
//     never holds more than about HoldBack characters per channel.
//
//   - Evidence without values. An [Action] carries rule, entity, location,
//     count and a keyed fingerprint (HMAC-SHA256, 16 hex), never the value.
//
//   - Fail closed. A response the masker cannot parse, decode or classify is
//     refused (an error for JSON/other types; an SSE `event: error` followed
//     by end of stream for streams) unless the profile says otherwise; so is
//     a charset it cannot decode, and conflicting Content-Type headers.
//
//   - Nothing held back leaks at an abnormal end. When the upstream body
//     fails mid-stream (connection broken, timeout, request canceled) the
//     text held back is dropped, not flushed; an SSE stream ends with an
//     OpenAI-style error event, other bodies with a read error, and
//     Recorder.Truncated says why.
//
//   - Same event structure. SSE events keep their JSON shape; text held
//     back from a chunk is emitted in a later chunk of the same channel or,
//     at finish_reason, inside the finishing chunk's delta; a chat or
//     Responses delta event whose text was held back entirely is left out.
//     The event count grows only where no later event of the channel can
//     carry the tail: generic streams at end of stream, tool-call arguments
//     at finish_reason, and a Responses *.done whose channel still holds
//     text (one event each).
//
// # Limits (by design, documented for operators)
//
//   - Detection is window by window: entity types whose values cross ':' or
//     '/' or free text (URL, PERSON, LOCATION, NRP, DATE_TIME) are refused
//     by Validate; regex rules match inside one window; keyword rules match
//     single words.
//   - Inside a window longer than hold_back, an entity longer than
//     hold_back/2 that straddles a commit point may be only partly masked.
//   - Generic SSE treats data as text: JSON escapes inside it are not
//     decoded (use the OpenAI kind for OpenAI-shaped streams).
//   - response.audio.delta (base64 audio) is masked as an ordinary value,
//     not reassembled.
//   - application/x-ndjson and other unlisted types are blocked unless the
//     profile's content_types says otherwise ("mask" masks them as text,
//     which does not reassemble JSON-split values).
//
// # What it must never do
//
// Log, store or return a raw matched value; emit text that masking of the
// full text would have changed; pass an unparseable stream through silently.
package mask
