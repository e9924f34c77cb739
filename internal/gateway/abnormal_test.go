package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

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

// TestKillUpstreamAtEveryOffset cuts the upstream connection at every
// byte offset of PII-bearing streams (plain deltas, \u-escaped deltas,
// tool-call arguments): no prefix of more than 4 letters/digits of any PII
// value reaches the client, the client gets an error event, and the
// request.completed entry carries the outcome "truncated" and the masking
// actions of what was masked before the cut.
func TestKillUpstreamAtEveryOffset(t *testing.T) {
	streams := map[string]string{
		"plain":   chatStream("card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, mail jane.doe@example.com, call +44 20 7946 0958, SSN 123-45-6789."),
		"escaped": chatStream("card «4111 1111 1111 1111», mail «jane.doe@example.com»."),
		"tool":    toolStream(`{"card":"5500 0055 5555 5559","ssn":"123-45-6789"}`),
	}
	// Every offset in process (the transport's body fails after the cut);
	// every 7th offset, and the first and last, also through a real
	// upstream server that drops the connection.
	up := killingUpstream(t, streams, "text/event-stream")
	log := &memAudit{}
	_, gwReal := maskingGateway(t, up.URL, log, mask.Profile{})
	_, gwCut := maskingGatewayVia(t, "http://upstream.invalid", log, mask.Profile{}, cutTransport{streams})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}

	type job struct {
		gw, stream string
		cut        int
	}
	jobs := make(chan job)
	var failed atomic.Bool
	var requests atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if failed.Load() {
					continue
				}
				requests.Add(1)
				if !checkKill(t, client, log, j.gw, j.stream, j.cut) {
					failed.Store(true)
				}
			}
		}()
	}
	for name, s := range streams {
		for cut := 0; cut < len(s); cut++ {
			jobs <- job{gwCut, name, cut}
			if cut%7 == 0 || cut == len(s)-1 {
				jobs <- job{gwReal, name, cut}
			}
		}
	}
	close(jobs)
	wg.Wait()
	t.Logf("%d cuts checked", requests.Load())
}

func checkKill(t *testing.T, client *http.Client, log *memAudit, gw, stream string, cut int) bool {
	t.Helper()
	url := fmt.Sprintf("%s/v1/chat/completions?stream=%s&cut=%d&cl=%d", gw, stream, cut, cut%2)
	resp, err := client.Post(url, "application/json", strings.NewReader(`{"model":"m","stream":true}`))
	if err != nil {
		t.Errorf("%s cut %d: %v", stream, cut, err)
		return false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Errorf("%s cut %d: the stream was not ended cleanly: %v", stream, cut, err)
		return false
	}
	if ids := resp.Header.Values("X-Request-Id"); len(ids) != 1 {
		t.Errorf("%s cut %d: X-Request-Id %q", stream, cut, ids)
		return false
	}
	// The raw bytes too (the random request ID in the error event aside).
	if v := leakedPrefix(strings.ReplaceAll(string(body), resp.Header.Get("X-Request-Id"), "")); v != "" {
		t.Errorf("%s cut %d: a prefix of %q reached the client: %q", stream, cut, v, body)
		return false
	}
	evs := readEvents(string(body))
	if v := leakedPrefix(clientText(t, evs)); v != "" {
		t.Errorf("%s cut %d: a prefix of %q reached the client: %q", stream, cut, v, body)
		return false
	}
	if len(evs) == 0 {
		t.Errorf("%s cut %d: no events", stream, cut)
		return false
	}
	checkErrorEvent(t, evs[len(evs)-1], "upstream_error")
	e := log.completed(resp.Header.Get("X-Request-Id"))
	if e == nil || e.Outcome != audit.OutcomeTruncated || e.Details["truncated"] == nil {
		t.Errorf("%s cut %d: completion %+v, want outcome truncated", stream, cut, e)
		return false
	}
	// What the client saw masked is in the evidence.
	masked := map[string]bool{}
	for _, a := range e.Masking {
		masked[a.Entity] = true
	}
	for _, ent := range []string{"CREDIT_CARD", "EMAIL_ADDRESS", "IBAN_CODE", "PHONE_NUMBER", "US_SSN"} {
		if strings.Contains(string(body), "[REDACTED:"+ent+"]") && !masked[ent] {
			t.Errorf("%s cut %d: %s masked but not in the completion's actions %+v", stream, cut, ent, e.Masking)
			return false
		}
	}
	return true
}

// TestAbnormalEndsRecorded covers the other abnormal ends: a text body cut
// by the upstream (the connection to the client is cut too, and the
// completion says truncated), a stream the masker refuses mid-way
// (masking_failed, error event), a stream that ends without [DONE] while
// text is held back, and a client that goes away (client_aborted).
func TestAbnormalEndsRecorded(t *testing.T) {
	oversized := `data: {"choices":[{"index":0,"delta":{"content":"card 4111 1111"}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{"content":"` + strings.Repeat("x", 5000) + `"}}]}` + "\n\n"
	noDone := `data: {"choices":[{"index":0,"delta":{"content":"mail jane.doe@exam"}}]}` + "\n\n"
	upText := killingUpstream(t, map[string]string{"text": "Dear Jane, your card 4111 1111 1111 1111 is on file. Regards"}, "text/plain")
	upSSE := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		switch r.URL.Query().Get("stream") {
		case "oversized":
			io.WriteString(w, oversized)
		case "nodone":
			io.WriteString(w, noDone)
		case "slow":
			io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"hello jane.doe@exa"}}]}`+"\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
		}
	}))
	t.Cleanup(upSSE.Close)
	log := &memAudit{}
	small := mask.Profile{MaxEventBytes: 1024}

	t.Run("text cut", func(t *testing.T) {
		_, gw := maskingGateway(t, upText.URL, log, small)
		resp, err := http.Get(gw + "/raw/?stream=text&cut=40")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Errorf("a cut text body ended cleanly: %q", body)
		}
		if v := leakedPrefix(string(body)); v != "" || strings.Contains(string(body), "4111") {
			t.Fatalf("leak: %q", body)
		}
		if e := log.completed(resp.Header.Get("X-Request-Id")); e == nil || e.Outcome != audit.OutcomeTruncated {
			t.Fatalf("completion %+v", e)
		}
	})
	for _, tt := range []struct{ stream, outcome, errType string }{
		{"oversized", audit.OutcomeMaskingFailed, "masking_failed"},
		{"nodone", audit.OutcomeTruncated, "upstream_error"},
	} {
		t.Run(tt.stream, func(t *testing.T) {
			_, gw := maskingGateway(t, upSSE.URL, log, small)
			resp, err := http.Get(gw + "/v1/chat/completions?stream=" + tt.stream)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "4111") || strings.Contains(string(body), "jane") {
				t.Fatalf("leak: %q", body)
			}
			evs := readEvents(string(body))
			checkErrorEvent(t, evs[len(evs)-1], tt.errType)
			if e := log.completed(resp.Header.Get("X-Request-Id")); e == nil || e.Outcome != tt.outcome {
				t.Fatalf("completion %+v, want %s", e, tt.outcome)
			}
		})
	}
	t.Run("client gone", func(t *testing.T) {
		_, gw := maskingGateway(t, upSSE.URL, log, small)
		req, _ := http.NewRequest("GET", gw+"/v1/chat/completions?stream=slow", nil)
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		id := resp.Header.Get("X-Request-Id")
		// The first safe text arrives, then the client hangs up.
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		if strings.Contains(line, "jane") {
			t.Fatalf("leak: %q", line)
		}
		cancel()
		resp.Body.Close()
		if e := log.completed(id); e == nil || e.Outcome != audit.OutcomeClientAborted {
			t.Fatalf("completion %+v", e)
		}
	})
}

// TestTruncatedOutcomeDurable: through the real SQLite-backed audit log,
// a stream cut after a masked value leaves a request.completed entry with
// the outcome "truncated", why, and the masking action.
func TestTruncatedOutcomeDurable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var ac audit.Config
	ac.SetDefaults()
	ac.Resolve(dir)
	signer, verifier, err := audit.LoadOrCreateKeys(ac.SigningKeyFile, ac.KeyName)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.Open(ctx, st, ac, signer, verifier)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(context.Background()) })

	stream := chatStream("card 4111 1111 1111 1111, then mail jane.doe@example.com please.")
	up := killingUpstream(t, map[string]string{"s": stream}, "text/event-stream")
	g, gw := maskingGateway(t, up.URL, log, mask.Profile{})
	cut := strings.Index(stream, "@") // inside the address, after the card
	resp, err := http.Get(fmt.Sprintf("%s/v1/chat/completions?stream=s&cut=%d", gw, cut))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if v := leakedPrefix(clientText(t, readEvents(string(body)))); v != "" || !strings.Contains(string(body), "[REDACTED:CREDIT_CARD]") {
		t.Fatalf("body %q", body)
	}
	if err := g.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	es, err := log.Search(ctx, audit.Query{RequestID: resp.Header.Get("X-Request-Id")})
	if err != nil {
		t.Fatal(err)
	}
	var done *audit.Entry
	for _, e := range es {
		if e.Kind == audit.KindRequestCompleted {
			done = e
		}
	}
	if done == nil || done.Outcome != audit.OutcomeTruncated || done.Details["truncated"] == nil || done.Status != http.StatusOK {
		t.Fatalf("completed entry %+v", done)
	}
	if len(done.Masking) != 1 || done.Masking[0].Entity != "CREDIT_CARD" || done.Masking[0].Count != 1 {
		t.Fatalf("masking actions %+v", done.Masking)
	}
	raw, _ := json.Marshal(done)
	if strings.Contains(string(raw), "4111") || strings.Contains(string(raw), "jane") {
		t.Fatalf("the entry holds a value: %s", raw)
	}
}
