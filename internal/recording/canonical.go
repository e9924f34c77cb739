package recording

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The canonical form of a recording (version 1) is:
//
//	warden-recording v1\n
//	meta <n>\n<n bytes: Meta as compact JSON>\n
//	request-body <n>\n<n bytes>\n
//	timing <n>\n<n bytes: one "<end> <at_ns>\n" line per Mark>\n
//	response-body <n>\n<n bytes>\n
//
// Lengths are decimal without leading zeros. Nothing follows the last
// section. The digest is the SHA-256 of these bytes. The form is plain
// text so that a decrypted recording can be read with standard tools; the
// sections are length-prefixed so bodies are copied, never escaped, and a
// recording of any size is written and read as a stream.
const magic = "warden-recording v1\n"

// Section names, in their order.
const (
	secMeta     = "meta"
	secRequest  = "request-body"
	secTiming   = "timing"
	secResponse = "response-body"
)

// MaxMetaSize bounds the meta section.
const MaxMetaSize = 1 << 20

// maxMarks bounds the number of timing marks of one recording.
const maxMarks = 1 << 32

// maxMarkLine is the longest valid timing line: two 19-digit numbers, a
// space and a newline.
const maxMarkLine = 19 + 1 + 19 + 1

// Body is a section's content: Size bytes read from R.
type Body struct {
	R    io.Reader
	Size int64
}

// BytesBody is a Body over b.
func BytesBody(b []byte) Body { return Body{R: bytes.NewReader(b), Size: int64(len(b))} }

// AppendMark appends m's timing line to dst.
func AppendMark(dst []byte, m Mark) []byte {
	dst = strconv.AppendInt(dst, m.End, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, m.AtNS, 10)
	return append(dst, '\n')
}

// MarshalMeta returns the canonical JSON of m.
func MarshalMeta(m *Meta) ([]byte, error) {
	return appendMetaChecked(make([]byte, 0, metaSizeHint(m)), m)
}

// appendMetaChecked appends the canonical JSON of m to dst (MarshalMeta
// into a buffer of the caller's). After an error the result still spans
// every byte appended, so that the caller can wipe it.
func appendMetaChecked(dst []byte, m *Meta) ([]byte, error) {
	n := len(dst)
	b, ok := appendMeta(slices.Grow(dst, metaSizeHint(m)), m)
	if !ok {
		j, err := marshalMetaJSON(m)
		if err != nil {
			return b, err
		}
		b = append(b[:n], j...)
	}
	if len(b)-n > MaxMetaSize {
		return b, fmt.Errorf("recording: meta is %d bytes, more than %d", len(b)-n, MaxMetaSize)
	}
	return b, nil
}

// marshalMetaJSON is MarshalMeta through encoding/json: the definition of
// the canonical meta, which appendMeta reproduces without reflection.
func marshalMetaJSON(m *Meta) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	mm := *m
	mm.StartedAt = mm.StartedAt.UTC()
	if mm.Request.Header == nil {
		mm.Request.Header = []Field{}
	}
	if mm.Response.Header == nil {
		mm.Response.Header = []Field{}
	}
	if err := enc.Encode(&mm); err != nil {
		return nil, fmt.Errorf("recording: encode meta: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("recording: meta is %d bytes, more than %d", len(b), MaxMetaSize)
	}
	return b, nil
}

// section is one section of the canonical form: its name and body.
type section struct {
	name string
	body Body
}

// sections lists the canonical form's sections in their order; Encode
// and appendCanonical both write exactly these.
func sections(meta []byte, request, timing, response Body) [4]section {
	return [4]section{
		{secMeta, BytesBody(meta)},
		{secRequest, request},
		{secTiming, timing},
		{secResponse, response},
	}
}

// appendSectionHeader appends a section's header line ("name size\n").
func appendSectionHeader(dst []byte, name string, size int64) []byte {
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, size, 10)
	return append(dst, '\n')
}

// encodeBufs recycles Encode's write buffers.
var encodeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// Encode writes the canonical form of a recording to w and returns its
// digest. Each Body must deliver exactly Size bytes.
func Encode(w io.Writer, m *Meta, request, timing, response Body) (Digest, error) {
	meta, err := MarshalMeta(m)
	if err != nil {
		return Digest{}, err
	}
	h := sha256.New()
	bw := encodeBufs.Get().(*bufio.Writer)
	bw.Reset(io.MultiWriter(w, h))
	defer func() { bw.Reset(nil); encodeBufs.Put(bw) }()
	bw.WriteString(magic)
	var hdr [64]byte
	for _, s := range sections(meta, request, timing, response) {
		bw.Write(appendSectionHeader(hdr[:0], s.name, s.body.Size))
		if s.body.Size > 0 {
			n, err := io.CopyN(bw, s.body.R, s.body.Size)
			if err != nil {
				return Digest{}, fmt.Errorf("recording: encode %s: %d of %d bytes: %w", s.name, n, s.body.Size, err)
			}
		}
		if err := bw.WriteByte('\n'); err != nil {
			return Digest{}, fmt.Errorf("recording: encode %s: %w", s.name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return Digest{}, fmt.Errorf("recording: encode: %w", err)
	}
	var d Digest
	h.Sum(d[:0])
	return d, nil
}

// appendCanonical appends the canonical form of a recording whose meta
// is already encoded (MarshalMeta) to dst: what Encode writes, built in
// memory for small recordings so that it can be hashed and compressed in
// one call each (no streaming writers in between). Each Body must deliver
// exactly Size bytes. After an error the result still spans every byte
// written (so that a caller can wipe it).
func appendCanonical(dst, meta []byte, request, timing, response Body) ([]byte, error) {
	dst = append(dst, magic...)
	for _, s := range sections(meta, request, timing, response) {
		dst = appendSectionHeader(dst, s.name, s.body.Size)
		if s.body.Size > 0 {
			n := len(dst)
			dst = slices.Grow(dst, int(s.body.Size))[:n+int(s.body.Size)]
			if k, err := io.ReadFull(s.body.R, dst[n:]); err != nil {
				return dst, fmt.Errorf("recording: encode %s: %d of %d bytes: %w", s.name, k, s.body.Size, err)
			}
		}
		dst = append(dst, '\n')
	}
	return dst, nil
}

// Recording is a recording held in memory, for small ones and for tests.
type Recording struct {
	Meta         Meta
	RequestBody  []byte
	Marks        []Mark
	ResponseBody []byte
}

// Encode writes rec's canonical form to w.
func (rec *Recording) Encode(w io.Writer) (Digest, error) {
	var timing []byte
	for _, m := range rec.Marks {
		timing = AppendMark(timing, m)
	}
	return Encode(w, &rec.Meta, BytesBody(rec.RequestBody), BytesBody(timing), BytesBody(rec.ResponseBody))
}

// Event is one timed piece of a response: an SSE event (with its
// terminating blank line) or a chunk of another response.
type Event struct {
	// At is the offset from the request start at which the client had it.
	At time.Duration
	// Data is the bytes, nil when the body was not recorded.
	Data []byte
	// Size is len(Data), or the size the client received when Data is nil.
	Size int64
	// Partial marks an SSE tail that no blank line ended.
	Partial bool
}

// Events splits the response body along the marks.
func (rec *Recording) Events() []Event {
	out := make([]Event, 0, len(rec.Marks))
	var start int64
	full := rec.Meta.Response.Body == BodyFull
	for i, m := range rec.Marks {
		ev := Event{At: time.Duration(m.AtNS), Size: m.End - start}
		if full {
			ev.Data = rec.ResponseBody[start:m.End]
		}
		ev.Partial = rec.Meta.Response.SSE && i >= rec.Meta.Response.Events
		out = append(out, ev)
		start = m.End
	}
	return out
}

// Reader reads a canonical form strictly, as a stream, hashing every byte
// it consumes. Call, in order: Meta (via NewReader), RequestBody, Marks,
// ResponseBody (read it to EOF), then Close for the digest. A Reader
// rejects anything Encode would not have written.
type Reader struct {
	src  *bufio.Reader
	h    hash.Hash
	meta Meta
	next int // index of the next section to read
	resp *sectionReader
}

// NewReader reads the header and the meta section of r.
func NewReader(r io.Reader) (*Reader, error) {
	h := sha256.New()
	rd := &Reader{src: bufio.NewReaderSize(io.TeeReader(r, h), 32<<10), h: h}
	var m [len(magic)]byte
	if _, err := io.ReadFull(rd.src, m[:]); err != nil {
		return nil, formatErr("header: %v", noEOF(err))
	}
	if string(m[:]) != magic {
		return nil, formatErr("not a warden recording (bad header)")
	}
	n, err := rd.section(secMeta, MaxMetaSize)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rd.src, b); err != nil {
		return nil, formatErr("meta: %v", noEOF(err))
	}
	if err := rd.sectionEnd(secMeta); err != nil {
		return nil, err
	}
	if err := parseMeta(b, &rd.meta); err != nil {
		return nil, err
	}
	rd.next = 1
	return rd, nil
}

// FormatError reports a canonical form that does not parse.
type FormatError struct{ Msg string }

func (e *FormatError) Error() string { return "recording: malformed: " + e.Msg }

func formatErr(format string, args ...any) error {
	return &FormatError{Msg: fmt.Sprintf(format, args...)}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Meta returns the recording's header.
func (rd *Reader) Meta() *Meta { return &rd.meta }

// section reads a section header and returns its length.
func (rd *Reader) section(name string, max int64) (int64, error) {
	line, err := rd.src.ReadSlice('\n')
	if err != nil {
		return 0, formatErr("%s: section header: %v", name, noEOF(err))
	}
	rest, ok := bytes.CutPrefix(line, []byte(name+" "))
	if !ok {
		return 0, formatErr("expected section %q", name)
	}
	n, err := parseDecimal(rest[:len(rest)-1])
	if err != nil {
		return 0, formatErr("%s: length: %v", name, err)
	}
	if n > max {
		return 0, formatErr("%s: length %d exceeds %d", name, n, max)
	}
	return n, nil
}

func (rd *Reader) sectionEnd(name string) error {
	c, err := rd.src.ReadByte()
	if err != nil {
		return formatErr("%s: %v", name, noEOF(err))
	}
	if c != '\n' {
		return formatErr("%s: section longer than its length", name)
	}
	return nil
}

// parseDecimal parses a non-negative decimal without sign or leading
// zeros.
func parseDecimal(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 19 || (b[0] == '0' && len(b) > 1) {
		return 0, errors.New("not a canonical decimal")
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errors.New("not a canonical decimal")
		}
		n = n*10 + int64(c-'0')
		if n < 0 {
			return 0, errors.New("overflow")
		}
	}
	return n, nil
}

func parseMeta(b []byte, m *Meta) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return formatErr("meta: %v", err)
	}
	if dec.More() {
		return formatErr("meta: trailing data")
	}
	again, err := MarshalMeta(m)
	if err != nil {
		return formatErr("meta: %v", err)
	}
	if !bytes.Equal(again, b) {
		return formatErr("meta is not in canonical form")
	}
	return m.validate()
}

func (m *Meta) validate() error {
	if m.V != FormatVersion {
		return formatErr("meta: version %d, want %d", m.V, FormatVersion)
	}
	if err := validID(m.ID); err != nil {
		return formatErr("meta: %v", err)
	}
	if m.RequestID == "" {
		return formatErr("meta: request_id is empty")
	}
	if m.Level != LevelMetadata && m.Level != LevelFull {
		return formatErr("meta: level %q", m.Level)
	}
	if m.StartedAt.Location() != time.UTC {
		return formatErr("meta: started_at is not UTC")
	}
	rq, rs := &m.Request, &m.Response
	switch rq.Body {
	case BodyNone:
		if rq.BodySize != 0 {
			return formatErr("meta: request body none with size %d", rq.BodySize)
		}
	case BodyRedacted, BodyRaw:
		if m.Level != LevelFull {
			return formatErr("meta: request body %s at level %s", rq.Body, m.Level)
		}
	case BodyOmitted:
	default:
		return formatErr("meta: request body %q", rq.Body)
	}
	switch rs.Body {
	case BodyNone:
		if rs.BodySize != 0 {
			return formatErr("meta: response body none with size %d", rs.BodySize)
		}
	case BodyFull:
		if m.Level != LevelFull {
			return formatErr("meta: response body full at level %s", m.Level)
		}
	case BodyOmitted:
	default:
		return formatErr("meta: response body %q", rs.Body)
	}
	if rq.BodySize < 0 || rs.BodySize < 0 || m.DurationNS < 0 || rs.HeaderAtNS < 0 || rs.Status < 0 || rs.Status > 999 {
		return formatErr("meta: negative size, offset or status")
	}
	if rs.Events < 0 || rs.Marks < 0 || rs.Marks > maxMarks {
		return formatErr("meta: mark count %d out of range", rs.Marks)
	}
	if rs.SSE {
		if rs.Marks != rs.Events && rs.Marks != rs.Events+1 {
			return formatErr("meta: %d marks for %d events", rs.Marks, rs.Events)
		}
	} else if rs.Events != 0 {
		return formatErr("meta: events in a response that is not SSE")
	}
	if (rs.Marks == 0) != (rs.BodySize == 0) {
		return formatErr("meta: %d marks for %d body bytes", rs.Marks, rs.BodySize)
	}
	for _, hs := range [][]Field{rq.Header, rs.Header} {
		for i, f := range hs {
			if f.Name == "" || (i > 0 && hs[i-1].Name > f.Name) {
				return formatErr("meta: header names empty or not sorted")
			}
		}
	}
	return nil
}

// RequestBody returns the request-body section, refusing one larger than
// max.
func (rd *Reader) RequestBody(max int64) ([]byte, error) {
	if rd.next != 1 {
		return nil, errors.New("recording: RequestBody out of order")
	}
	n, err := rd.section(secRequest, max)
	if err != nil {
		return nil, err
	}
	if want := rd.meta.Request.Body; (want == BodyNone || want == BodyOmitted) && n != 0 {
		return nil, formatErr("request body %s but %d bytes recorded", want, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rd.src, b); err != nil {
		return nil, formatErr("request-body: %v", noEOF(err))
	}
	if err := rd.sectionEnd(secRequest); err != nil {
		return nil, err
	}
	rd.next = 2
	return b, nil
}

// Marks returns the timing marks, checked against the meta: ends strictly
// increasing up to the body size, times never going backwards.
func (rd *Reader) Marks() ([]Mark, error) {
	if rd.next != 2 {
		return nil, errors.New("recording: Marks out of order")
	}
	want := rd.meta.Response.Marks
	n, err := rd.section(secTiming, int64(want)*maxMarkLine)
	if err != nil {
		return nil, err
	}
	marks := make([]Mark, 0, min(want, 1<<16))
	lr := io.LimitedReader{R: rd.src, N: n}
	br := bufio.NewReaderSize(&lr, 64)
	var prev Mark
	for i := 0; i < want; i++ {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, formatErr("timing line %d: %v", i+1, noEOF(err))
		}
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return nil, formatErr("timing line %d: no space", i+1)
		}
		end, err1 := parseDecimal(line[:sp])
		at, err2 := parseDecimal(line[sp+1 : len(line)-1])
		if err1 != nil || err2 != nil {
			return nil, formatErr("timing line %d: not two decimals", i+1)
		}
		if end <= prev.End || at < prev.AtNS || end > rd.meta.Response.BodySize {
			return nil, formatErr("timing line %d: out of order or beyond the body", i+1)
		}
		prev = Mark{End: end, AtNS: at}
		marks = append(marks, prev)
	}
	if br.Buffered() > 0 || lr.N > 0 {
		return nil, formatErr("timing: more lines than the %d marks", want)
	}
	if want > 0 && prev.End != rd.meta.Response.BodySize {
		return nil, formatErr("timing: marks end at %d, body is %d bytes", prev.End, rd.meta.Response.BodySize)
	}
	if err := rd.sectionEnd(secTiming); err != nil {
		return nil, err
	}
	rd.next = 3
	return marks, nil
}

// ResponseBody returns a reader of the response-body section. Read it to
// EOF before Close.
func (rd *Reader) ResponseBody() (io.Reader, error) {
	if rd.next != 3 {
		return nil, errors.New("recording: ResponseBody out of order")
	}
	want := int64(0)
	if rd.meta.Response.Body == BodyFull {
		want = rd.meta.Response.BodySize
	}
	n, err := rd.section(secResponse, want)
	if err != nil {
		return nil, err
	}
	if n != want {
		return nil, formatErr("response-body: %d bytes, meta says %d", n, want)
	}
	rd.resp = &sectionReader{r: rd.src, n: n}
	rd.next = 4
	return rd.resp, nil
}

type sectionReader struct {
	r *bufio.Reader
	n int64
}

func (s *sectionReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	n, err := s.r.Read(p)
	s.n -= int64(n)
	if err == io.EOF {
		if s.n > 0 {
			return n, formatErr("response-body: %v", io.ErrUnexpectedEOF)
		}
		err = nil
	}
	return n, err
}

// Close checks that the response body was read in full and that nothing
// follows it, and returns the digest of everything read.
func (rd *Reader) Close() (Digest, error) {
	if rd.next != 4 || rd.resp.n != 0 {
		return Digest{}, errors.New("recording: Close before the response body was read")
	}
	if err := rd.sectionEnd(secResponse); err != nil {
		return Digest{}, err
	}
	if _, err := rd.src.ReadByte(); err != io.EOF {
		if err == nil {
			return Digest{}, formatErr("data after the last section")
		}
		return Digest{}, err
	}
	var d Digest
	rd.h.Sum(d[:0])
	return d, nil
}

// ReadAll reads a whole canonical form into memory, refusing bodies
// larger than max bytes.
func ReadAll(r io.Reader, max int64) (*Recording, Digest, error) {
	rd, err := NewReader(r)
	if err != nil {
		return nil, Digest{}, err
	}
	rec := &Recording{Meta: *rd.Meta()}
	if rec.RequestBody, err = rd.RequestBody(max); err != nil {
		return nil, Digest{}, err
	}
	if rec.Marks, err = rd.Marks(); err != nil {
		return nil, Digest{}, err
	}
	if rec.Meta.Response.Body == BodyFull && rec.Meta.Response.BodySize > max {
		return nil, Digest{}, fmt.Errorf("recording: response body of %d bytes exceeds %d", rec.Meta.Response.BodySize, max)
	}
	body, err := rd.ResponseBody()
	if err != nil {
		return nil, Digest{}, err
	}
	if rec.ResponseBody, err = io.ReadAll(body); err != nil {
		return nil, Digest{}, err
	}
	d, err := rd.Close()
	if err != nil {
		return nil, Digest{}, err
	}
	return rec, d, nil
}
