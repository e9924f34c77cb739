package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/mask"
)

// TestUnsentAnswers: a masked, non-streamed answer that ends before any
// of it reached the caller is answered with a complete JSON error in the
// gateway's shape, with the caller's request id, and the
// request.completed entry records the outcome, the status the caller got
// and the hash of the error body it received:
//   - a text answer whose upstream stalls (timeouts.upstream_body_idle)
//     while the masker still holds its only text back: 504
//     upstream_timeout, outcome upstream_timeout (answerUnsent);
//   - a JSON answer the masker refuses (not one JSON value; the body is
//     masked whole before the status line goes out): 502 masking_failed,
//     outcome masking_failed.
//
// The third branch, 502 upstream_unavailable for an upstream that
// breaks off, is TestTerminalOutcomes/text_reset_at_1 and _3.
// answerUnsent's own masking_failed branch cannot be reached today: the
// only held bodies are streamed text, which the masker never refuses
// mid-way (it refuses JSON whole, before the status line, through
// proxyError, and event streams, which are not held, in-band); the JSON
// case above is the masking_failed answer a caller can get before the
// first byte.
func TestUnsentAnswers(t *testing.T) {
	done := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/raw/stall":
			// Only the start of a card number: the masker holds all of
			// it back until it knows whether the number goes on.
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "4111 1111")
			w.(http.Flusher).Flush()
			select {
			case <-done:
			case <-r.Context().Done():
			}
		case "/raw/refused":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"card":"4111 1111 1111 1111"} {"second":"value"}`)
		}
	}))
	defer up.Close()
	defer close(done)
	log := &memAudit{}
	idle := func(c *config.Config) { c.Timeouts.UpstreamBodyIdle = 300 * time.Millisecond }
	_, gw := maskingGatewayWith(t, up.URL, log, mask.Profile{}, nil, idle)
	client := &http.Client{Timeout: hangGuard}
	for _, tc := range []struct {
		path    string
		status  int
		code    apierr.Code
		outcome string
	}{
		{"/raw/stall", http.StatusGatewayTimeout, apierr.UpstreamTimeout, audit.OutcomeUpstreamTimeout},
		{"/raw/refused", http.StatusBadGateway, apierr.MaskingFailed, audit.OutcomeMaskingFailed},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/raw/"), func(t *testing.T) {
			id := "unsent-" + strings.TrimPrefix(tc.path, "/raw/")
			req, _ := http.NewRequest(http.MethodGet, gw+tc.path, nil)
			req.Header.Set("X-Request-Id", id)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("no HTTP answer: %v", err)
			}
			got, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr != nil {
				t.Fatalf("the error body broke off: %v (%q)", rerr, got)
			}
			if strings.Contains(string(got), "4111") {
				t.Fatalf("held-back or refused text reached the caller: %q", got)
			}
			var eb errorBody
			if resp.StatusCode != tc.status || json.Unmarshal(got, &eb) != nil || eb.Error.Type != string(tc.code) || eb.Error.RequestID != id {
				t.Fatalf("status %d, body %q; want %d with a JSON %s error for %s", resp.StatusCode, got, tc.status, tc.code, id)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json (the upstream's headers must not leak onto the error)", ct)
			}
			if rid := resp.Header.Get("X-Request-Id"); rid != id {
				t.Errorf("X-Request-Id %q, want %q", rid, id)
			}
			e := log.completed(id)
			sum := sha256.Sum256(got)
			if e == nil {
				t.Fatal("no request.completed entry")
			}
			if e.Outcome != tc.outcome || e.Status != tc.status || e.BytesOut != int64(len(got)) || e.ResponseSHA256 != hex.EncodeToString(sum[:]) {
				t.Fatalf("completion outcome %q, status %d, %d bytes, sha %s; want %q, %d, the %d bytes the caller got, sha %x",
					e.Outcome, e.Status, e.BytesOut, e.ResponseSHA256, tc.outcome, tc.status, len(got), sum)
			}
		})
	}
}
