package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
)

func decodeError(t *testing.T, resp *http.Response) errorDetail {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type = %q", ct)
	}
	var b errorBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatalf("error body: %v", err)
	}
	return b.Error
}

// TestSSEFirstEventBeforeUpstreamFinishes proves streaming: the upstream
// sends one event and then blocks until the test has read that event
// through the gateway.
func TestSSEFirstEventBeforeUpstreamFinishes(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"n\":1}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(20 * time.Second):
			return
		}
		fmt.Fprint(w, "data: {\"n\":2}\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	_, gw := newTestGateway(t, up.URL, nil)

	resp, err := http.Post(gw+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: {\"n\":1}\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(release) // only now may the upstream finish
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "[DONE]") {
		t.Fatalf("stream did not complete: %q", rest)
	}
	if st := resp.Header.Get("Server-Timing"); !regexp.MustCompile(`^warden;dur=\d+\.\d{3}$`).MatchString(st) {
		t.Errorf("Server-Timing = %q", st)
	}
}

// TestLargeStreamFlatMemory streams 50 MB through the gateway and checks
// the heap does not grow with the body (the proxy must not buffer).
func TestLargeStreamFlatMemory(t *testing.T) {
	const total = 50 << 20
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	_, gw := newTestGateway(t, up.URL, nil)

	runtime.GC()
	var before, peak runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.Get(gw + "/admin/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n int64
	buf := make([]byte, 64<<10)
	for i := 0; ; i++ {
		m, err := resp.Body.Read(buf)
		n += int64(m)
		if i%100 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.HeapInuse {
				peak = ms
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != total {
		t.Fatalf("got %d bytes, want %d", n, total)
	}
	growth := int64(peak.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap in use grew by %d KiB while streaming %d MiB", growth>>10, total>>20)
	if growth > 16<<20 {
		t.Errorf("heap grew by %d MiB streaming 50 MiB: the gateway buffers", growth>>20)
	}
}

func TestUpstreamDownIs502(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, gw := newTestGateway(t, "http://"+addr, nil)
	resp, err := http.Get(gw + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if e := decodeError(t, resp); e.Type != errUpstream || e.RequestID == "" {
		t.Errorf("error = %+v", e)
	}
}

func TestSlowUpstreamIs504(t *testing.T) {
	unblock := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-unblock:
		case <-r.Context().Done():
		}
	}))
	defer up.Close()
	defer close(unblock)
	_, gw := newTestGateway(t, up.URL, func(c *config.Config) { c.Timeouts.UpstreamHeader = 200 * time.Millisecond })
	resp, err := http.Get(gw + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if e := decodeError(t, resp); e.Type != errTimeout {
		t.Errorf("error = %+v", e)
	}
}

func TestHopByHopHeadersNotForwarded(t *testing.T) {
	var got http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Set("Connection", "X-Upstream-Secret")
		w.Header().Set("X-Upstream-Secret", "leak")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Normal", "yes")
	}))
	defer up.Close()
	_, gw := newTestGateway(t, up.URL, nil)
	req, _ := http.NewRequest("GET", gw+"/v1/models", nil)
	req.Header.Set("Connection", "X-Hop, Keep-Alive")
	req.Header.Set("X-Hop", "must-not-pass")
	req.Header.Set("Keep-Alive", "timeout=1")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("Te", "gzip")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-End-To-End", "kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, h := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Te", "Upgrade"} {
		if v := got.Get(h); v != "" {
			t.Errorf("upstream received hop-by-hop %s: %q", h, v)
		}
	}
	if strings.Contains(got.Get("X-Forwarded-For"), "6.6.6.6") || got.Get("X-Forwarded-Host") == "evil.example" {
		t.Errorf("client X-Forwarded-* reached upstream: %v / %v", got.Get("X-Forwarded-For"), got.Get("X-Forwarded-Host"))
	}
	if got.Get("X-End-To-End") != "kept" {
		t.Error("end-to-end header dropped")
	}
	if resp.Header.Get("X-Upstream-Secret") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("upstream hop-by-hop headers reached the client: %v", resp.Header)
	}
	if resp.Header.Get("X-Normal") != "yes" {
		t.Error("end-to-end response header dropped")
	}
}

func TestErrorsAndRequestID(t *testing.T) {
	up := echoUpstream(t)
	_, gw := newTestGateway(t, up.URL, func(c *config.Config) { c.Limits.MaxRequestBody = 1024 })
	tests := []struct {
		name       string
		method     string
		path       string
		body       io.Reader
		reqID      string
		wantStatus int
		wantType   string
	}{
		{"no route", "GET", "/nothing/here", nil, "", 404, errNotFound},
		{"too large (content-length)", "POST", "/v1/chat/completions", strings.NewReader(strings.Repeat("x", 2048)), "", 413, errTooLarge},
		{"too large (chunked)", "POST", "/v1/chat/completions", io.MultiReader(strings.NewReader(strings.Repeat("x", 2048))), "", 413, errTooLarge},
		{"ok with client id", "POST", "/v1/chat/completions", strings.NewReader("{}"), "client-req-12345", 200, ""},
		{"bad client id replaced", "GET", "/v1/models", nil, "bad id with spaces", 200, ""},
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, gw+tt.path, tt.body)
			if tt.reqID != "" {
				req.Header.Set("X-Request-Id", tt.reqID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			id := resp.Header.Get("X-Request-Id")
			switch {
			case tt.reqID != "" && wellFormedRequestID(tt.reqID):
				if id != tt.reqID {
					t.Errorf("request id %q, want client's %q", id, tt.reqID)
				}
			case !hexID.MatchString(id):
				t.Errorf("generated request id %q", id)
			}
			if resp.Header.Get("Server-Timing") == "" {
				t.Error("no Server-Timing")
			}
			if tt.wantType != "" {
				if e := decodeError(t, resp); e.Type != tt.wantType || e.RequestID != id {
					t.Errorf("error %+v", e)
				}
			}
		})
	}
}

// TestConcurrentStreamsComplete runs 64 concurrent SSE streams, several
// rounds, and requires every one to arrive complete. Without full duplex on
// the inbound request, a plain ReverseProxy truncated some of these.
func TestConcurrentStreamsComplete(t *testing.T) {
	const events = 40
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < events; i++ {
			fmt.Fprintf(w, "data: {\"i\":%d}\n\n", i)
			w.(http.Flusher).Flush()
			if i%8 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	_, gw := newTestGateway(t, up.URL, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 200) + `"}]}`
	var truncated, failed atomic.Int64
	rounds := 5
	if testing.Short() {
		rounds = 2
	}
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "POST", gw+"/v1/chat/completions", strings.NewReader(body))
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil || !bytes.HasSuffix(b, []byte("data: [DONE]\n\n")) || bytes.Count(b, []byte("data: ")) != events+1 {
					truncated.Add(1)
				}
			}()
		}
		wg.Wait()
	}
	if truncated.Load() != 0 || failed.Load() != 0 {
		t.Fatalf("%d truncated, %d failed of %d streams", truncated.Load(), failed.Load(), 64*rounds)
	}
}

// BenchmarkProxyJSON1KB measures the proxy hot path for a 1 KB JSON
// completion, with allocations per request. The baseline sub-benchmark
// calls the upstream directly, so the ratio shows what the gateway adds.
func BenchmarkProxyJSON1KB(b *testing.B) {
	payload := bytes.Repeat([]byte("a"), 1000)
	resp1k := []byte(`{"id":"x","choices":[{"message":{"content":"` + string(payload) + `"}}]}`)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(resp1k)
	}))
	defer up.Close()
	_, gw := newTestGateway(b, up.URL, nil)
	reqBody := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	run := func(b *testing.B, url string) {
		b.ReportAllocs()
		b.SetBytes(int64(len(resp1k)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(url, "application/json", bytes.NewReader(reqBody))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	b.Run("direct", func(b *testing.B) { run(b, up.URL+"/v1/chat/completions") })
	b.Run("warden", func(b *testing.B) { run(b, gw+"/v1/chat/completions") })
}
