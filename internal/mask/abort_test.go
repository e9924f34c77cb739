package mask

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// failingBody returns data, then fails with err.
type failingBody struct {
	data string
	err  error
}

func (f *failingBody) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func (f *failingBody) Close() error { return nil }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestAbnormalEndDropsHeldText: whatever ends the upstream body early (a
// reset, a timeout, a canceled request), the held-back text never reaches
// the caller; an event stream ends with an error event naming the cause,
// a text body with a read error, and the recorder says why.
func TestAbnormalEndDropsHeldText(t *testing.T) {
	m := defaultMasker(t)
	sse := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"your card is 4111 1111 1111\"}}]}\n\n"
	for _, tt := range []struct {
		name, ct, body string
		err            error
		reason         string
	}{
		{"sse reset", "text/event-stream", sse, io.ErrUnexpectedEOF, "closed mid-response"},
		{"sse timeout", "text/event-stream", sse, timeoutErr{}, "timed out"},
		{"sse canceled", "text/event-stream", sse, context.Canceled, "canceled"},
		{"sse reset mid-line", "text/event-stream", sse + `data: {"choices":[{"index":0,"delta":{"content":" 1111 and more`, errors.New("connection reset by peer"), "broke"},
		{"text reset", "text/plain", "Dear Jane, your card 4111 1111 1111", io.ErrUnexpectedEOF, "closed mid-response"},
		{"html timeout", "text/html", "<p>mail jane.doe@exam", timeoutErr{}, "timed out"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := NewRecorder()
			rec.SetRequestID("req-1")
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {tt.ct}}, Body: &failingBody{tt.body, tt.err}}
			if err := m.WrapResponse(resp, rec, StreamOpenAI); err != nil {
				t.Fatal(err)
			}
			out, err := io.ReadAll(resp.Body)
			if strings.Contains(string(out), "4111") || strings.Contains(string(out), "jane") {
				t.Fatalf("held text flushed: %q", out)
			}
			if !strings.Contains(rec.Truncated(), tt.reason) {
				t.Fatalf("Truncated() = %q, want %q", rec.Truncated(), tt.reason)
			}
			if tt.ct == "text/event-stream" {
				evs := parseSSE(t, out)
				last := evs[len(evs)-1]
				if err != nil || last.name != "error" || !strings.Contains(last.data, `"type":"upstream_error"`) ||
					!strings.Contains(last.data, tt.reason) || !strings.Contains(last.data, `"request_id":"req-1"`) {
					t.Fatalf("stream %q, %v", out, err)
				}
				if !strings.Contains(string(out), "your card is ") {
					t.Fatalf("safe text before the value was not sent: %q", out)
				}
			} else if err == nil {
				t.Fatalf("a cut %s body ended cleanly: %q", tt.ct, out)
			}
		})
	}
}

// TestCompleteStreamThenReset: a stream whose [DONE] arrived is complete
// even if the connection then breaks: no error event, nothing truncated.
func TestCompleteStreamThenReset(t *testing.T) {
	m := defaultMasker(t)
	rec := NewRecorder()
	body := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"card 4111 1111 1111 1111\"}}]}\n\ndata: [DONE]\n\n"
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: &failingBody{body, io.ErrUnexpectedEOF}}
	if err := m.WrapResponse(resp, rec, StreamOpenAI); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(resp.Body)
	if err != nil || strings.Contains(string(out), "event: error") || rec.Truncated() != "" || !strings.HasSuffix(string(out), "data: [DONE]\n\n") {
		t.Fatalf("%q %v %q", out, err, rec.Truncated())
	}
}

// TestStreamWithoutDoneIsTruncated: an OpenAI stream that ends cleanly at
// the HTTP level but without [DONE] while text is held back was cut short
// (a close-delimited body); one whose held text was flushed at its
// finish_reason is not.
func TestStreamWithoutDoneIsTruncated(t *testing.T) {
	m := defaultMasker(t)
	cut := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"mail jane.doe@exam\"}}]}\n\n"
	rec := NewRecorder()
	out := maskSSE(t, m, StreamOpenAI, strings.NewReader(cut), rec)
	if strings.Contains(string(out), "jane") || rec.Truncated() == "" || !strings.Contains(string(out), "event: error") {
		t.Fatalf("%q %q", out, rec.Truncated())
	}
	finished := cut + "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
	rec = NewRecorder()
	out = maskSSE(t, m, StreamOpenAI, strings.NewReader(finished), rec)
	if rec.Truncated() != "" || strings.Contains(string(out), "event: error") {
		t.Fatalf("%q %q", out, rec.Truncated())
	}
}
