package recording

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/http"
	"sync"
	"time"
)

// Info describes the request a capture belongs to.
type Info struct {
	// RequestID is the gateway's request id. Required.
	RequestID string
	// Principal is the verified caller's subject.
	Principal string
	// Route is the route name.
	Route string
	// Start is when the gateway received the request; every offset is
	// measured from it (with the monotonic clock).
	Start time.Time
	// Level is metadata or full (off: Reserve returns a nil Capture).
	Level Level
	// RawRequest records the request body as forwarded instead of
	// redacted (the rule's record_request: raw).
	RawRequest bool
	// Redact redacts the request body (the same detectors as the audit
	// log's log: redacted). It runs in Finish, never on the request path.
	// When nil (and not RawRequest) the body is not recorded.
	Redact func(body []byte) ([]byte, error)
}

// ForwardedRequest is the request as forwarded upstream.
type ForwardedRequest struct {
	Method string
	// Scheme ("http" or "https") and Host are what the client addressed.
	Scheme string
	Host   string
	// Path is the normalised path the gateway routed on.
	Path string
	// RawQuery is the query string as forwarded.
	RawQuery string
	// Header is the outbound header; credentials and hop-by-hop headers
	// are dropped when the recording is built.
	Header http.Header
	// Body is the body as forwarded. It is kept by reference and must not
	// change afterwards.
	Body []byte
}

// Capture records one request and its response. The gateway calls
// Request when it forwards, WriteHeader and Write after each write to the
// client (from its own response writer: this package serves no HTTP), and
// Finish once when the response is over. Every method is safe
// on a nil *Capture (and does nothing), so a caller with nothing to record
// needs no checks. Methods may be called from different goroutines but
// not concurrently with Finish.
type Capture struct {
	r    *Recorder
	info Info
	id   string

	mu        sync.Mutex
	req       ForwardedRequest // Header nil: reqHeader holds its fields
	reqHeader []Field
	status    int
	header    []Field // the response header's recordable fields
	headerAt  int64
	sse       bool
	body      *spillBuffer // nil at level metadata
	marks     *spillBuffer
	// bufs holds marks and body: one allocation per capture, not three.
	bufs     [2]spillBuffer
	scratch  []byte
	size     int64
	nMarks   int
	events   int
	lastAt   int64
	pend     Mark
	hasPend  bool
	pendCR   bool // pend ended at a CR that a LF may still extend
	lineBeg  bool // at the start of an SSE line
	afterCR  bool // the previous byte was CR
	err      error
	finished bool
}

// ID is the recording id this capture will store under.
func (c *Capture) ID() string {
	if c == nil {
		return ""
	}
	return c.id
}

// Request records the forwarded request. The header's recordable fields
// are copied (filtered and sorted: what a clone would cost, and Finish
// then has nothing left to do with it); the body is kept by reference.
// Nothing else happens until Finish.
func (c *Capture) Request(req ForwardedRequest) {
	if c == nil {
		return
	}
	fields := filterHeader(req.Header, c.r.strip)
	req.Header = nil
	c.mu.Lock()
	c.req, c.reqHeader = req, fields
	c.mu.Unlock()
}

// WriteHeader records the response status and headers as sent to the
// client. Informational (1xx) responses are ignored; only the first final
// status counts.
func (c *Capture) WriteHeader(status int, h http.Header) {
	if c == nil || (status < 200 && status != http.StatusSwitchingProtocols) {
		return
	}
	at := c.since()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status != 0 || c.finished {
		return
	}
	c.status, c.headerAt = status, at
	c.header = filterHeader(h, c.r.strip)
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && mt == "text/event-stream" {
		c.sse = true
	}
}

func (c *Capture) since() int64 {
	d := c.r.now().Sub(c.info.Start)
	if d < 0 {
		return 0
	}
	return int64(d)
}

// Write records bytes after they were written to the client. It copies p
// into memory (or the spill file) and never blocks on anything else; a
// capture failure (spill disk full, size limit) is remembered and
// reported by Finish, and the client is unaffected.
func (c *Capture) Write(p []byte) {
	if c == nil || len(p) == 0 {
		return
	}
	at := c.since()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished || c.err != nil {
		return
	}
	if c.status == 0 {
		c.status, c.headerAt, c.header = http.StatusOK, at, []Field{}
	}
	if c.size+int64(len(p)) > c.r.maxSize {
		c.fail(fmt.Errorf("response exceeds the recording limit of %d bytes", c.r.maxSize))
		return
	}
	if c.body != nil {
		if _, err := c.body.Write(p); err != nil {
			c.fail(err)
			return
		}
	}
	base := c.size
	c.size += int64(len(p))
	if c.sse {
		c.scanSSE(p, base, at)
	} else {
		c.chunk(at)
	}
	c.lastAt = at
}

func (c *Capture) fail(err error) {
	c.err = err
	c.body.closeIfSet()
	c.marks.closeIfSet()
}

func (b *spillBuffer) closeIfSet() {
	if b != nil {
		b.Close()
	}
}

// coalesce is how close in time two writes of a non-SSE response must be
// to share a mark.
const coalesce = int64(time.Millisecond)

func (c *Capture) chunk(at int64) {
	if c.hasPend && at-c.pend.AtNS < coalesce {
		c.pend.End, c.pend.AtNS = c.size, at
		return
	}
	c.flushPend()
	c.pend, c.hasPend = Mark{End: c.size, AtNS: at}, true
}

// scanSSE finds event boundaries (a blank line; lines end in CRLF, LF or
// CR) in p, which starts at body offset base. Each event gets a mark at
// its end, timed at this write.
func (c *Capture) scanSSE(p []byte, base, at int64) {
	for i := 0; i < len(p); {
		if c.afterCR {
			c.afterCR = false
			if p[i] == '\n' {
				// The LF of a CRLF: the line ended at the CR.
				if c.pendCR {
					c.pend.End = base + int64(i) + 1
					c.pendCR = false
				}
				i++
				continue
			}
		}
		j := indexLineEnd(p[i:])
		if j < 0 {
			c.lineBeg, c.pendCR = false, false
			return
		}
		if j > 0 {
			c.lineBeg, c.pendCR = false, false
		}
		i += j
		b := p[i]
		if c.lineBeg {
			// A blank line: the event ends here.
			c.flushPend()
			c.pend, c.hasPend = Mark{End: base + int64(i) + 1, AtNS: at}, true
			c.pendCR = b == '\r'
			c.events++
		} else {
			c.pendCR = false
		}
		c.lineBeg = true
		c.afterCR = b == '\r'
		i++
	}
}

// indexLineEnd returns the index of the first CR or LF in p, or -1. Two
// IndexByte scans (vectorised) beat a byte loop on long lines.
func indexLineEnd(p []byte) int {
	n := bytes.IndexByte(p, '\n')
	lim := p
	if n >= 0 {
		lim = p[:n]
	}
	if r := bytes.IndexByte(lim, '\r'); r >= 0 {
		return r
	}
	return n
}

func (c *Capture) flushPend() {
	if !c.hasPend {
		return
	}
	c.scratch = AppendMark(c.scratch[:0], c.pend)
	if _, err := c.marks.Write(c.scratch); err != nil {
		c.fail(err)
	}
	c.nMarks++
	c.hasPend = false
}

// Outcome is what became of a recording, for the terminal audit entry.
type Outcome string

const (
	// OutcomeStored: the recording is durable; Result.Digest is its
	// digest.
	OutcomeStored Outcome = "stored"
	// OutcomeFailed: nothing (usable) was stored; Result.Err says why.
	OutcomeFailed Outcome = "failed"
)

// Result is the outcome of Finish.
type Result struct {
	Outcome Outcome
	// ID is the recording id.
	ID string
	// Digest is the SHA-256 of the canonical form (when stored).
	Digest Digest
	// Size is the stored object's size.
	Size int64
	// BodySize is the response body size the client received.
	BodySize int64
	// Events is the number of complete SSE events.
	Events int
	// Err says why the recording failed.
	Err error
}

// Finish ends the capture and stores the recording: builds the canonical
// form, compresses, seals, writes the object and the catalogue entry.
// Call it after the response is over, off the client's path (it does I/O
// bounded by the save timeout). It releases the capture's memory and
// spill files in every case. Calling it twice returns a failed Result.
func (c *Capture) Finish(ctx context.Context) Result {
	if c == nil {
		return Result{Outcome: OutcomeFailed, Err: fmt.Errorf("recording: nothing captured")}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return Result{Outcome: OutcomeFailed, ID: c.id, Err: fmt.Errorf("recording %s: finished twice", c.id)}
	}
	c.finished = true
	defer c.release()
	res := Result{ID: c.id, BodySize: c.size, Events: c.events}
	if c.err != nil {
		res.Outcome, res.Err = OutcomeFailed, fmt.Errorf("recording %s: capture: %w", c.id, c.err)
		c.r.saveFailed(res.Err)
		return res
	}
	c.flushPend()
	if c.err == nil && c.size > 0 && (c.nMarks == 0 || c.lastEnd() < c.size) {
		// An SSE tail that no blank line ended.
		c.pend, c.hasPend = Mark{End: c.size, AtNS: c.lastAt}, true
		c.flushPend()
	}
	if c.err != nil {
		res.Outcome, res.Err = OutcomeFailed, fmt.Errorf("recording %s: capture: %w", c.id, c.err)
		c.r.saveFailed(res.Err)
		return res
	}
	d, size, err := c.r.save(ctx, c)
	if err != nil {
		res.Outcome, res.Err = OutcomeFailed, err
		c.r.saveFailed(err)
		return res
	}
	res.Outcome, res.Digest, res.Size = OutcomeStored, d, size
	return res
}

// lastEnd is the end of the last mark written (tracked by flushPend via
// pend, which still holds it after a flush).
func (c *Capture) lastEnd() int64 { return c.pend.End }

// Abort discards the capture without storing anything (the request was
// refused after Reserve). It is a no-op after Finish.
func (c *Capture) Abort() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.finished {
		c.finished = true
		c.release()
	}
}

func (c *Capture) release() {
	c.body.closeIfSet()
	c.marks.closeIfSet()
	c.req.Body = nil
}
