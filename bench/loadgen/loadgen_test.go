package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/bench/floor"
	"github.com/wardenhq/warden/bench/upstream"
)

func TestIntended(t *testing.T) {
	start := time.Unix(1000, 0)
	tests := []struct {
		rate float64
		i    int64
		want time.Duration
	}{
		{1000, 0, 0},
		{1000, 1, time.Millisecond},
		{1000, 2500, 2500 * time.Millisecond},
		{3, 1, 333333333},
		{20000, 10000, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := Intended(start, tt.rate, tt.i).Sub(start); got != tt.want {
			t.Errorf("Intended(rate %v, %d) = +%v, want +%v", tt.rate, tt.i, got, tt.want)
		}
	}
}

// A target that takes 20 ms per request, driven at 200 req/s with one
// request in flight, falls further behind with every request. Latency
// measured from the intended send time must show that queueing: request
// k is due at 5k ms but cannot finish before 20(k+1) ms. A generator that
// measured from the actual send (coordinated omission) would report ~20 ms.
func TestOpenLoopCountsFromIntendedTime(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
	}))
	defer srv.Close()
	res := RunOpen(context.Background(), NewClient(1), Request{Method: "GET", URL: srv.URL}, 200, 100*time.Millisecond, 1)
	if res.OK != 20 || !res.Valid() {
		t.Fatalf("OK = %d (non2xx %d, errors %d: %s), want 20", res.OK, res.Non2xx, res.Errors, res.FirstError)
	}
	// Last request (k=19): due at 95 ms, done no earlier than 400 ms.
	if got, floor := res.Latency.QuantileDuration(1), 300*time.Millisecond; got < floor {
		t.Errorf("max latency %v < %v: queueing behind the single in-flight request is hidden", got, floor)
	}
	if got := res.SendLag.QuantileDuration(1); got < 250*time.Millisecond {
		t.Errorf("max send lag %v, want >= 250ms (the generator could not send on time)", got)
	}
}

func TestClosedLoopCountsStatuses(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 { // every other answer: at least 4 requests are sent (one per connection)
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	res := RunClosed(context.Background(), NewClient(4), Request{Method: "GET", URL: srv.URL}, 4, 200*time.Millisecond)
	if res.Non2xx == 0 || res.OK == 0 {
		t.Fatalf("OK %d non2xx %d, want both > 0", res.OK, res.Non2xx)
	}
	if res.Valid() {
		t.Error("a run with non-2xx answers must not be valid")
	}
	if got := int64(res.OK + res.Non2xx); got != n.Load() {
		t.Errorf("answered %d, server saw %d", got, n.Load())
	}
	if res.Latency.Count() != res.OK+res.Non2xx {
		t.Errorf("latency count %d != answered %d", res.Latency.Count(), res.OK+res.Non2xx)
	}
	if res.FirstError != "429 Too Many Requests" {
		t.Errorf("FirstError = %q", res.FirstError)
	}
}

func TestClosedLoopConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	res := RunClosed(context.Background(), NewClient(2), Request{Method: "GET", URL: u}, 2, 50*time.Millisecond)
	if res.Errors == 0 || res.Valid() {
		t.Fatalf("errors %d valid %v, want errors and invalid", res.Errors, res.Valid())
	}
}

func streamReq(u string) Request {
	return Request{
		Method: "POST", URL: u + "/v1/chat/completions",
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   []byte(`{"model":"` + upstream.ModelPII + `","stream":true,"messages":[{"role":"user","content":"hi"}]}`),
	}
}

func TestStreamOutcomes(t *testing.T) {
	up := upstream.New(upstream.Options{StreamDeltas: 12})
	whole := httptest.NewServer(up)
	defer whole.Close()

	// cut forwards the first 4 events of a real stream, then kills the
	// connection: the client sees a 200 and an early EOF.
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		for _, d := range upstream.StreamDeltas(upstream.ModelPII, 12)[:4] {
			_, _ = w.Write([]byte(`data: {"choices":[{"delta":{"content":"` + d + `"}}]}` + "\n\n"))
		}
		http.NewResponseController(w).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer cut.Close()

	// early sends [DONE] without the final delta.
	early := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\ndata: [DONE]\n\n"))
	}))
	defer early.Close()

	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer refuse.Close()

	tests := []struct {
		name string
		url  string
		want StreamOutcome
	}{
		{"whole", whole.URL, StreamCompleted},
		{"connection cut", cut.URL, StreamTruncated},
		{"done too early", early.URL, StreamTruncated},
		{"forbidden", refuse.URL, StreamNon2xx},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := RunStreams(context.Background(), NewClient(2), streamReq(tt.url), 2, 30*time.Millisecond, upstream.StreamEnd)
			counts := map[StreamOutcome]uint64{
				StreamCompleted: res.Completed, StreamTruncated: res.Truncated,
				StreamNon2xx: res.Non2xx, StreamError: res.Errors,
			}
			total := res.Completed + res.Truncated + res.Non2xx + res.Errors
			if total == 0 || counts[tt.want] != total {
				t.Fatalf("outcomes %+v (first error %q), want all %d", counts, res.FirstError, tt.want)
			}
			if res.Valid() != (tt.want == StreamCompleted) {
				t.Errorf("Valid() = %v", res.Valid())
			}
			if tt.want == StreamCompleted && res.Gap.Count() != res.Completed*11 {
				t.Errorf("gaps %d, want 11 per stream (%d streams)", res.Gap.Count(), res.Completed)
			}
		})
	}
}

func TestStreamContent(t *testing.T) {
	srv := httptest.NewServer(upstream.New(upstream.Options{StreamDeltas: 12}))
	defer srv.Close()
	res := NewStreamResult()
	out, text, err := StreamContent(context.Background(), NewClient(1), streamReq(srv.URL), upstream.StreamEnd, &res)
	if out != StreamCompleted || err != nil {
		t.Fatalf("outcome %d, %v", out, err)
	}
	if want := strings.Join(upstream.StreamDeltas(upstream.ModelPII, 12), ""); text != want {
		t.Errorf("content %q, want %q", text, want)
	}
	if res.TTFB.Count() != 1 || res.TTFT.Count() != 1 || res.Gap.Count() != 11 {
		t.Errorf("timings recorded: ttfb %d ttft %d gaps %d, want 1, 1, 11", res.TTFB.Count(), res.TTFT.Count(), res.Gap.Count())
	}
	if !strings.Contains(text, upstream.PIIEmail) {
		t.Errorf("joined PII stream lacks %s", upstream.PIIEmail)
	}
}

// The floor proxy has full duplex on, so streams through it must arrive
// whole under concurrency (the regression the harness exists to catch).
func TestStreamsThroughFloorArriveWhole(t *testing.T) {
	up := httptest.NewServer(upstream.New(upstream.Options{StreamDeltas: 20, StreamPace: time.Millisecond}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	px := httptest.NewServer(floor.New(u, 64))
	defer px.Close()
	res := RunStreams(context.Background(), NewClient(32), streamReq(px.URL), 32, 500*time.Millisecond, upstream.StreamEnd)
	if !res.Valid() {
		t.Fatalf("completed %d truncated %d non2xx %d errors %d: %s", res.Completed, res.Truncated, res.Non2xx, res.Errors, res.FirstError)
	}
	cres := RunClosed(context.Background(), NewClient(8), Request{
		Method: "POST", URL: px.URL + "/v1/chat/completions",
		Body: []byte(`{"model":"bench"}`),
	}, 8, 200*time.Millisecond)
	if !cres.Valid() {
		t.Fatalf("chat through floor: ok %d non2xx %d errors %d: %s", cres.OK, cres.Non2xx, cres.Errors, cres.FirstError)
	}
}
