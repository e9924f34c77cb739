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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

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
