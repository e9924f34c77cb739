package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// terminalEntry waits for the request's request.completed entry (written
// in the background).
func (s *stack) terminalEntry(t *testing.T, requestID string) *audit.Entry {
	t.Helper()
	for i := 0; i < 250; i++ {
		for _, e := range s.entries(t, requestID) {
			if e.Kind == audit.KindRequestCompleted {
				return e
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no request.completed for %s", requestID)
	return nil
}

// TestRecordingStrictRefusesBeforeForwarding: a request whose recording
// cannot be stored is refused with 503 in strict mode (the default), and
// nothing reaches the upstream; the refusal is in the audit log.
func TestRecordingStrictRefusesBeforeForwarding(t *testing.T) {
	s := newStackWith(t, func(cfg *config.Config, o *Options) {
		cfg.Recordings.Default = recording.LevelFull // no Recorder: the store "cannot accept"
	})
	resp, body := s.do(t, "POST", "/v1/chat/completions", s.token(t, "alice"), nil)
	if resp.StatusCode != 503 || !strings.Contains(string(body), `"type":"unavailable"`) {
		t.Fatalf("strict, no store: %d %s", resp.StatusCode, body)
	}
	if n := s.upHits.Load(); n != 0 {
		t.Fatalf("the upstream was reached %d times", n)
	}
	var refused bool
	for _, e := range s.entries(t, resp.Header.Get("X-Request-Id")) {
		if e.Kind == audit.KindRequestAdmitted {
			t.Error("a request refused for its recording was admitted")
		}
		refused = refused || (e.Kind == audit.KindRequestRefused && e.Details["reason"] == "recording_unavailable" && e.Status == 503)
	}
	if !refused {
		t.Error("the refusal is not in the audit log")
	}
}

// TestRecordingBestEffortServesAndSaysFailed: best_effort serves the
// request and the terminal entry says the recording failed.
func TestRecordingBestEffortServesAndSaysFailed(t *testing.T) {
	s := newStackWith(t, func(cfg *config.Config, o *Options) {
		cfg.Recordings.Default = recording.LevelMetadata
		cfg.Recordings.Mode = recording.BestEffort
	})
	resp, body := s.do(t, "POST", "/v1/chat/completions", s.token(t, "alice"), nil)
	if resp.StatusCode != 200 || s.upHits.Load() != 1 {
		t.Fatalf("best effort: %d %s (upstream %d)", resp.StatusCode, body, s.upHits.Load())
	}
	sum, _ := s.terminalEntry(t, resp.Header.Get("X-Request-Id")).Details[DetailRecording].(map[string]any)
	if sum["outcome"] != "failed" || sum["level"] != "metadata" || sum["error"] == "" {
		t.Fatalf("terminal entry: %+v", sum)
	}
}

// TestRecordingCapturesWhatWasSentAndReceived: with a real recorder, the
// recording holds the request as forwarded — no caller token, no identity
// assertion, the body redacted — and the response bytes exactly as the
// client received them; its digest is in the terminal entry.
func TestRecordingCapturesWhatWasSentAndReceived(t *testing.T) {
	rc, rec := openRecorder(t, t.TempDir(), recording.LevelFull, recording.Options{StripHeaders: []string{"X-Warden-Identity"}})
	masks, err := mask.New(mask.Config{}, []byte("test-masking-key-0123"))
	if err != nil {
		t.Fatal(err)
	}
	s := newStackWith(t, func(cfg *config.Config, o *Options) {
		cfg.Recordings = rc
		o.Recorder, o.Masks = rec, masks
	})
	tok := s.token(t, "alice")
	req, _ := http.NewRequest("POST", s.gw+"/v1/chat/completions",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"mail me at jane.doe@example.com"}]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, _ = got.ReadFrom(resp.Body)
	resp.Body.Close()
	reqID := resp.Header.Get("X-Request-Id")
	sum, _ := s.terminalEntry(t, reqID).Details[DetailRecording].(map[string]any)
	if sum["outcome"] != "stored" {
		t.Fatalf("terminal entry: %+v", sum)
	}
	r, e, err := rec.Load(context.Background(), sum["id"].(string), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if e.Digest.String() != sum["digest"] || e.RequestID != reqID || e.Principal != "alice" {
		t.Errorf("catalogue %+v, terminal %+v", e, sum)
	}
	if string(r.ResponseBody) != got.String() || r.Meta.Response.Status != 200 {
		t.Errorf("recorded response %d %q, the client got %q", r.Meta.Response.Status, r.ResponseBody, got.String())
	}
	if strings.Contains(string(r.RequestBody), "jane.doe") || r.Meta.Request.Body != recording.BodyRedacted {
		t.Errorf("request body recorded %s: %s", r.Meta.Request.Body, r.RequestBody)
	}
	for _, f := range r.Meta.Request.Header {
		if strings.Contains(f.Value, tok) || f.Name == "Authorization" || f.Name == "X-Warden-Identity" {
			t.Errorf("recorded request header %s", f.Name)
		}
	}
	if r.Meta.Request.Path != "/v1/chat/completions" || r.Meta.Request.Method != "POST" {
		t.Errorf("request line %s %s", r.Meta.Request.Method, r.Meta.Request.Path)
	}
}

// TestRecordingMemoryFlatOn100MBStream: the real gateway records a 100 MB
// streamed answer with a flat heap (the capture spills to disk), the
// client receives all of it, and the recording holds exactly those bytes.
func TestRecordingMemoryFlatOn100MBStream(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the 100 MB stream")
	}
	const total = 100 << 20
	event := "data: {\"choices\":[{\"delta\":{\"content\":\"" + strings.Repeat("lorem ipsum ", 80) + "\"}}]}\n\n"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := http.NewResponseController(w)
		buf := []byte(strings.Repeat(event, 32))
		for sent := 0; sent < total; sent += len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
			fl.Flush()
		}
	}))
	t.Cleanup(up.Close)
	rc, rec := openRecorder(t, t.TempDir(), recording.LevelFull, recording.Options{})
	cfg := &config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:1", AllowAnonymous: true, Recordings: rc,
		Routes: []config.Route{{Name: "openai", PathPrefix: "/v1/", Upstream: up.URL, Profile: config.ProfileOpenAI}},
	}
	cfg.SetDefaults()
	g, err := New(cfg, Options{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n < total {
		t.Fatalf("client read %d bytes: %v", n, err)
	}
	reqID := resp.Header.Get("X-Request-Id")
	var es []recording.Entry
	for i := 0; i < 1500 && len(es) == 0; i++ { // stored in the background
		if es, err = rec.Find(context.Background(), reqID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	<-sampled
	if len(es) != 1 {
		t.Fatalf("%d recordings of %s", len(es), reqID)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("100 MB stream through the gateway: heap in use grew by at most %.1f MiB; stored object %.1f MiB", float64(grew)/(1<<20), float64(es[0].Size)/(1<<20))
	if grew > 40<<20 {
		t.Errorf("heap grew by %d MiB while recording a %d MiB stream; it should stay flat", grew>>20, n>>20)
	}
	o, err := rec.Open(context.Background(), es[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.RequestBody(1 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Marks(); err != nil {
		t.Fatal(err)
	}
	body, err := o.ResponseBody()
	if err != nil {
		t.Fatal(err)
	}
	h2 := sha256.New()
	if _, err := io.Copy(h2, body); err != nil {
		t.Fatal(err)
	}
	if d, err := o.Reader.Close(); err != nil || d != es[0].Digest {
		t.Fatalf("digest %s, %v; catalogue %s", d, err, es[0].Digest)
	}
	if !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
		t.Error("the recorded body differs from what the client received")
	}
}

// TestRecordingReady: the /readyz check of the recording store fails only
// in strict mode, when the config default or a policy rule records, and
// the store cannot take recordings (here: no recorder at all; the
// end-to-end tests in cmd/warden break a real store).
func TestRecordingReady(t *testing.T) {
	dir := t.TempDir()
	engine := func(name, rules string) *policy.Engine {
		pf := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(pf, []byte("version: 1\nrules:\n"+rules), 0o600); err != nil {
			t.Fatal(err)
		}
		eng, err := policy.NewEngine(pf)
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	records := engine("records", "  - {name: chat, when: 'true', action: allow, record: metadata}\n")
	silent := engine("silent", "  - {name: chat, when: 'true', action: allow, record: 'off'}\n")

	_, healthy := openRecorder(t, dir, recording.LevelOff, recording.Options{})

	for _, tc := range []struct {
		name     string
		mode     recording.FailureMode
		def      recording.Level
		policy   PolicySource
		recorder Recorder
		wantErr  bool
	}{
		{"strict, default full, no recorder", recording.Strict, recording.LevelFull, silent, nil, true},
		{"strict, a rule records, no recorder", recording.Strict, recording.LevelOff, records, nil, true},
		{"strict, nothing records", recording.Strict, recording.LevelOff, silent, nil, false},
		{"strict, no policy, default off", recording.Strict, "", nil, nil, false},
		{"best_effort, default full, no recorder", recording.BestEffort, recording.LevelFull, records, nil, false},
		{"strict, default full, healthy store", recording.Strict, recording.LevelFull, records, healthy, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{
				Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:1", AllowAnonymous: true,
				Routes: []config.Route{{Name: "openai", PathPrefix: "/v1/", Upstream: "http://127.0.0.1:1", Profile: config.ProfileOpenAI}},
			}
			cfg.Recordings.Mode, cfg.Recordings.Default = tc.mode, tc.def
			cfg.SetDefaults()
			g, err := New(cfg, Options{Policy: tc.policy, Recorder: tc.recorder})
			if err != nil {
				t.Fatal(err)
			}
			err = g.RecordingReady(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("RecordingReady = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

// openRecorder opens a real recorder (filesystem store, SQLite catalogue)
// under dir with the given default level, closed when the test ends.
func openRecorder(t *testing.T, dir string, def recording.Level, o recording.Options) (recording.Config, *recording.Recorder) {
	t.Helper()
	rc := recording.Config{Default: def}
	rc.SetDefaults()
	rc.Resolve(dir)
	cat, err := sqlite.OpenRecordingCatalog(context.Background(), rc.CatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	rec, err := recording.Open(context.Background(), rc, cat, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return rc, rec
}

// flushClockWriter is a ResponseWriter whose Flush advances a clock by a
// second: what a recording notes before a flush is timed before it.
type flushClockWriter struct {
	h       http.Header
	body    bytes.Buffer
	status  int
	flushes int
	t       atomic.Int64 // seconds after the start
}

func (w *flushClockWriter) Header() http.Header         { return w.h }
func (w *flushClockWriter) WriteHeader(code int)        { w.status = code }
func (w *flushClockWriter) Write(b []byte) (int, error) { return w.body.Write(b) }
func (w *flushClockWriter) Flush()                      { w.flushes++; w.t.Add(1) }

// TestRecordingOfAStreamFollowsItsFlush: for an event stream the
// recording takes the status line and each write only after the bytes
// were flushed to the client, so recording adds nothing before the
// client's first byte (decision 032): with a clock that a flush moves on
// by a second, the recorded header and first event are timed after the
// first flush. The recording still holds exactly the bytes sent, and the
// client gets one flush a write, as without recording.
func TestRecordingOfAStreamFollowsItsFlush(t *testing.T) {
	start := time.Unix(1764565200, 0)
	w := &flushClockWriter{h: http.Header{}}
	_, rec := openRecorder(t, t.TempDir(), recording.LevelFull, recording.Options{
		Now: func() time.Time { return start.Add(time.Duration(w.t.Load()) * time.Second) },
	})
	for _, stream := range []bool{true, false} {
		c, err := rec.Reserve(recording.Info{RequestID: "req-flush", Start: start, Level: recording.LevelFull})
		if err != nil {
			t.Fatal(err)
		}
		w.t.Store(0)
		w.flushes = 0
		w.body.Reset()
		w.h = http.Header{"Content-Type": {"text/event-stream"}}
		if !stream {
			w.h = http.Header{"Content-Type": {"application/json"}}
		}
		sw := &statusWriter{ResponseWriter: w, rec: c, stream: stream}
		// What the reverse proxy does with a stream: the status line,
		// then each write followed by a flush.
		sw.WriteHeader(200)
		events := []string{"data: {\"role\":\"assistant\"}\n\n", "data: hello\n\n", "data: [DONE]\n\n"}
		for _, ev := range events {
			if _, err := sw.Write([]byte(ev)); err != nil {
				t.Fatal(err)
			}
			if err := sw.FlushError(); err != nil {
				t.Fatal(err)
			}
		}
		sw.recHeader()
		res := c.Finish(context.Background())
		if res.Outcome != recording.OutcomeStored {
			t.Fatal(res.Err)
		}
		r, _, err := rec.Load(context.Background(), res.ID, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.ResponseBody) != strings.Join(events, "") || w.body.String() != string(r.ResponseBody) {
			t.Errorf("stream %v: recorded %q, the client got %q", stream, r.ResponseBody, w.body.String())
		}
		marks := r.Marks
		if len(marks) != len(events) {
			t.Fatalf("stream %v: %d marks, want %d", stream, len(marks), len(events))
		}
		if stream {
			// Ours, before recording; the proxy's finds nothing left
			// and is not passed on: one a write, as without recording.
			if w.flushes != len(events) {
				t.Errorf("%d flushes, want %d", w.flushes, len(events))
			}
			// Only the flush right after a write is skipped: a later one
			// goes through.
			w.Write([]byte("x"))
			if err := sw.FlushError(); err != nil || w.flushes != len(events)+1 {
				t.Errorf("a later flush: %v, %d flushes", err, w.flushes)
			}
			if r.Meta.Response.HeaderAtNS < int64(time.Second) || marks[0].AtNS < int64(time.Second) {
				t.Errorf("the status line (at %v) or the first event (at %v) was recorded before the first flush",
					time.Duration(r.Meta.Response.HeaderAtNS), time.Duration(marks[0].AtNS))
			}
		} else if w.flushes != len(events) || r.Meta.Response.HeaderAtNS != 0 {
			// Not a stream: nothing changes (the header is recorded when
			// written; no flush of ours).
			t.Errorf("not a stream: %d flushes, header at %v", w.flushes, time.Duration(r.Meta.Response.HeaderAtNS))
		}
		if r.Meta.Response.Status != 200 || r.Meta.Response.SSE != stream {
			t.Errorf("stream %v: recorded status %d, sse %v", stream, r.Meta.Response.Status, r.Meta.Response.SSE)
		}
	}
}
