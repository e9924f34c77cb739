package recording

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// FormatVersion is the version of the canonical form written by Encode.
const FormatVersion = 1

// Level is how much of a request a policy rule records.
type Level string

const (
	// LevelOff records nothing.
	LevelOff Level = "off"
	// LevelMetadata records the request line, headers, status, sizes and
	// the timing of every event or chunk, but no body.
	LevelMetadata Level = "metadata"
	// LevelFull also records the request body (redacted unless raw) and
	// the response body exactly as the client received it.
	LevelFull Level = "full"
)

// ParseLevel accepts "off", "metadata" and "full".
func ParseLevel(s string) (Level, error) {
	switch l := Level(s); l {
	case LevelOff, LevelMetadata, LevelFull:
		return l, nil
	}
	return "", fmt.Errorf("recording level must be off, metadata or full, not %q", s)
}

// BodyMode says what a recording holds of a body.
type BodyMode string

const (
	// BodyNone: there was no body.
	BodyNone BodyMode = "none"
	// BodyRedacted: the request body after the caller's redactor.
	BodyRedacted BodyMode = "redacted"
	// BodyRaw: the request body as forwarded (record_request: raw).
	BodyRaw BodyMode = "raw"
	// BodyFull: the response body exactly as the client received it
	// (after masking).
	BodyFull BodyMode = "full"
	// BodyOmitted: a body existed but is not recorded (level metadata, no
	// redactor available, or the redactor failed).
	BodyOmitted BodyMode = "omitted"
)

// Field is one header line. Names are in canonical form; a header with
// several values has several fields, in their original order.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Meta is the header of a recording: everything but the bodies and the
// timing marks. Its JSON encoding (field order as declared, times in UTC)
// is part of the canonical form.
type Meta struct {
	// V is FormatVersion.
	V int `json:"v"`
	// ID is the recording id (unique; names the stored object).
	ID string `json:"id"`
	// RequestID is the gateway's request id, shared with the audit log.
	RequestID string `json:"request_id"`
	// Principal is the verified caller's subject, if any.
	Principal string `json:"principal,omitempty"`
	// Route is the gateway route name.
	Route string `json:"route,omitempty"`
	// Level is metadata or full.
	Level Level `json:"level"`
	// StartedAt is when the gateway received the request (UTC). Every
	// offset in the recording is measured from it.
	StartedAt time.Time `json:"started_at"`
	// DurationNS is the offset at which the response ended.
	DurationNS int64 `json:"duration_ns"`
	// Request is the request as forwarded upstream.
	Request RequestMeta `json:"request"`
	// Response is the response as the client received it.
	Response ResponseMeta `json:"response"`
}

// RequestMeta describes the forwarded request.
type RequestMeta struct {
	Method string `json:"method"`
	// Scheme and Host are what the client addressed (the gateway), for
	// replay formats that need an absolute URL.
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	// Path is the normalised path the gateway routed on.
	Path string `json:"path"`
	// Query is the raw query string, credential-like parameters replaced.
	Query string `json:"query,omitempty"`
	// Header holds the forwarded headers minus credentials and hop-by-hop
	// headers, sorted by name.
	Header []Field `json:"header"`
	// BodySize is the size of the body as forwarded.
	BodySize int64 `json:"body_size"`
	// Body says what the request-body section holds.
	Body BodyMode `json:"body"`
}

// ResponseMeta describes the response the client received.
type ResponseMeta struct {
	// Status is the status code sent (0: no response was started).
	Status int `json:"status"`
	// Header holds the response headers as sent, minus credentials and
	// hop-by-hop headers, sorted by name.
	Header []Field `json:"header"`
	// HeaderAtNS is the offset at which the status line was sent.
	HeaderAtNS int64 `json:"header_at_ns"`
	// BodySize is how many body bytes the client was sent.
	BodySize int64 `json:"body_size"`
	// Body is full or omitted (or none when BodySize is 0).
	Body BodyMode `json:"body"`
	// SSE is set when the response was a text/event-stream: the marks
	// are then events.
	SSE bool `json:"sse"`
	// Events is the number of complete SSE events (those ended by a blank
	// line). The marks may have one more: an unterminated tail.
	Events int `json:"events"`
	// Marks is the number of timing marks.
	Marks int `json:"marks"`
}

// Mark is a timing mark in the response body: the bytes up to End
// (exclusive) had been sent to the client AtNS nanoseconds after the
// request started. For an SSE response every event has a mark at its end;
// for other responses writes are marked (writes less than a millisecond
// apart share one mark).
type Mark struct {
	End  int64
	AtNS int64
}

// Digest is the SHA-256 of a recording's canonical form.
type Digest [sha256.Size]byte

// String formats d as "sha256:<hex>", the form written to the audit log.
func (d Digest) String() string { return "sha256:" + hex.EncodeToString(d[:]) }

// IsZero reports whether d is unset.
func (d Digest) IsZero() bool { return d == Digest{} }

// ParseDigest parses the String form strictly (lower-case hex).
func ParseDigest(s string) (Digest, error) {
	var d Digest
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 2*len(d) || strings.ToLower(h) != h {
		return d, fmt.Errorf("recording: digest %q is not sha256:<64 lower-case hex digits>", s)
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("recording: digest %q: %w", s, err)
	}
	return d, nil
}

// validID reports whether s may name a recording (and its object).
func validID(s string) error {
	if len(s) < 8 || len(s) > 128 {
		return errors.New("recording id must be 8 to 128 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("recording id %q: only a-z, 0-9, - and _ are allowed", s)
		}
	}
	return nil
}
