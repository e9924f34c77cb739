package gateway

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/mask"
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
	dir := t.TempDir()
	rc := recording.Config{Default: recording.LevelFull}
	rc.SetDefaults()
	rc.Resolve(dir)
	cat, err := sqlite.OpenRecordingCatalog(context.Background(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	rec, err := recording.Open(context.Background(), rc, cat, recording.Options{StripHeaders: []string{"X-Warden-Identity"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
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
