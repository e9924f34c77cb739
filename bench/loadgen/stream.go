package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden/bench/hist"
)

// StreamResult is what a streaming run measured.
type StreamResult struct {
	// Completed streams ended with the expected final delta and then
	// "data: [DONE]".
	Completed uint64
	// Truncated streams got a 2xx answer but ended (EOF, reset, timeout)
	// before that, or their content did not end with the final delta.
	Truncated uint64
	// Non2xx and Errors count streams that never started.
	Non2xx, Errors uint64
	// FirstError describes the first failure, if any.
	FirstError string
	// TTFB is the time from sending the request to the response headers.
	TTFB *hist.Histogram
	// TTFT is the time from sending the request to the first content delta.
	TTFT *hist.Histogram
	// Gap is the time between two consecutive content-bearing events.
	Gap *hist.Histogram
	// Elapsed is the wall time of the run.
	Elapsed time.Duration
}

// Valid reports whether every stream started and completed.
func (r *StreamResult) Valid() bool {
	return r.Completed > 0 && r.Truncated == 0 && r.Non2xx == 0 && r.Errors == 0
}

// Merge adds o into r.
func (r *StreamResult) Merge(o *StreamResult) {
	r.Completed += o.Completed
	r.Truncated += o.Truncated
	r.Non2xx += o.Non2xx
	r.Errors += o.Errors
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	for _, h := range []**hist.Histogram{&r.TTFB, &r.TTFT, &r.Gap} {
		if *h == nil {
			*h = hist.New()
		}
	}
	r.TTFB.Merge(o.TTFB)
	r.TTFT.Merge(o.TTFT)
	r.Gap.Merge(o.Gap)
	r.Elapsed += o.Elapsed
}

// StreamOutcome classifies one stream.
type StreamOutcome int

// Stream outcomes.
const (
	StreamCompleted StreamOutcome = iota
	StreamTruncated
	StreamNon2xx
	StreamError
)

// ReadStream reads one SSE chat-completion stream from resp's body and
// classifies it: completed when the concatenated content ends with
// endMarker and "data: [DONE]" follows. It records the first-token time
// (relative to sent) and the gaps between content events.
func ReadStream(body io.Reader, sent time.Time, endMarker string, ttft, gap *hist.Histogram) (StreamOutcome, error) {
	out, _, err := readStream(body, sent, endMarker, ttft, gap)
	return out, err
}

// readStream is ReadStream that also returns the concatenated content.
func readStream(body io.Reader, sent time.Time, endMarker string, ttft, gap *hist.Histogram) (out StreamOutcome, text string, err error) {
	var content strings.Builder
	defer func() { text = content.String() }()
	br := bufio.NewReaderSize(body, 16<<10)
	var last time.Time
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return StreamTruncated, "", err
		}
		payload, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		payload = bytes.TrimSpace(payload)
		if string(payload) == "[DONE]" {
			if strings.HasSuffix(content.String(), endMarker) {
				return StreamCompleted, "", nil
			}
			return StreamTruncated, "", errors.New("[DONE] before the final delta")
		}
		var ev struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(payload, &ev); err != nil {
			return StreamTruncated, "", errors.New("bad event: " + err.Error())
		}
		var c string
		for _, ch := range ev.Choices {
			c += ch.Delta.Content
		}
		if c == "" {
			continue
		}
		now := time.Now()
		if last.IsZero() {
			ttft.RecordDuration(now.Sub(sent))
		} else {
			gap.RecordDuration(now.Sub(last))
		}
		last = now
		content.WriteString(c)
	}
}

// RunStreams keeps conns streams open for duration d: each worker opens
// its next stream as soon as the previous one ends. No stream starts
// after d; streams open then run to their end.
func RunStreams(ctx context.Context, c *http.Client, r Request, conns int, d time.Duration, endMarker string) StreamResult {
	type sw struct {
		res StreamResult
	}
	ws := make([]*sw, conns)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range ws {
		w := &sw{res: NewStreamResult()}
		ws[i] = w
		wg.Go(func() {
			// Every connection sends at least one request, however late
			// the scheduler starts it: a short run on a loaded machine
			// still measures something instead of nothing.
			for first := true; ctx.Err() == nil && (first || time.Now().Before(deadline)); first = false {
				out, _, err := StreamContent(ctx, c, r, endMarker, &w.res)
				switch out {
				case StreamCompleted:
					w.res.Completed++
				case StreamTruncated:
					w.res.Truncated++
				case StreamNon2xx:
					w.res.Non2xx++
				default:
					w.res.Errors++
				}
				if err != nil && w.res.FirstError == "" {
					w.res.FirstError = err.Error()
				}
			}
		})
	}
	wg.Wait()
	total := NewStreamResult()
	for _, w := range ws {
		total.Merge(&w.res)
	}
	total.Elapsed = time.Since(start)
	return total
}

// Stream sends r once and reads the answer as an SSE stream (see
// ReadStream); a non-2xx answer is StreamNon2xx, no answer StreamError.
func Stream(ctx context.Context, c *http.Client, r Request, endMarker string) (StreamOutcome, error) {
	res := NewStreamResult()
	out, _, err := StreamContent(ctx, c, r, endMarker, &res)
	return out, err
}

// NewStreamResult returns an empty result with its histograms allocated.
func NewStreamResult() StreamResult {
	return StreamResult{TTFB: hist.New(), TTFT: hist.New(), Gap: hist.New()}
}

// StreamContent is Stream that also returns the stream's concatenated
// content deltas (what a chat client would display) and records its
// timings into res's histograms (res's counters are left alone).
func StreamContent(ctx context.Context, c *http.Client, r Request, endMarker string, res *StreamResult) (StreamOutcome, string, error) {
	req, err := r.build(ctx)
	if err != nil {
		return StreamError, "", err
	}
	sent := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return StreamError, "", err
	}
	res.TTFB.RecordDuration(time.Since(sent))
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return StreamNon2xx, "", errors.New(resp.Status)
	}
	return readStream(resp.Body, sent, endMarker, res.TTFT, res.Gap)
}
