package mask

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// proxy puts a ReverseProxy that masks with m in front of backend, the way
// the gateway wires it.
func proxy(t *testing.T, m *Masker, kind StreamKind, backend http.Handler) (*httptest.Server, *Recorder) {
	t.Helper()
	up := httptest.NewServer(backend)
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	rec := NewRecorder()
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			m.RequestHeaderHint(r.Out.Header)
		},
		ModifyResponse: func(resp *http.Response) error { return m.WrapResponse(resp, rec, kind) },
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			blocked := errors.Is(err, ErrBlocked)
			fmt.Fprintf(w, `{"error":{"type":"upstream","blocked":%t}}`, blocked)
		},
	}
	front := httptest.NewServer(rp)
	t.Cleanup(front.Close)
	return front, rec
}

func TestWrapResponseJSONGzip(t *testing.T) {
	m := defaultMasker(t)
	body := `{"choices":[{"message":{"content":"card 4111 1111 1111 1111"}}]}`
	var gotAE string
	front, rec := proxy(t, m, StreamOpenAI, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAE = r.Header.Get("Accept-Encoding")
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(body))
		zw.Close()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
		w.Write(buf.Bytes())
	}))
	req, _ := http.NewRequest("GET", front.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip") // so the client does not decode for us
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	want := `{"choices":[{"message":{"content":"card [REDACTED:CREDIT_CARD]"}}]}`
	if string(got) != want {
		t.Fatalf("body %q", got)
	}
	if resp.Header.Get("Content-Encoding") != "" || resp.ContentLength != int64(len(want)) {
		t.Fatalf("headers %v length %d", resp.Header, resp.ContentLength)
	}
	if gotAE != "identity" {
		t.Fatalf("upstream Accept-Encoding %q", gotAE)
	}
	if rec.Total() != 1 {
		t.Fatalf("actions %+v", rec.Actions())
	}
}

func TestWrapResponseContentTypes(t *testing.T) {
	pass := Config{Profiles: map[string]Profile{"img": {ContentTypes: map[string]ContentAction{"image/*": ActionPass, "application/xml": ActionMask}}}}
	set := newSet(t, pass)
	def, _ := set.Profile("default")
	img, _ := set.Profile("img")
	tests := []struct {
		name     string
		m        *Masker
		ct, enc  string
		body     string
		status   int
		wantBody string
	}{
		{"png blocked by default", def, "image/png", "", "\x89PNG 4111111111111111", 502, `{"error":{"type":"upstream","blocked":true}}`},
		{"png passed by profile", img, "image/png", "", "\x89PNG", 200, "\x89PNG"},
		{"xml masked as text", img, "application/xml", "", "<a>jane@example.com</a>", 200, "<a>[REDACTED:EMAIL_ADDRESS]</a>"},
		{"text streamed", def, "text/plain", "", "call (415) 555-2671", 200, "call [REDACTED:PHONE_NUMBER]"},
		{"brotli refused", def, "text/plain", "br", "xx", 502, `{"error":{"type":"upstream","blocked":true}}`},
		{"invalid json refused", def, "application/json", "", `{"a":"4111 1111 1111 1111"`, 502, `{"error":{"type":"upstream","blocked":true}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front, _ := proxy(t, tt.m, StreamGeneric, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ct)
				if tt.enc != "" {
					w.Header().Set("Content-Encoding", tt.enc)
				}
				io.WriteString(w, tt.body)
			}))
			resp, err := http.Get(front.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(got) != tt.wantBody {
				t.Fatalf("status %d body %q", resp.StatusCode, got)
			}
		})
	}
}

// TestSSEFirstByteBeforeUpstreamEnds: the safe text of the first event
// reaches the client while the upstream is still blocked mid-stream.
func TestSSEFirstByteBeforeUpstreamEnds(t *testing.T) {
	m := defaultMasker(t)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	front, rec := proxy(t, m, StreamOpenAI, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":"Hello there, your card is 4111 1111"}}]}`+"\n\n")
		fl.Flush()
		<-release // the upstream is stuck until the client saw the first text
		io.WriteString(w, `data: {"choices":[{"index":0,"delta":{"content":" 1111 1111."},"finish_reason":"stop"}]}`+"\n\ndata: [DONE]\n\n")
	}))
	t.Cleanup(unblock) // registered after the servers: runs before they close, even after a failure
	resp, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		var got []byte
		for !bytes.Contains(got, []byte("\n\n")) {
			n, err := resp.Body.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		first <- string(got)
	}()
	var got string
	select {
	case got = <-first:
	case <-time.After(20 * time.Second): // a deadlock guard, not a timing assertion
		t.Fatal("no output while the upstream was blocked")
	}
	if !strings.Contains(got, "Hello there, your card is ") || strings.Contains(got, "4111") {
		t.Fatalf("first event %q", got)
	}
	unblock()
	rest, _ := io.ReadAll(resp.Body)
	all := got + string(rest)
	if strings.Contains(all, "4111") || !strings.Contains(all, "[REDACTED:CREDIT_CARD]") || !strings.HasSuffix(all, "data: [DONE]\n\n") {
		t.Fatalf("stream %q", all)
	}
	if rec.Total() != 1 {
		t.Fatalf("actions %+v", rec.Actions())
	}
}

// TestPipeFirstSafeText does the same at the reader level with an io.Pipe
// upstream for the text masker.
func TestPipeFirstSafeText(t *testing.T) {
	m := defaultMasker(t)
	pr, pw := io.Pipe()
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/plain"}}, Body: pr}
	if err := m.WrapResponse(resp, nil, StreamGeneric); err != nil {
		t.Fatal(err)
	}
	go pw.Write([]byte("Dear customer, the number is 4111 1111 "))
	buf := make([]byte, 100)
	n, err := resp.Body.Read(buf) // returns although the pipe is still open
	if err != nil || string(buf[:n]) != "Dear customer, the number is " {
		t.Fatalf("first read %q %v", buf[:n], err)
	}
	go func() { pw.Write([]byte("1111 1111.")); pw.Close() }()
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "[REDACTED:CREDIT_CARD]." {
		t.Fatalf("rest %q", rest)
	}
}

// sparseSource generates n bytes of text with a card number every ~4 KiB.
type sparseSource struct {
	n, off int
	para   []byte
}

func newSparseSource(n int) *sparseSource {
	p := strings.Repeat("The quarterly report shows revenue grew by 12 percent in 2024, driven by strong demand. ", 45)
	p += "Customer card 4111 1111 1111 1111 was updated; contact jane@example.com.\n"
	return &sparseSource{n: n, para: []byte(p)}
}

func (s *sparseSource) Read(p []byte) (int, error) {
	if s.off >= s.n {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && s.off < s.n {
		k := copy(p[n:], s.para[s.off%len(s.para):])
		k = min(k, s.n-s.off)
		n += k
		s.off += k
	}
	return n, nil
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// sseSource wraps a text source into OpenAI chat chunks of ~24 bytes of
// content each.
type sseSource struct {
	text *sparseSource
	buf  []byte
	done bool
}

func (s *sseSource) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.done {
			return 0, io.EOF
		}
		var chunk [24]byte
		n, err := s.text.Read(chunk[:])
		if n > 0 {
			s.buf = fmt.Appendf(s.buf[:0], "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":null}]}\n\n", jstr(string(chunk[:n])))
		}
		if err != nil {
			s.done = true
			s.buf = append(s.buf, "data: [DONE]\n\n"...)
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// TestMemoryFlat streams 100 MB through the text masker and the SSE masker
// and checks the heap stays flat (a memory bound, not a timing one).
func TestMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB streams")
	}
	m := defaultMasker(t)
	const total = 100 << 20
	tests := []struct {
		name string
		ct   string
		src  func() io.Reader
	}{
		{"text", "text/plain", func() io.Reader { return newSparseSource(total) }},
		// About 100 MB of events (a fifth of it text).
		{"sse", "text/event-stream", func() io.Reader { return &sseSource{text: newSparseSource(total * 22 / 100)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "sse" && raceEnabled {
				t.Skip("too slow under the race detector")
			}
			runtime.GC()
			base := heapInUse()
			resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {tt.ct}}, Body: io.NopCloser(tt.src())}
			rec := NewRecorder()
			if err := m.WrapResponse(resp, rec, StreamOpenAI); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 32<<10)
			var peak uint64
			read, next := 0, 0
			for {
				n, err := resp.Body.Read(buf)
				read += n
				if bytes.Contains(buf[:n], []byte("4111 1111")) {
					t.Fatal("raw card in output")
				}
				if read >= next {
					peak = max(peak, heapInUse())
					next += 10 << 20
				}
				if err != nil {
					break
				}
			}
			growth := int64(peak) - int64(base)
			t.Logf("read %d MB, heap in use base %d MB peak %d MB", read>>20, base>>20, peak>>20)
			if growth > 32<<20 {
				t.Fatalf("heap grew by %d MB", growth>>20)
			}
			if rec.Total() == 0 || read < total*4/10 {
				t.Fatalf("actions %d read %d", rec.Total(), read)
			}
			// One action per distinct value and location, counted.
			for _, a := range rec.Actions() {
				if a.Count < 1000 {
					t.Fatalf("actions not merged: %+v", rec.Actions())
				}
			}
			b, _ := json.Marshal(rec.Actions())
			if bytes.Contains(b, []byte("4111")) {
				t.Fatal("evidence holds a value")
			}
		})
	}
}

func TestWrapResponseRefusesUpgrade(t *testing.T) {
	m := defaultMasker(t)
	rec := NewRecorder()
	resp := &http.Response{StatusCode: http.StatusSwitchingProtocols, Header: http.Header{"Upgrade": {"websocket"}}, Body: io.NopCloser(strings.NewReader(""))}
	if err := m.WrapResponse(resp, rec, StreamOpenAI); !errors.Is(err, ErrBlocked) || rec.Failure() == "" {
		t.Fatalf("upgrade: %v", err)
	}
}

func TestWrapResponseGzipSSE(t *testing.T) {
	m := defaultMasker(t)
	front, rec := proxy(t, m, StreamOpenAI, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		for _, d := range []string{"mail jane", "@example", ".com ok"} {
			fmt.Fprintf(zw, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", d)
			zw.Flush()
			w.(http.Flusher).Flush()
		}
		io.WriteString(zw, "data: [DONE]\n\n")
		zw.Close()
	}))
	req, _ := http.NewRequest("GET", front.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Encoding") != "" || resp.ContentLength != -1 {
		t.Fatalf("headers %v", resp.Header)
	}
	texts := collectChat(t, parseSSE(t, out), []string{"jane@example.com"})
	if texts[0] != "mail [REDACTED:EMAIL_ADDRESS] ok" || rec.Total() != 1 {
		t.Fatalf("text %q actions %+v", texts[0], rec.Actions())
	}
}
