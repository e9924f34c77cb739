package mask

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
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
//     masks it with MaskJSON and sets Content-Length;
//   - text/event-stream: replaces Body with a streaming SSE masker (kind
//     says how to read events) and removes Content-Length;
//   - text/* (and a missing Content-Type): streams the body through the text
//     masker with hold-back, removing Content-Length;
//   - any other type: content_types decides mask (as text), pass or block;
//     unlisted types are blocked.
//
// Content-Encoding gzip and deflate are decoded and the header removed;
// other encodings are blocked, and so are protocol upgrades (101). Every returned error matches ErrBlocked.
// Masking actions go to rec as the body is read; read rec after the body
// is closed.
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
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return block("unparseable Content-Type")
		}
	}
	var mode ContentAction
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		mode = "json"
	case mt == "text/event-stream":
		mode = "sse"
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
		defer orig.Close()
		in, err := io.ReadAll(io.LimitReader(body, m.p.MaxBodyBytes+1))
		if err != nil {
			return block("reading body: " + err.Error())
		}
		if int64(len(in)) > m.p.MaxBodyBytes {
			return block("JSON body exceeds max_body_bytes")
		}
		out, err := m.MaskJSON(in, rec)
		if err != nil {
			if m.failClosed {
				return block("body is not valid JSON")
			}
			out = []byte(m.MaskText(string(in), "body", rec))
		}
		resp.Body = io.NopCloser(bytes.NewReader(out))
		resp.ContentLength = int64(len(out))
		resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
		return nil
	}

	var proc processor
	if mode == "sse" {
		proc = &sseProc{s: newSSEMasker(m, rec, kind)}
	} else {
		proc = &textProc{ts: m.NewTextStream("body", rec)}
	}
	resp.Body = &maskReader{src: body, closer: orig, proc: proc, buf: make([]byte, 32<<10)}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	return nil
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
		eof := err != nil
		r.out = r.proc.process(r.out[:0], r.buf[:n], eof)
		r.off = 0
		if r.proc.stopped() {
			r.done, r.err = true, io.EOF
		} else if eof {
			r.done = true
			r.err = err
			if errors.Is(err, io.EOF) {
				r.err = io.EOF
			} else {
				r.err = fmt.Errorf("mask: upstream body: %w", err)
			}
		}
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

func (r *maskReader) Close() error { return r.closer.Close() }
