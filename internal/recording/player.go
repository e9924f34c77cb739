package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Format is a replay output format.
type Format string

const (
	// FormatText prints the conversation for a terminal: the request (its
	// messages, for a chat request), then the answer as it streamed.
	FormatText Format = "text"
	// FormatJSON writes JSON lines: a request line, a response line, one
	// line per event or chunk, and an end line, each with its offset.
	FormatJSON Format = "json"
	// FormatHAR writes an HTTP Archive 1.2 document (see WriteHAR); it
	// has no timing of its own to play.
	FormatHAR Format = "har"
)

// ParseFormat accepts text, json and har.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatText, FormatJSON, FormatHAR:
		return f, nil
	}
	return "", fmt.Errorf("replay format must be text, json or har, not %q", s)
}

// ParseSpeed accepts "max" (no waiting, returned as 0) or a positive
// factor such as 1 or 4.
func ParseSpeed(s string) (float64, error) {
	if s == "max" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f > 0) || f > 1e6 || math.IsInf(f, 0) {
		return 0, fmt.Errorf("replay speed must be max or a positive number such as 1 or 4, not %q", s)
	}
	return f, nil
}

// Player re-emits a recording with its original timing. The schedule is
// absolute — event i is written at the player's start plus its recorded
// offset divided by Speed — so lateness never accumulates.
type Player struct {
	// Speed divides every offset; 0 plays at maximum speed (no waits).
	Speed float64
	// Format is text (default) or json.
	Format Format
	// Clock, for tests; nil uses the real clock.
	Clock Clock
}

// Clock is the player's time source.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Play writes rec to w with its timing. A write error or ctx ending stops
// it.
func (p *Player) Play(ctx context.Context, w io.Writer, rec *Recording) error {
	clk := p.Clock
	if clk == nil {
		clk = realClock{}
	}
	start := clk.Now()
	wait := func(at int64) error {
		if p.Speed <= 0 {
			return ctx.Err()
		}
		due := start.Add(time.Duration(float64(at) / p.Speed))
		return clk.Sleep(ctx, due.Sub(clk.Now()))
	}
	var out emitter
	switch p.Format {
	case FormatText, "":
		out = &textEmitter{w: w, rec: rec}
	case FormatJSON:
		out = &jsonEmitter{enc: json.NewEncoder(w), rec: rec}
	default:
		return fmt.Errorf("recording: the player writes text or json, not %q (use WriteHAR)", p.Format)
	}
	return walk(rec, out, wait)
}

// walk emits rec through out, calling wait with the offset (ns from the
// request start) before each part that the client had at that offset:
// the response head, each event, the end.
func walk(rec *Recording, out emitter, wait func(at int64) error) error {
	if err := out.request(); err != nil {
		return err
	}
	if rec.Meta.Response.Status == 0 {
		return out.end()
	}
	if err := wait(rec.Meta.Response.HeaderAtNS); err != nil {
		return err
	}
	if err := out.response(); err != nil {
		return err
	}
	for _, ev := range rec.Events() {
		if err := wait(int64(ev.At)); err != nil {
			return err
		}
		if err := out.event(ev); err != nil {
			return err
		}
	}
	if err := wait(rec.Meta.DurationNS); err != nil {
		return err
	}
	return out.end()
}

type emitter interface {
	request() error
	response() error
	event(Event) error
	end() error
}

// jsonEmitter writes JSON lines.
type jsonEmitter struct {
	enc *json.Encoder
	rec *Recording
}

func ms(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

// bodyValue is a body as a JSON value: itself when it is JSON, a string
// when it is UTF-8 text, base64 otherwise.
func bodyValue(b []byte) (any, string) {
	switch {
	case len(b) == 0:
		return nil, ""
	case json.Valid(b):
		return json.RawMessage(b), "json"
	case utf8.Valid(b):
		return string(b), "text"
	}
	return b, "base64"
}

func (j *jsonEmitter) request() error {
	m := &j.rec.Meta
	body, enc := bodyValue(j.rec.RequestBody)
	return j.enc.Encode(map[string]any{
		"type": "request", "at_ms": 0, "recording_id": m.ID, "request_id": m.RequestID,
		"principal": m.Principal, "route": m.Route, "level": m.Level,
		"started_at": m.StartedAt.Format(time.RFC3339Nano), "method": m.Request.Method,
		"path": m.Request.Path, "query": m.Request.Query, "headers": m.Request.Header,
		"body_mode": m.Request.Body, "body_size": m.Request.BodySize, "body": body, "body_encoding": enc,
	})
}

func (j *jsonEmitter) response() error {
	m := &j.rec.Meta
	return j.enc.Encode(map[string]any{
		"type": "response", "at_ms": ms(m.Response.HeaderAtNS), "status": m.Response.Status,
		"headers": m.Response.Header, "sse": m.Response.SSE, "body_mode": m.Response.Body,
	})
}

func (j *jsonEmitter) event(ev Event) error {
	line := map[string]any{"type": "event", "at_ms": ms(int64(ev.At)), "size": ev.Size}
	if !j.rec.Meta.Response.SSE {
		line["type"] = "chunk"
	}
	if ev.Partial {
		line["partial"] = true
	}
	if ev.Data != nil {
		if utf8.Valid(ev.Data) {
			line["data"] = string(ev.Data)
		} else {
			line["data"], line["data_encoding"] = ev.Data, "base64"
		}
	}
	return j.enc.Encode(line)
}

func (j *jsonEmitter) end() error {
	m := &j.rec.Meta
	return j.enc.Encode(map[string]any{
		"type": "end", "at_ms": ms(m.DurationNS), "events": m.Response.Events, "marks": m.Response.Marks,
		"bytes": m.Response.BodySize,
	})
}

// textEmitter prints a conversation for a terminal.
type textEmitter struct {
	w    io.Writer
	rec  *Recording
	text bool // the answer is being printed as extracted text
	err  error
}

func (t *textEmitter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func (t *textEmitter) request() error {
	m := &t.rec.Meta
	t.printf("recording %s  request %s\n", m.ID, m.RequestID)
	t.printf("started %s", m.StartedAt.Format(time.RFC3339Nano))
	if m.Principal != "" {
		t.printf("  principal %s", m.Principal)
	}
	if m.Route != "" {
		t.printf("  route %s", m.Route)
	}
	t.printf("  level %s\n\n", m.Level)
	target := m.Request.Path
	if m.Request.Query != "" {
		target += "?" + m.Request.Query
	}
	t.printf("%s %s\n", m.Request.Method, target)
	for _, f := range m.Request.Header {
		t.printf("%s: %s\n", f.Name, f.Value)
	}
	switch m.Request.Body {
	case BodyNone:
	case BodyOmitted:
		t.printf("\n[request body of %d bytes not recorded]\n", m.Request.BodySize)
	default:
		t.printf("\n")
		if msgs := conversation(t.rec.RequestBody); len(msgs) > 0 {
			for _, msg := range msgs {
				t.printf("%s: %s\n", msg[0], msg[1])
			}
		} else {
			t.printf("%s\n", printable(t.rec.RequestBody))
		}
		if m.Request.Body == BodyRedacted {
			t.printf("[request body redacted]\n")
		}
	}
	return t.err
}

func (t *textEmitter) response() error {
	rs := &t.rec.Meta.Response
	t.printf("\n--- %d %s  (+%.1f ms)\n", rs.Status, http.StatusText(rs.Status), float64(rs.HeaderAtNS)/1e6)
	if rs.Body == BodyOmitted {
		t.printf("[response body of %d bytes not recorded; %d marks]\n", rs.BodySize, rs.Marks)
	}
	if !rs.SSE && rs.Body == BodyFull {
		// A JSON answer: print its text when it is a chat completion.
		if s, ok := answerText(t.rec.ResponseBody); ok {
			t.printf("assistant: %s\n", s)
			t.text = true
		}
	}
	if rs.SSE && rs.Body == BodyFull {
		t.printf("assistant: ")
	}
	return t.err
}

func (t *textEmitter) event(ev Event) error {
	rs := &t.rec.Meta.Response
	if ev.Data == nil || t.text {
		return t.err
	}
	if !rs.SSE {
		t.printf("%s", printable(ev.Data))
		return t.err
	}
	for _, data := range sseData(ev.Data) {
		if data == "[DONE]" {
			continue
		}
		if s, ok := deltaText([]byte(data)); ok {
			t.printf("%s", s)
		} else {
			t.printf("\n[event] %s\n", data)
		}
	}
	return t.err
}

func (t *textEmitter) end() error {
	m := &t.rec.Meta
	t.printf("\n--- end (+%.1f ms): %d bytes", float64(m.DurationNS)/1e6, m.Response.BodySize)
	if m.Response.SSE {
		t.printf(", %d events", m.Response.Events)
	}
	t.printf("\n")
	return t.err
}

// printable is b as text, or a note when it is binary.
func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("[%d bytes of binary data]", len(b))
}

// sseData returns the data of each event in b (several "data:" lines of
// one event are joined by a newline).
func sseData(b []byte) []string {
	var out []string
	var cur []string
	for _, line := range splitLines(b) {
		if len(line) == 0 {
			if cur != nil {
				out = append(out, strings.Join(cur, "\n"))
				cur = nil
			}
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			v, _ = bytes.CutPrefix(v, []byte(" "))
			cur = append(cur, string(v))
		}
	}
	if cur != nil {
		out = append(out, strings.Join(cur, "\n"))
	}
	return out
}

// splitLines splits on CRLF, LF or CR.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i])
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		b = b[i+1:]
		if len(b) == 0 {
			out = append(out, nil)
		}
	}
	return out
}

// conversation extracts (role, text) pairs from an OpenAI-style request:
// chat messages, a completion prompt or a responses-API input.
func conversation(body []byte) [][2]string {
	var req struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		Prompt json.RawMessage `json:"prompt"`
		Input  json.RawMessage `json:"input"`
	}
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	var out [][2]string
	for _, m := range req.Messages {
		out = append(out, [2]string{m.Role, contentText(m.Content)})
	}
	if len(out) == 0 && len(req.Prompt) > 0 {
		out = append(out, [2]string{"prompt", contentText(req.Prompt)})
	}
	if len(out) == 0 && len(req.Input) > 0 {
		out = append(out, [2]string{"input", contentText(req.Input)})
	}
	return out
}

// contentText flattens a message content: a string, or parts with text.
func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) == nil {
		var texts []string
		for _, p := range parts {
			if p.Text != "" {
				texts = append(texts, p.Text)
			} else if p.Type != "" {
				texts = append(texts, "["+p.Type+"]")
			}
		}
		return strings.Join(texts, " ")
	}
	return string(raw)
}

// deltaText extracts the text of one streamed chunk: a chat delta, a
// completion's text, or a responses-API text delta.
func deltaText(data []byte) (string, bool) {
	var ev struct {
		Type    string `json:"type"`
		Delta   any    `json:"delta"`
		Choices []struct {
			Delta struct {
				Content *string `json:"content"`
			} `json:"delta"`
			Text *string `json:"text"`
		} `json:"choices"`
	}
	if json.Unmarshal(data, &ev) != nil {
		return "", false
	}
	if len(ev.Choices) > 0 {
		var b strings.Builder
		ok := false
		for _, c := range ev.Choices {
			if c.Delta.Content != nil {
				b.WriteString(*c.Delta.Content)
				ok = true
			} else if c.Text != nil {
				b.WriteString(*c.Text)
				ok = true
			}
		}
		return b.String(), ok || len(ev.Choices) > 0
	}
	if s, isStr := ev.Delta.(string); isStr && strings.HasSuffix(ev.Type, ".delta") {
		return s, true
	}
	if ev.Type != "" {
		// Lifecycle events of the responses API carry no text.
		return "", true
	}
	return "", false
}

// answerText extracts the assistant's text from a non-streamed answer.
func answerText(body []byte) (string, bool) {
	var resp struct {
		Choices []struct {
			Message *struct {
				Content string `json:"content"`
			} `json:"message"`
			Text *string `json:"text"`
		} `json:"choices"`
	}
	if json.Unmarshal(body, &resp) != nil || len(resp.Choices) == 0 {
		return "", false
	}
	var texts []string
	for _, c := range resp.Choices {
		switch {
		case c.Message != nil:
			texts = append(texts, c.Message.Content)
		case c.Text != nil:
			texts = append(texts, *c.Text)
		}
	}
	return strings.Join(texts, "\n"), len(texts) > 0
}
