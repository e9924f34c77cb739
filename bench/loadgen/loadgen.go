package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/bench/hist"
)

// Request is the request every worker sends.
type Request struct {
	Method string
	URL    string
	Header http.Header
	Body   []byte
}

func (r Request) build(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return nil, err
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	return req, nil
}

// NewClient returns an HTTP/1.1 client that keeps up to conns connections
// open to one host and opens no more than that.
func NewClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// Result is what one run measured.
type Result struct {
	// OK counts 2xx answers read in full.
	OK uint64
	// Non2xx counts answers with any other status.
	Non2xx uint64
	// Errors counts requests that got no answer (connect, reset, timeout).
	Errors uint64
	// FirstError describes the first failure (status or error), if any.
	FirstError string
	// Latency holds every answered request's latency in nanoseconds. In
	// open loop it is measured from the intended send time.
	Latency *hist.Histogram
	// SendLag (open loop only) is how late requests were sent relative to
	// their intended time; a large lag means the generator or the target
	// could not keep up with the rate.
	SendLag *hist.Histogram
	// Elapsed is the wall time from the first send to the last answer.
	Elapsed time.Duration
}

// Valid reports whether every request got a 2xx answer.
func (r *Result) Valid() bool { return r.Non2xx == 0 && r.Errors == 0 && r.OK > 0 }

// RPS is the rate of 2xx answers per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Merge adds o's counts and histograms to r (Elapsed adds up, so RPS of
// a merged result is the mean rate over all runs).
func (r *Result) Merge(o *Result) {
	r.OK += o.OK
	r.Non2xx += o.Non2xx
	r.Errors += o.Errors
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	if r.Latency == nil {
		r.Latency = hist.New()
	}
	r.Latency.Merge(o.Latency)
	if o.SendLag != nil {
		if r.SendLag == nil {
			r.SendLag = hist.New()
		}
		r.SendLag.Merge(o.SendLag)
	}
	r.Elapsed += o.Elapsed
}

// worker holds one goroutine's private counters, merged at the end.
type worker struct {
	ok, non2xx, errs uint64
	firstErr         string
	lat, lag         *hist.Histogram
}

func newWorker() *worker { return &worker{lat: hist.New(), lag: hist.New()} }

// do sends one request and reads the whole answer. It returns when the
// answer is read (or failed).
func (w *worker) do(ctx context.Context, c *http.Client, r Request) (ok bool) {
	req, err := r.build(ctx)
	if err != nil {
		w.fail("build: " + err.Error())
		w.errs++
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		w.fail(err.Error())
		w.errs++
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		w.fail("read body: " + err.Error())
		w.errs++
		return false
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		w.fail(resp.Status)
		w.non2xx++
		return true
	}
	w.ok++
	return true
}

func (w *worker) fail(s string) {
	if w.firstErr == "" {
		w.firstErr = s
	}
}

func collect(ws []*worker, open bool, elapsed time.Duration) Result {
	res := Result{Latency: hist.New(), Elapsed: elapsed}
	if open {
		res.SendLag = hist.New()
	}
	for _, w := range ws {
		res.OK += w.ok
		res.Non2xx += w.non2xx
		res.Errors += w.errs
		if res.FirstError == "" {
			res.FirstError = w.firstErr
		}
		res.Latency.Merge(w.lat)
		if open {
			res.SendLag.Merge(w.lag)
		}
	}
	return res
}

// RunClosed keeps conns requests in flight for duration d: each worker
// sends its next request as soon as the previous answer is read. No new
// request starts after d; requests in flight then are completed.
func RunClosed(ctx context.Context, c *http.Client, r Request, conns int, d time.Duration) Result {
	ws := make([]*worker, conns)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range ws {
		w := newWorker()
		ws[i] = w
		wg.Go(func() {
			// Every connection sends at least one request, however late
			// the scheduler starts it: a short run on a loaded machine
			// still measures something instead of nothing.
			for first := true; ctx.Err() == nil && (first || time.Now().Before(deadline)); first = false {
				t0 := time.Now()
				if w.do(ctx, c, r) {
					w.lat.RecordDuration(time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	return collect(ws, false, time.Since(start))
}

// Intended is the time request i is due in an open-loop run at rate
// requests per second starting at start.
func Intended(start time.Time, rate float64, i int64) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// RunOpen sends rate requests per second for duration d, request i due
// at Intended(start, rate, i), with at most maxInFlight outstanding. A
// request that cannot be sent on time (all workers busy) is sent as soon
// as a worker frees up, and its latency still counts from its intended
// time.
func RunOpen(ctx context.Context, c *http.Client, r Request, rate float64, d time.Duration, maxInFlight int) Result {
	total := int64(rate * d.Seconds())
	var next atomic.Int64
	// Most of the maxInFlight goroutines sleep until their request is due;
	// they record into a few shared shards instead of a histogram each.
	shards := make([]struct {
		mu sync.Mutex
		w  *worker
	}, min(maxInFlight, 16))
	ws := make([]*worker, len(shards))
	for i := range shards {
		shards[i].w = newWorker()
		ws[i] = shards[i].w
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range maxInFlight {
		sh := &shards[i%len(shards)]
		wg.Go(func() {
			local := &worker{}
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if n >= total {
					return
				}
				due := Intended(start, rate, n)
				if wait := time.Until(due); wait > 0 {
					sleep(ctx, wait)
				}
				lag := time.Since(due)
				*local = worker{}
				answered := local.do(ctx, c, r)
				lat := time.Since(due)
				sh.mu.Lock()
				sh.w.lag.RecordDuration(lag)
				if answered {
					sh.w.lat.RecordDuration(lat)
				}
				sh.w.ok += local.ok
				sh.w.non2xx += local.non2xx
				sh.w.errs += local.errs
				if sh.w.firstErr == "" {
					sh.w.firstErr = local.firstErr
				}
				sh.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return collect(ws, true, time.Since(start))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
