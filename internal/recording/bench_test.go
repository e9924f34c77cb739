package recording_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/recording"
)

// Benchmarks for the later warden-full+recording bench stage:
//
//	go test -run XXX -bench . -benchmem ./internal/recording/
//
// BenchmarkTee* measure what recording adds on the client's path (the tee
// after each write); BenchmarkRequest* the whole cost per request
// (capture + Finish: canonical form, zstd, AES-GCM, object and catalogue
// writes, both fsynced), which runs after the response, off the client's
// path, but costs throughput.

var (
	sseEvent  = []byte("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"}}]}\n\n")
	jsonReply = []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` + strings.Repeat("Hello there, this is an answer. ", 30) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":200,"total_tokens":212}}`)
	sseHeader = http.Header{"Content-Type": {"text/event-stream"}}
)

// BenchmarkTeeBaseline is the reference: the same writes without a
// capture.
func BenchmarkTeeBaseline(b *testing.B) {
	b.SetBytes(int64(len(sseEvent)))
	w := io.Discard
	for b.Loop() {
		w.Write(sseEvent)
	}
}

// BenchmarkTeeSSEEvent: the tee's cost per SSE event written (copy,
// event scan, timing mark), for responses of 1000 events held in memory
// and for ones spilled to disk (encrypted).
func BenchmarkTeeSSEEvent(b *testing.B) {
	for _, spill := range []bool{false, true} {
		b.Run(fmt.Sprintf("spilled=%v", spill), func(b *testing.B) {
			thresh := 1 << 20
			if spill {
				thresh = 4096
			}
			e := newEnv(b, nil, func(o *recording.Options) {
				o.SpillThreshold, o.MemoryBudget, o.MaxSize = thresh, 1<<31, 1<<40
			})
			var c *recording.Capture
			n := 0
			b.SetBytes(int64(len(sseEvent)))
			b.ReportAllocs()
			for b.Loop() {
				if n%1000 == 0 {
					c.Abort()
					var err error
					if c, err = e.rec.Reserve(recording.Info{RequestID: "bench", Level: recording.LevelFull}); err != nil {
						b.Fatal(err)
					}
					c.WriteHeader(200, sseHeader)
				}
				c.Write(sseEvent)
				n++
			}
			c.Abort()
		})
	}
}

// BenchmarkTeePerMB: the tee's cost per MB of a stream written in 32 KiB
// pieces (reported as MB/s).
func BenchmarkTeePerMB(b *testing.B) {
	chunk := []byte(strings.Repeat(string(sseEvent), 32<<10/len(sseEvent)))
	e := newEnv(b, nil, func(o *recording.Options) { o.MaxSize = 1 << 40 })
	c, err := e.rec.Reserve(recording.Info{RequestID: "bench", Level: recording.LevelFull})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Abort()
	c.WriteHeader(200, sseHeader)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		c.Write(chunk)
	}
}

// request records one request as the gateway would: Reserve, Request,
// response, Finish.
func request(b *testing.B, rec *recording.Recorder, streamed bool) recording.Result {
	c, err := rec.Reserve(recording.Info{
		// Random like the gateway's generated ids: the catalogue's
		// request-id index then takes a random page per recording.
		RequestID: apierr.NewRequestID(), Principal: "alice", Route: "openai", Level: recording.LevelFull,
		Redact: func(p []byte) ([]byte, error) { return p, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	c.Request(recording.ForwardedRequest{
		Method: "POST", Path: "/v1/chat/completions",
		Header: http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer x"}},
		Body:   []byte(chatBody),
	})
	if streamed {
		c.WriteHeader(200, sseHeader)
		for range 200 {
			c.Write(sseEvent)
		}
	} else {
		c.WriteHeader(200, http.Header{"Content-Type": {"application/json"}})
		c.Write(jsonReply)
	}
	res := c.Finish(context.Background())
	if res.Outcome != recording.OutcomeStored {
		b.Fatal(res.Err)
	}
	return res
}

// BenchmarkRequest: the whole cost of recording one request, serially
// and with 16 requests finishing at once; stored-B/op is the object size
// (docs/recording.md sizing).
func BenchmarkRequest(b *testing.B) {
	for _, tc := range []struct {
		name     string
		streamed bool
	}{{"json", false}, {"sse200", true}} {
		b.Run(tc.name+"/serial", func(b *testing.B) {
			e := newEnv(b, nil, nil)
			var size int64
			cpu0 := cpuTime()
			for b.Loop() {
				size = request(b, e.rec, tc.streamed).Size
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(size), "stored-B/op")
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			e := newEnv(b, nil, nil)
			b.SetParallelism(32)
			var size atomic.Int64
			start, cpu0 := time.Now(), cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					size.Store(request(b, e.rec, tc.streamed).Size)
				}
			})
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rec/s")
			b.ReportMetric(float64(size.Load()), "stored-B/op")
		})
	}
}

// cpuTime is the process's user+system CPU time: on a shared machine it
// says more about the cost of recording than wall time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRequestPaced: recording at the pace of the harness's stream
// workload — 64 clients, each request taking ~200 ms (20 SSE deltas 10 ms
// apart), ~300 recordings/s — where a commit gathers few recordings and
// its fixed cost (two fsyncs, a transaction) is shared by few. Compare
// cpu-µs/op with BenchmarkRequest's saturated batches.
func BenchmarkRequestPaced(b *testing.B) {
	e := newEnv(b, nil, nil)
	const clients, think = 64, 200 * time.Millisecond
	var next atomic.Int64
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				time.Sleep(think)
				request(b, e.rec, true)
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rec/s")
}

// BenchmarkRequestOpen: recordings arriving at a fixed rate (RATE, default
// 2000/s: the harness's chat workload at 64 connections), each finished
// on a goroutine of its own as the gateway's completion goroutine does,
// with nobody waiting on a commit before starting the next request. How
// many recordings a commit gathers — and so the share of its fixed cost
// (a transaction, two fsyncs) each one pays — depends on the rate and the
// linger, which the closed-loop benchmarks above cannot show.
func BenchmarkRequestOpen(b *testing.B) {
	rate := 2000
	if s := os.Getenv("RATE"); s != "" {
		rate, _ = strconv.Atoi(s)
	}
	e := newEnv(b, nil, nil)
	iv := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), cpuTime()
	next := start
	for i := 0; i < b.N; i++ {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(iv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			request(b, e.rec, false)
		}()
	}
	wg.Wait()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rec/s")
}
