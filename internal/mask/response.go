package mask

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/transform"
)

// ErrBlocked is matched (errors.Is) by every error WrapResponse returns: the
// response must not reach the caller. The gateway answers 502 with a JSON
// error and records the refusal.
var ErrBlocked = errors.New("mask: response blocked")

// BlockedError says why a response was refused.
type BlockedError struct {
	// ContentType is the upstream Content-Type.
	ContentType string
	// Reason is a short explanation safe to show the caller (no values).
	Reason string
}

func (e *BlockedError) Error() string {
	return "mask: response blocked (" + e.ContentType + "): " + e.Reason
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// RequestHeaderHint prepares the upstream request headers: it asks for an
// identity-encoded response (Accept-Encoding: identity), so the masker does
// not spend CPU decompressing. Responses that arrive gzip- or
// deflate-encoded anyway are decoded by WrapResponse; br is refused.
func (m *Masker) RequestHeaderHint(h http.Header) {
	h.Set("Accept-Encoding", "identity")
}

// WrapResponse masks resp in place; call it from
// httputil.ReverseProxy.ModifyResponse. By Content-Type it:
//
//   - application/json, */*+json: reads the body (up to max_body_bytes),
//     masks it with MaskJSON and sets Content-Length; a body holding more
//     than one JSON value is refused (or, with fail_closed: false, masked
//     as text);
//   - text/event-stream: replaces Body with a streaming SSE masker (kind
//     says how to read events) and removes Content-Length;
//   - text/html, application/xhtml+xml: streams the body through the text
//     masker with character references decoded for detection;
//   - other text/* (and a missing Content-Type): streams the body through
//     the text masker with hold-back, removing Content-Length;
//   - any other type: content_types decides mask (as text), pass or block;
//     unlisted types are blocked.
//
// A declared charset other than UTF-8 is decoded before detection and the
// masked body encoded back into it; a charset that cannot be decoded, and
// conflicting Content-Type headers, are refused. Content-Encoding gzip and
// deflate are decoded and the header removed; other encodings are blocked,
// and so are protocol upgrades (101). Every returned error that refuses
// the response matches ErrBlocked; an error reading a JSON body from the
// upstream does not (the gateway reports it as an upstream failure).
//
// When a streamed body ends abnormally (the upstream connection breaks or
// times out, the request is canceled) the text held back is dropped, never
// flushed: an SSE stream then ends with an error event, any other body
// with a read error (the proxy cuts the connection), and rec.Truncated
// says why. Masking actions go to rec as the body is read; read rec after
// the body is closed.
func (m *Masker) WrapResponse(resp *http.Response, rec *Recorder, kind StreamKind) error {
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || (resp.Request != nil && resp.Request.Method == http.MethodHead) {
		return nil
	}
	ct := resp.Header.Get("Content-Type")
	block := func(reason string) error {
		rec.fail(reason)
		return &BlockedError{ContentType: ct, Reason: reason}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection (WebSocket) is a byte pipe the masker
		// cannot follow.
		return block("protocol upgrade cannot be masked")
	}
	mt := ""
	var params map[string]string
	if ct != "" {
		var err error
		if mt, params, err = mime.ParseMediaType(ct); err != nil {
			return block("unparseable Content-Type")
		}
	}
	// Clients differ in which of several Content-Type headers they obey;
	// the masker must read the body the way the caller will.
	for _, v := range resp.Header.Values("Content-Type")[min(1, len(resp.Header.Values("Content-Type"))):] {
		if mt2, params2, err := mime.ParseMediaType(v); err != nil || mt2 != mt || !strings.EqualFold(params2["charset"], params["charset"]) {
			return block("conflicting Content-Type headers")
		}
	}
	var mode ContentAction
	htmlText := false
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		mode = "json"
	case mt == "text/event-stream":
		mode = "sse"
	case mt == "text/html" || mt == "application/xhtml+xml":
		mode, htmlText = ActionMask, true
	case mt == "" || strings.HasPrefix(mt, "text/"):
		mode = ActionMask
	default:
		mode = m.contentAction(mt)
	}
	switch mode {
	case ActionBlock:
		return block("content type not allowed by masking profile " + m.name)
	case ActionPass:
		return nil
	}
	enc, err := charsetEncoding(params["charset"])
	if err != nil {
		return block(err.Error())
	}

	orig := resp.Body
	body, err := decodeBody(resp.Header.Get("Content-Encoding"), orig)
	if err != nil {
		return block(err.Error())
	}
	resp.Header.Del("Content-Encoding")
	for _, h := range []string{"Content-Md5", "Digest", "Content-Digest", "Repr-Digest", "Etag"} {
		resp.Header.Del(h)
	}

	if mode == "json" {
		return m.wrapJSON(resp, orig, body, enc, rec, block)
	}

	if enc != nil {
		body = transform.NewReader(body, enc.NewDecoder())
	}
	var proc processor
	switch {
	case mode == "sse":
		proc = &sseProc{s: newSSEMasker(m, rec, kind)}
	case htmlText:
		proc = &textProc{ts: m.newHTMLStream("body", rec)}
	default:
		proc = &textProc{ts: m.NewTextStream("body", rec)}
	}
	mr := &maskReader{src: body, closer: orig, proc: proc, buf: make([]byte, 32<<10)}
	resp.Body = mr
	if enc != nil {
		resp.Body = &readCloser{Reader: transform.NewReader(mr, encoding.ReplaceUnsupported(enc.NewEncoder())), Closer: mr}
	}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return nil
}

// wrapJSON reads and masks a JSON body. The body is read into a pooled
// buffer; when masking changes nothing the buffer itself is sent and goes
// back to the pool when the body is closed.
func (m *Masker) wrapJSON(resp *http.Response, orig io.ReadCloser, body io.Reader, enc encoding.Encoding, rec *Recorder, block func(string) error) error {
	defer orig.Close()
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	if cl := resp.ContentLength; cl > 0 && cl <= m.p.MaxBodyBytes {
		buf.Grow(int(cl) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(body, m.p.MaxBodyBytes+1)); err != nil {
		putBody(buf)
		// Not a refusal: the upstream failed before anything was sent.
		return fmt.Errorf("mask: reading the upstream body: %w", err)
	}
	if int64(buf.Len()) > m.p.MaxBodyBytes {
		putBody(buf)
		return block("JSON body exceeds max_body_bytes")
	}
	in := buf.Bytes()
	if enc != nil {
		dec, err := enc.NewDecoder().Bytes(in)
		if err != nil {
			putBody(buf)
			return block("body cannot be decoded from its charset")
		}
		in = dec
	}
	// The masked text goes into a pooled buffer too (sent, then returned
	// to the pool when the body is closed).
	ob := outPool.Get().(*[]byte)
	out, changed, err := m.rewriteJSONInto((*ob)[:0], string(in), rec, "", nil)
	pooledOut := err == nil && changed
	if !pooledOut {
		outPool.Put(ob)
	}
	if err != nil {
		if m.failClosed {
			putBody(buf)
			if errors.Is(err, errNotOneValue) {
				return block("body is not exactly one JSON value")
			}
			return block("body is not valid JSON")
		}
		out, changed = []byte(m.MaskText(string(in), "body", rec)), true
	}
	var n int
	switch {
	case enc != nil:
		src := in
		if changed {
			src = out
		}
		b, err := encoding.ReplaceUnsupported(enc.NewEncoder()).Bytes(src)
		putBody(buf)
		if pooledOut {
			putOut(ob, out)
		}
		if err != nil {
			return block("masked body cannot be encoded in its charset")
		}
		resp.Body, n = io.NopCloser(bytes.NewReader(b)), len(b)
	case pooledOut:
		putBody(buf)
		*ob = out
		resp.Body, n = &pooledBody{Reader: bytes.NewReader(out), out: ob}, len(out)
	case changed:
		putBody(buf)
		resp.Body, n = io.NopCloser(bytes.NewReader(out)), len(out)
	default:
		resp.Body, n = &pooledBody{Reader: bytes.NewReader(in), buf: buf}, len(in)
	}
	resp.ContentLength = int64(n)
	resp.Header.Set("Content-Length", strconv.Itoa(n))
	return nil
}

// bodyPool recycles the buffers JSON bodies are read into (the hot path of
// non-streamed answers); buffers that grew past maxPooledBody are dropped.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 1 << 20

func putBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		bodyPool.Put(b)
	}
}

// outPool recycles the buffers masked JSON bodies are written into.
var outPool = sync.Pool{New: func() any { return new([]byte) }}

func putOut(p *[]byte, b []byte) {
	if cap(b) <= maxPooledBody {
		*p = b[:0]
		outPool.Put(p)
	}
}

// pooledBody sends a pooled buffer and returns it to its pool on Close.
type pooledBody struct {
	*bytes.Reader
	mu  sync.Mutex
	buf *bytes.Buffer // the body as read (bodyPool)
	out *[]byte       // or the masked body (outPool)
}

func (p *pooledBody) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Reader.Reset(nil)
	if p.buf != nil {
		putBody(p.buf)
		p.buf = nil
	}
	if p.out != nil {
		putOut(p.out, *p.out)
		p.out = nil
	}
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// charsetEncoding returns the encoding of a declared charset, nil for
// UTF-8 (and US-ASCII, which UTF-8 text is often mislabelled as). A charset
// that cannot be decoded (UTF-7, EBCDIC, unknown names, the WHATWG
// "replacement" encodings) is an error: the response is refused rather
// than masked as bytes the caller will read differently.
func charsetEncoding(label string) (encoding.Encoding, error) {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(label), `"'`)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return nil, nil
	}
	e, err := htmlindex.Get(label)
	if err != nil {
		return nil, fmt.Errorf("unsupported charset %q", label)
	}
	switch name, _ := htmlindex.Name(e); name {
	case "utf-8":
		return nil, nil
	case "replacement", "":
		return nil, fmt.Errorf("unsupported charset %q", label)
	}
	return e, nil
}

// contentAction looks up a media type in content_types: exact, then
// "type/*", then "*/*"; unlisted types are blocked.
func (m *Masker) contentAction(mt string) ContentAction {
	if a, ok := m.p.ContentTypes[mt]; ok {
		return a
	}
	if i := strings.IndexByte(mt, '/'); i > 0 {
		if a, ok := m.p.ContentTypes[mt[:i]+"/*"]; ok {
			return a
		}
	}
	if a, ok := m.p.ContentTypes["*/*"]; ok {
		return a
	}
	return ActionBlock
}

// decodeBody undoes a Content-Encoding. Decoders are created on first read
// so that WrapResponse never blocks on the upstream.
func decodeBody(enc string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return r, nil
	case "gzip", "x-gzip":
		return &lazyReader{open: func() (io.Reader, error) { return gzip.NewReader(r) }}, nil
	case "deflate":
		return &lazyReader{open: func() (io.Reader, error) { return zlib.NewReader(r) }}, nil
	}
	return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
}

type lazyReader struct {
	open func() (io.Reader, error)
	r    io.Reader
	err  error
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil && l.err == nil {
		l.r, l.err = l.open()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.r.Read(p)
}

// processor turns upstream chunks into masked output.
type processor interface {
	// process appends the output for chunk p to dst; eof ends the stream.
	process(dst, p []byte, eof bool) []byte
	// abort ends the stream abnormally: held-back text is dropped and what
	// the caller must still receive (an SSE error event) is appended.
	abort(dst []byte, reason string) []byte
	// inBand reports whether abort's output tells the caller of the abnormal
	// end; otherwise the connection must be cut.
	inBand() bool
	// stopped reports that the stream was cut (fail closed).
	stopped() bool
}

type textProc struct{ ts *TextStream }

func (t *textProc) process(dst, p []byte, eof bool) []byte {
	if len(p) > 0 {
		dst = t.ts.Write(dst, string(p))
	}
	if eof {
		dst = t.ts.Flush(dst)
	}
	return dst
}

func (t *textProc) abort(dst []byte, reason string) []byte {
	t.ts.Drop()
	t.ts.rec.truncate(reason)
	return dst
}

func (t *textProc) inBand() bool  { return false }
func (t *textProc) stopped() bool { return false }

type sseProc struct{ s *sseMasker }

func (p *sseProc) process(dst, chunk []byte, eof bool) []byte {
	p.s.out = dst
	p.s.feed(chunk)
	if eof {
		p.s.finish()
	}
	return p.s.out
}

func (p *sseProc) abort(dst []byte, reason string) []byte {
	p.s.out = dst
	p.s.abort(reason)
	return p.s.out
}

func (p *sseProc) inBand() bool  { return true }
func (p *sseProc) stopped() bool { return p.s.failed }

// maskReader is the masked response body. Each Read returns as soon as some
// masked output is available, so streams keep flowing.
type maskReader struct {
	src    io.Reader
	closer io.Closer
	proc   processor
	buf    []byte
	out    []byte
	off    int
	done   bool
	err    error
}

func (r *maskReader) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		if r.done {
			return 0, r.err
		}
		n, err := r.src.Read(r.buf)
		r.off = 0
		switch {
		case err == nil:
			r.out = r.proc.process(r.out[:0], r.buf[:n], false)
			if r.proc.stopped() {
				r.done, r.err = true, io.EOF
			}
		case errors.Is(err, io.EOF):
			r.out = r.proc.process(r.out[:0], r.buf[:n], true)
			r.done, r.err = true, io.EOF
		default:
			// The upstream broke off: what arrived is masked, what is held
			// back is dropped.
			r.out = r.proc.process(r.out[:0], r.buf[:n], false)
			r.out = r.proc.abort(r.out, abortReason(err))
			r.done, r.err = true, io.EOF
			if !r.proc.inBand() {
				r.err = fmt.Errorf("mask: upstream body: %w", err)
			}
		}
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

func (r *maskReader) Close() error { return r.closer.Close() }

// abortReason says, without internals, why an upstream body ended early.
func abortReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "the request was canceled"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "the upstream timed out"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the upstream connection closed mid-response"
	}
	return "the upstream connection broke"
}
