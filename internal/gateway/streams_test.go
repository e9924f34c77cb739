package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/policy"
)

// Helpers of the abnormal-end tests: an in-memory audit log, a masking
// gateway, upstreams that break off, and the streams they serve.

// memAudit is an AuditLog that keeps entries in memory, so thousands of
// requests can be checked quickly; TestTruncatedOutcomeDurable checks the
// same outcome through the real SQLite-backed log.
type memAudit struct {
	mu      sync.Mutex
	seq     int64
	byReq   map[string][]*audit.Entry
	waiters map[string]chan struct{}
}

func (a *memAudit) Append(_ context.Context, e *audit.Entry) (audit.Ref, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byReq == nil {
		a.byReq = map[string][]*audit.Entry{}
	}
	a.seq++
	c := *e
	a.byReq[e.RequestID] = append(a.byReq[e.RequestID], &c)
	if e.Kind == audit.KindRequestCompleted {
		if ch, ok := a.waiters[e.RequestID]; ok {
			close(ch)
			delete(a.waiters, e.RequestID)
		}
	}
	return audit.Ref{Seq: a.seq}, nil
}

// completed waits for the request.completed entry of a request (written
// in the background once the response is sent) and returns it, or nil.
func (a *memAudit) completed(id string) *audit.Entry {
	find := func() *audit.Entry {
		for _, e := range a.byReq[id] {
			if e.Kind == audit.KindRequestCompleted {
				return e
			}
		}
		return nil
	}
	a.mu.Lock()
	if e := find(); e != nil {
		a.mu.Unlock()
		return e
	}
	if a.waiters == nil {
		a.waiters = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	a.waiters[id] = ch
	a.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return find()
}

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) Current() *policy.Policy { return s.p }

// maskingGateway is a gateway that masks every response with the default
// profile, in front of upstream, recording into log.
func maskingGateway(t testing.TB, upstream string, log AuditLog, profile mask.Profile) (*Gateway, string) {
	return maskingGatewayVia(t, upstream, log, profile, nil)
}

// maskingGatewayVia is maskingGateway with an upstream transport.
func maskingGatewayVia(t testing.TB, upstream string, log AuditLog, profile mask.Profile, tr http.RoundTripper) (*Gateway, string) {
	t.Helper()
	return maskingGatewayWith(t, upstream, log, profile, tr, nil)
}

// maskingGatewayWith is maskingGatewayVia with a change to the config.
func maskingGatewayWith(t testing.TB, upstream string, log AuditLog, profile mask.Profile, tr http.RoundTripper, mod func(*config.Config)) (*Gateway, string) {
	t.Helper()
	pol, err := policy.Load("test.yaml", []byte("version: 1\nrules:\n  - name: all\n    when: 'true'\n    action: allow\n    mask: default\n"))
	if err != nil {
		t.Fatal(err)
	}
	masks, err := mask.New(mask.Config{Profiles: map[string]mask.Profile{"default": profile}}, []byte("test-masking-key-0123"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:1", AllowAnonymous: true,
		Routes: []config.Route{
			{Name: "openai", PathPrefix: "/v1/", Upstream: upstream, Profile: config.ProfileOpenAI},
			{Name: "generic", PathPrefix: "/raw/", Upstream: upstream},
		},
	}
	cfg.SetDefaults()
	if mod != nil {
		mod(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Policy: staticPolicy{pol}, Masks: masks, Audit: log, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL
}

// killingUpstream serves the registered streams and breaks the connection
// after ?cut= bytes of the body: with a Content-Length promising more
// (?cl=1), or in the middle of a chunked body. It writes the response
// itself on the hijacked connection and closes it, as a crashed model
// server would.
func killingUpstream(t testing.TB, streams map[string]string, contentType string) *httptest.Server {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := streams[r.URL.Query().Get("stream")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		cut, _ := strconv.Atoi(r.URL.Query().Get("cut"))
		_, _ = io.Copy(io.Discard, r.Body)
		conn, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n", contentType)
		if r.URL.Query().Get("cl") == "1" {
			fmt.Fprintf(bw, "Content-Length: %d\r\n\r\n%s", len(body), body[:cut])
		} else {
			fmt.Fprintf(bw, "Transfer-Encoding: chunked\r\n\r\n")
			if cut > 0 {
				fmt.Fprintf(bw, "%x\r\n%s\r\n", cut, body[:cut])
			}
		}
		bw.Flush()
	}))
	t.Cleanup(up.Close)
	return up
}

// cutTransport answers every request with the stream named in ?stream=,
// whose body fails after ?cut= bytes the way a broken upstream connection
// does (io.ErrUnexpectedEOF from the transport), without a network round
// trip: the in-process half of the kill test.
type cutTransport struct{ streams map[string]string }

func (c cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	body := c.streams[r.URL.Query().Get("stream")]
	cut, _ := strconv.Atoi(r.URL.Query().Get("cut"))
	return &http.Response{
		StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/event-stream"}},
		Body:          &cutBody{data: body[:cut]},
		ContentLength: -1,
		Request:       r,
	}, nil
}

// cutBody returns its data in pieces of up to 64 bytes, then fails.
type cutBody struct{ data string }

func (b *cutBody) Read(p []byte) (int, error) {
	if b.data == "" {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p[:min(len(p), 64)], b.data)
	b.data = b.data[n:]
	return n, nil
}

func (b *cutBody) Close() error { return nil }

// piiValues are the values the kill test streams carry.
var piiValues = []string{
	"4111 1111 1111 1111",
	"jane.doe@example.com",
	"DE89 3704 0044 0532 0130 00",
	"+44 20 7946 0958",
	"123-45-6789",
	"5500 0055 5555 5559",
}

// alnum keeps the letters and digits of s, lower-cased: the projection a
// leak is looked for in.
func alnum(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// leakedPrefix returns the first PII value that has a prefix of more than
// 4 letters/digits in text.
func leakedPrefix(text string) string {
	a := alnum(text)
	for _, v := range piiValues {
		if p := alnum(v)[:5]; strings.Contains(a, p) {
			return v
		}
	}
	return ""
}

// chatStream splits text into deltas of 2..9 bytes (rune-aligned). Text
// between « and » is written as \u escapes (and the marks dropped).
func chatStream(text string) string {
	var b strings.Builder
	sizes := []int{5, 2, 9, 3, 7, 4, 8}
	escape := false
	for i, k := 0, 0; i < len(text); k++ {
		j := min(len(text), i+sizes[k%len(sizes)])
		for j < len(text) && !utf8.RuneStart(text[j]) {
			j++
		}
		var content strings.Builder
		content.WriteByte('"')
		for _, r := range text[i:j] {
			switch {
			case r == '«':
				escape = true
			case r == '»':
				escape = false
			case escape:
				fmt.Fprintf(&content, `\u%04x`, r)
			default:
				q, _ := json.Marshal(string(r))
				content.Write(q[1 : len(q)-1])
			}
		}
		content.WriteByte('"')
		b.WriteString(`data: {"choices":[{"index":0,"delta":{"content":` + content.String() + `}}]}` + "\n\n")
		i = j
	}
	b.WriteString(`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")
	return b.String()
}

// toolStream streams tool-call arguments in pieces of 2..7 bytes.
func toolStream(args string) string {
	var b strings.Builder
	b.WriteString(`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"pay","arguments":""}}]}}]}` + "\n\n")
	sizes := []int{4, 7, 2, 6, 3, 5}
	for i, k := 0, 0; i < len(args); k++ {
		j := min(len(args), i+sizes[k%len(sizes)])
		q, _ := json.Marshal(args[i:j])
		b.WriteString(`data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + string(q) + `}}]}}]}` + "\n\n")
		i = j
	}
	b.WriteString(`data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}` + "\n\ndata: [DONE]\n\n")
	return b.String()
}

type sseEvent struct{ name, data string }

func readEvents(body string) []sseEvent {
	var evs []sseEvent
	for _, block := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n\n") {
		var ev sseEvent
		var data []string
		for _, line := range strings.Split(block, "\n") {
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "event":
				ev.name = v
			case "data":
				data = append(data, v)
			}
		}
		if data != nil {
			ev.data = strings.Join(data, "\n")
			evs = append(evs, ev)
		}
	}
	return evs
}

// clientText is what an SDK would show: delta contents and tool-call
// arguments, decoded.
func clientText(t *testing.T, evs []sseEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		if ev.name == "error" || ev.data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content   string `json:"content"`
					ToolCalls []struct {
						Function struct {
							Arguments string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatalf("event %q is not JSON: %v", ev.data, err)
		}
		for _, ch := range c.Choices {
			b.WriteString(ch.Delta.Content)
			for _, tc := range ch.Delta.ToolCalls {
				b.WriteString(tc.Function.Arguments)
			}
		}
	}
	return b.String()
}

// checkErrorEvent checks the shape the openai SDKs raise as an APIError:
// Python's Stream raises when an event named "error" carries a mapping
// "error" (message from error.message); Node's when sse.event == 'error'
// (APIError from data.error, message from error.message).
func checkErrorEvent(t *testing.T, ev sseEvent, wantType string) {
	t.Helper()
	if ev.name != "error" {
		t.Fatalf("last event %q %q, want an error event", ev.name, ev.data)
	}
	var d struct {
		Error *struct {
			Type      string `json:"type"`
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(ev.data), &d); err != nil || d.Error == nil || d.Error.Message == "" {
		t.Fatalf("error event data %q: %v", ev.data, err)
	}
	if d.Error.Type != wantType || d.Error.RequestID == "" {
		t.Fatalf("error event %+v, want type %s and a request_id", *d.Error, wantType)
	}
}
