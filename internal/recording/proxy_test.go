package recording_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/recording"
)

// upstream is a model server: /stream answers n SSE events, gap apart;
// /json answers one JSON document.
func upstream(t testing.TB) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, gap := 5, time.Duration(0)
		fmt.Sscan(q.Get("n"), &n)
		if g := q.Get("gap"); g != "" {
			gap, _ = time.ParseDuration(g)
		}
		if q.Get("stream") != "1" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Set-Cookie", "session=upstream-secret")
			fmt.Fprint(w, `{"choices":[{"message":{"role":"assistant","content":"Hello there"}}]}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fl := http.NewResponseController(w)
		for i := range n {
			if i > 0 && gap > 0 {
				time.Sleep(gap)
			}
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"tok%d \"}}]}\n\n", i)
			fl.Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// proxyOpts are what a gateway rule would decide.
type proxyOpts struct {
	level  recording.Level
	raw    bool
	redact func([]byte) ([]byte, error)
}

// gatewayProxy is a minimal gateway: Reserve before forwarding (503 when
// refused), the request recorded as forwarded, the response teed after
// each write, Finish in the background after the response.
type gatewayProxy struct {
	*httptest.Server
	results   chan recording.Result
	forwarded chan struct{} // one value per request that reached the upstream
}

func newGatewayProxy(t testing.TB, rec *recording.Recorder, up *httptest.Server, o proxyOpts) *gatewayProxy {
	target, _ := url.Parse(up.URL)
	g := &gatewayProxy{results: make(chan recording.Result, 1024), forwarded: make(chan struct{}, 1024)}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, _ := io.ReadAll(r.Body)
		level := o.level
		if level == "" {
			level = recording.LevelFull
		}
		c, err := rec.Reserve(recording.Info{
			RequestID: r.Header.Get("X-Request-Id"), Principal: r.Header.Get("X-Test-Principal"),
			Route: "openai", Start: start, Level: level, RawRequest: o.raw, Redact: o.redact,
		})
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, `{"error":{"type":"recording_unavailable","message":%q}}`, err.Error())
			return
		}
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header.Set("X-Warden-Identity", "signed.assertion.jwt")
				pr.Out.Header.Set("X-Tenant-Assertion", "tenant.assertion.secret")
				pr.Out.Body = io.NopCloser(bytes.NewReader(body))
				pr.Out.ContentLength = int64(len(body))
				c.Request(recording.ForwardedRequest{
					Method: pr.Out.Method, Scheme: "http", Host: r.Host, Path: r.URL.Path,
					RawQuery: pr.Out.URL.RawQuery, Header: pr.Out.Header, Body: body,
				})
				g.forwarded <- struct{}{}
			},
			FlushInterval: -1,
		}
		rp.ServeHTTP(&teeWriter{ResponseWriter: w, c: c}, r)
		go func() { g.results <- c.Finish(context.Background()) }()
	}))
	t.Cleanup(g.Close)
	return g
}

// seen is what a client received.
type seen struct {
	status int
	header http.Header
	body   []byte
	events int
}

// call sends a request through the proxy and reads the answer as an SSE
// client would, counting events.
func call(t testing.TB, g *gatewayProxy, path, reqID, principal, body string, hdr map[string]string) seen {
	t.Helper()
	req, _ := http.NewRequest("POST", g.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", reqID)
	req.Header.Set("X-Test-Principal", principal)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request %s: %v", reqID, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	events := 0
	br := bufio.NewReader(io.TeeReader(resp.Body, &buf))
	prevBlank := true
	for {
		line, err := br.ReadString('\n')
		if line == "\n" && !prevBlank {
			events++
		}
		prevBlank = line == "\n"
		if err != nil {
			break
		}
	}
	return seen{status: resp.StatusCode, header: resp.Header, body: buf.Bytes(), events: events}
}

func result(t testing.TB, g *gatewayProxy) recording.Result {
	t.Helper()
	select {
	case r := <-g.results:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("no recording result within 60s")
	}
	return recording.Result{}
}

// teeWriter is how a gateway feeds a capture: status and headers when
// they are sent, every byte after it was written to the client. Unwrap
// keeps http.ResponseController (Flush) working.
type teeWriter struct {
	http.ResponseWriter
	c     *recording.Capture
	wrote bool
}

func (t *teeWriter) WriteHeader(code int) {
	t.ResponseWriter.WriteHeader(code)
	if !t.wrote && code >= 200 {
		t.wrote = true
		t.c.WriteHeader(code, t.ResponseWriter.Header())
	}
}

func (t *teeWriter) Write(p []byte) (int, error) {
	if !t.wrote {
		t.WriteHeader(http.StatusOK)
	}
	n, err := t.ResponseWriter.Write(p)
	t.c.Write(p[:n])
	return n, err
}

func (t *teeWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
