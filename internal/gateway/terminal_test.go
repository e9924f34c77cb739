package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/mask"
)

// TestTerminalOutcomes: each abnormal end gets its request.completed
// entry with the right outcome, and the entry's bytes and SHA-256 are
// those of what the client actually received, partial answers included:
// an upstream reset at random offsets (text and event streams), an
// upstream that does not answer in time, and a client that goes away.
func TestTerminalOutcomes(t *testing.T) {
	text := "Dear customer, your order number 12 is on its way. " + strings.Repeat("More words follow here. ", 40)
	sse := chatStream(strings.Repeat("a harmless sentence of model output ", 20))
	up := killingUpstream(t, map[string]string{"text": text, "sse": sse}, "text/plain")
	upSSE := killingUpstream(t, map[string]string{"sse": sse}, "text/event-stream")
	log := &memAudit{}
	_, gw := maskingGateway(t, up.URL, log, mask.Profile{})
	_, gwSSE := maskingGateway(t, upSSE.URL, log, mask.Profile{})
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))

	check := func(t *testing.T, id string, got []byte, outcome string) *audit.Entry {
		t.Helper()
		e := log.completed(id)
		if e == nil {
			t.Fatal("no request.completed entry")
		}
		sum := sha256.Sum256(got)
		if e.Outcome != outcome || e.BytesOut != int64(len(got)) || e.ResponseSHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("completion outcome %q, %d bytes, sha %s; want %q, %d bytes the client got, sha %x",
				e.Outcome, e.BytesOut, e.ResponseSHA256, outcome, len(got), sum)
		}
		if e.Status == 0 || e.Upstream <= 0 {
			t.Errorf("completion lacks status or upstream duration: %+v", e)
		}
		return e
	}
	// Cuts 1 and 3 come before the masker releases anything (CI caught
	// that case at random once): nothing has reached the caller, so it
	// gets a complete 502 JSON error with its request id, and the entry
	// records truncated with status 502. Four more cuts at random.
	cuts := []int{1, 3}
	for range 4 {
		cuts = append(cuts, 1+rnd.IntN(len(text)-2))
	}
	for i, cut := range cuts {
		t.Run("text reset at "+strconv.Itoa(cut), func(t *testing.T) {
			id := "terminal-text-" + strconv.Itoa(i) + "-" + strconv.Itoa(cut)
			req, _ := http.NewRequest(http.MethodGet, gw+"/raw/?stream=text&cl=1&cut="+strconv.Itoa(cut), nil)
			req.Header.Set("X-Request-Id", id)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				// Before the masker released anything the caller used to
				// get a dropped connection with no status at all.
				t.Fatalf("no HTTP answer: %v", err)
			}
			got, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rid := resp.Header.Get("X-Request-Id"); rid != id {
				t.Fatalf("X-Request-Id %q, want the client's %q", rid, id)
			}
			switch {
			case resp.StatusCode == http.StatusBadGateway:
				// Nothing had been released: a JSON error, complete.
				var eb errorBody
				if rerr != nil || json.Unmarshal(got, &eb) != nil || eb.Error.Type != errUpstream || eb.Error.RequestID != id {
					t.Fatalf("502 body %q (read error %v), want a JSON %s error for %s", got, rerr, errUpstream, id)
				}
			case cut <= 3:
				t.Fatalf("status %d for a reset before the masker released a byte, want 502", resp.StatusCode)
			case rerr == nil:
				t.Fatalf("a reset body ended cleanly (%d bytes)", len(got))
			}
			e := check(t, id, got, audit.OutcomeTruncated)
			if e.Status != resp.StatusCode {
				t.Errorf("entry status %d, the client got %d", e.Status, resp.StatusCode)
			}
		})
	}
	for range 4 {
		cut := 1 + rnd.IntN(len(sse)-2)
		t.Run("stream reset at "+strconv.Itoa(cut), func(t *testing.T) {
			resp, err := http.Post(gwSSE+"/v1/chat/completions?stream=sse&cut="+strconv.Itoa(cut), "application/json", strings.NewReader(`{"model":"m","stream":true}`))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(got), "upstream_error") {
				t.Fatalf("no error event at the end of a reset stream: %q", got)
			}
			check(t, resp.Header.Get("X-Request-Id"), got, audit.OutcomeTruncated)
		})
	}
	t.Run("upstream timeout", func(t *testing.T) {
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}))
		t.Cleanup(slow.Close)
		_, gwSlow := maskingGatewayVia(t, slow.URL, log, mask.Profile{}, &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond})
		resp, err := http.Get(gwSlow + "/raw/slow")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 504: %s", resp.StatusCode, got)
		}
		e := log.completed(resp.Header.Get("X-Request-Id"))
		sum := sha256.Sum256(got)
		if e == nil || e.Outcome != audit.OutcomeUpstreamTimeout || e.Status != http.StatusGatewayTimeout || e.ResponseSHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("completion %+v, want upstream_timeout, 504 and the hash of the error body", e)
		}
	})
	t.Run("client abort", func(t *testing.T) {
		hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "first part of the answer\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}))
		t.Cleanup(hold.Close)
		_, gwHold := maskingGateway(t, hold.URL, log, mask.Profile{})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", gwHold+"/raw/hold", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		e := log.completed(resp.Header.Get("X-Request-Id"))
		if e == nil || e.Outcome != audit.OutcomeClientAborted {
			t.Fatalf("completion %+v, want client_aborted", e)
		}
	})
}
