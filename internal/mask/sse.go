package mask

import (
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// StreamKind tells the SSE masker how to find the text of a stream.
type StreamKind int

const (
	// StreamGeneric treats the data of every event as one text channel: the
	// concatenation of all data fields is what is masked.
	StreamGeneric StreamKind = iota
	// StreamOpenAI understands OpenAI-style JSON events: chat completion
	// deltas per choice (content, reasoning_content, refusal, tool-call
	// arguments per tool index), legacy completions choices[i].text, and
	// Responses API *.delta events per output and content index. Every
	// other string in an event is masked as a value of its own.
	StreamOpenAI
)

// String returns "generic" or "openai".
func (k StreamKind) String() string {
	if k == StreamOpenAI {
		return "openai"
	}
	return "generic"
}

// sseEvent is one event being assembled from field lines.
type sseEvent struct {
	name, id, retry          string
	hasName, hasID, hasRetry bool
	data                     []string
	hasData                  bool
	size                     int
}

// channel is one logical text stream inside an SSE stream, e.g. the content
// deltas of choice 0.
type channel struct {
	key string
	ts  *TextStream
	// what a synthetic flush event for this channel looks like
	kind      chanKind
	field     string // chat delta field: content, reasoning_content, refusal
	choice    int
	tool      int
	template  string // data of the channel's last event
	eventName string
}

type chanKind int

const (
	chGeneric chanKind = iota
	chChatField
	chChatTool
	chLegacy
	chResponses
)

// sseMasker parses an SSE byte stream incrementally and writes the masked
// stream to out.
type sseMasker struct {
	m        *Masker
	rec      *Recorder
	kind     StreamKind
	line     []byte
	skipLF   bool
	ev       sseEvent
	out      []byte
	channels map[string]*channel
	order    []*channel
	failed   bool
	// ended: the stream's own end marker was seen ([DONE], or a Responses
	// API terminal event), so an end of input afterwards is a normal end.
	ended bool
}

func newSSEMasker(m *Masker, rec *Recorder, kind StreamKind) *sseMasker {
	return &sseMasker{m: m, rec: rec, kind: kind, channels: map[string]*channel{}}
}

// feed processes a chunk of upstream bytes. Any chunking is accepted:
// lines may end in LF, CRLF or CR, split anywhere.
func (s *sseMasker) feed(p []byte) {
	for len(p) > 0 && !s.failed {
		if s.skipLF {
			s.skipLF = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := 0
		for i < len(p) && p[i] != '\n' && p[i] != '\r' {
			i++
		}
		if len(s.line)+i > s.m.p.MaxEventBytes {
			s.fail("an event line exceeds max_event_bytes")
			return
		}
		s.line = append(s.line, p[:i]...)
		if i == len(p) {
			return
		}
		if p[i] == '\r' {
			s.skipLF = true
		}
		p = p[i+1:]
		s.processLine(string(s.line))
		s.line = s.line[:0]
	}
}

// finish ends the stream: a last unterminated line and event are processed
// and every channel is flushed. An OpenAI stream that ends without its end
// marker while text is held back was cut short (a close-delimited body
// reads as a clean end): it ends like abort, the held text withheld.
func (s *sseMasker) finish() {
	if s.failed {
		return
	}
	if len(s.line) > 0 {
		s.processLine(string(s.line))
		s.line = s.line[:0]
	}
	if s.ev.hasData || s.ev.hasName || s.ev.hasID || s.ev.hasRetry {
		s.dispatch()
	}
	if s.kind == StreamOpenAI && !s.ended && !s.failed && s.pendingText() > 0 {
		s.abort("the upstream stream ended without its end marker ([DONE])")
		return
	}
	s.flushAll()
}

// pendingText is how many bytes the channels hold back.
func (s *sseMasker) pendingText() int {
	n := 0
	for _, c := range s.order {
		n += c.ts.Pending()
	}
	return n
}

// abort ends the stream abnormally (the upstream broke, timed out, or the
// request was canceled): the partial line and event are discarded, the
// text every channel holds back is dropped, never flushed, and the stream
// ends with an error event the OpenAI SDKs raise as an APIError.
func (s *sseMasker) abort(reason string) {
	if s.failed {
		return
	}
	if s.ended && s.pendingText() == 0 {
		// The stream's own end marker arrived and nothing is held: the
		// answer was complete; only the connection's end was not clean.
		return
	}
	s.line = s.line[:0]
	s.ev = sseEvent{data: s.ev.data[:0]}
	dropped := 0
	for _, c := range s.order {
		dropped += c.ts.Drop()
	}
	s.rec.truncate(reason)
	s.failed = true
	s.out = appendErrorEvent(s.out, "upstream_error", "stream_truncated",
		"warden: the response stream was cut short: "+reason+"; text held back for masking was withheld", s.rec.requestID())
}

// appendErrorEvent appends an OpenAI-style error event:
//
//	event: error
//	data: {"error":{"type":…,"code":…,"message":…,"request_id":…}}
//
// The openai Python and Node SDKs raise an APIError with this message for
// an event named error whose data has an "error" object.
func appendErrorEvent(dst []byte, typ, code, msg, requestID string) []byte {
	dst = append(dst, "event: error\ndata: {\"error\":{\"type\":"...)
	dst, _ = jsontext.AppendQuote(dst, typ)
	dst = append(dst, `,"code":`...)
	dst, _ = jsontext.AppendQuote(dst, code)
	dst = append(dst, `,"message":`...)
	dst, _ = jsontext.AppendQuote(dst, msg)
	if requestID != "" {
		dst = append(dst, `,"request_id":`...)
		dst, _ = jsontext.AppendQuote(dst, requestID)
	}
	return append(dst, "}}\n\n"...)
}

func (s *sseMasker) processLine(line string) {
	if line == "" {
		s.dispatch()
		return
	}
	if s.failed {
		return
	}
	if line[0] == ':' {
		// A comment; masked like any text the caller receives.
		s.out = append(s.out, s.m.MaskText(line, "sse:comment", s.rec)...)
		s.out = append(s.out, '\n')
		return
	}
	name, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	s.ev.size += len(line)
	if s.ev.size > s.m.p.MaxEventBytes {
		s.fail("an event exceeds max_event_bytes")
		return
	}
	switch name {
	case "data":
		s.ev.data = append(s.ev.data, value)
		s.ev.hasData = true
	case "event":
		s.ev.name, s.ev.hasName = value, true
	case "id":
		s.ev.id, s.ev.hasID = value, true
	case "retry":
		s.ev.retry, s.ev.hasRetry = value, true
	default:
		// Unknown fields are ignored by clients; drop them rather than pass
		// unmasked bytes.
	}
}

// fail writes an error event and stops the stream (fail closed).
func (s *sseMasker) fail(reason string) {
	if s.failed {
		return
	}
	s.failed = true
	s.rec.fail(reason)
	s.out = appendErrorEvent(s.out, "masking_failed", "response_refused",
		"warden: response stream refused by masking: "+reason, s.rec.requestID())
}

func (s *sseMasker) writeEvent(name string, hasName bool, id string, hasID bool, retry string, hasRetry bool, data string, hasData bool) {
	if s.failed {
		return // nothing follows a fail-closed error event
	}
	if hasName {
		s.out = append(s.out, "event: "...)
		s.out = append(s.out, name...)
		s.out = append(s.out, '\n')
	}
	if hasID {
		s.out = append(s.out, "id: "...)
		s.out = append(s.out, id...)
		s.out = append(s.out, '\n')
	}
	if hasRetry {
		s.out = append(s.out, "retry: "...)
		s.out = append(s.out, retry...)
		s.out = append(s.out, '\n')
	}
	if hasData {
		for {
			line, rest, more := strings.Cut(data, "\n")
			s.out = append(s.out, "data: "...)
			s.out = append(s.out, line...)
			s.out = append(s.out, '\n')
			if !more {
				break
			}
			data = rest
		}
	}
	s.out = append(s.out, '\n')
}

func (s *sseMasker) dispatch() {
	ev := s.ev
	s.ev = sseEvent{data: s.ev.data[:0]}
	if !ev.hasData {
		if ev.hasName || ev.hasID || ev.hasRetry {
			s.writeEvent(ev.name, ev.hasName, ev.id, ev.hasID, ev.retry, ev.hasRetry, "", false)
		}
		return
	}
	data := strings.Join(ev.data, "\n")
	if strings.TrimSpace(data) == "[DONE]" {
		s.ended = true
		s.flushAll()
		s.writeEvent(ev.name, ev.hasName, ev.id, ev.hasID, ev.retry, ev.hasRetry, data, true)
		return
	}
	if s.kind == StreamOpenAI && looksJSON(data) {
		// openAIEvent parses the event before it feeds any channel, so an
		// invalid event changes no state.
		out, drop, err := s.openAIEvent(ev, data)
		if err == nil {
			if !drop || ev.hasID || ev.hasRetry {
				s.writeEvent(ev.name, ev.hasName, ev.id, ev.hasID, ev.retry, ev.hasRetry, out, true)
			}
			return
		}
		if s.m.failClosed {
			s.fail("event data is not exactly one valid JSON value")
			return
		}
	}
	// Data that is not JSON (plain text, a bare number) is masked as text.
	ch := s.channel("data", func(c *channel) { c.kind = chGeneric })
	text := string(ch.ts.Write(nil, data))
	if text == "" && !ev.hasName && !ev.hasID && !ev.hasRetry {
		return // held back entirely: fewer events, never more
	}
	s.writeEvent(ev.name, ev.hasName, ev.id, ev.hasID, ev.retry, ev.hasRetry, text, true)
}

// looksJSON reports data that starts like a JSON object, array or string.
func looksJSON(data string) bool {
	t := strings.TrimLeft(data, " \t\r\n")
	return t != "" && (t[0] == '{' || t[0] == '[' || t[0] == '"')
}

func (s *sseMasker) channel(key string, init func(*channel)) *channel {
	if c, ok := s.channels[key]; ok {
		return c
	}
	c := &channel{key: key, ts: s.m.NewTextStream("sse:"+key, s.rec)}
	init(c)
	s.channels[key] = c
	s.order = append(s.order, c)
	return c
}

// flushAll emits the held text of every channel.
func (s *sseMasker) flushAll() {
	for _, c := range s.order {
		s.flushChannel(c)
	}
}

// flushChannel emits a channel's held text as a synthetic event shaped like
// the channel's own events.
func (s *sseMasker) flushChannel(c *channel) {
	if c.ts.Pending() == 0 {
		return
	}
	text := string(c.ts.Flush(nil))
	if text == "" {
		return
	}
	switch c.kind {
	case chGeneric:
		s.writeEvent("", false, "", false, "", false, text, true)
	case chResponses:
		data, err := replaceTop(c.template, "delta", text)
		if err != nil {
			s.fail("cannot build flush event")
			return
		}
		s.writeEvent(c.eventName, c.eventName != "", "", false, "", false, data, true)
	default:
		s.writeEvent(c.eventName, c.eventName != "", "", false, "", false, s.chatFlushEvent(c, text), true)
	}
}
