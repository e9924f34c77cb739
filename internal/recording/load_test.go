package recording_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/recording"
)

// TestSixtyFourConcurrentStreams: 64 streams recorded at once, with a
// small spill threshold and memory budget so most of them spill; every
// recording holds exactly what its client received, event for event.
func TestSixtyFourConcurrentStreams(t *testing.T) {
	e := newEnv(t, nil, func(o *recording.Options) { o.SpillThreshold, o.MemoryBudget = 4096, 64<<10 })
	g := newGatewayProxy(t, e.rec, upstream(t), proxyOpts{redact: redactCards})
	const n = 64
	seens := make([]seen, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seens[i] = call(t, g, "/v1/chat/completions?stream=1&n=120&gap=1ms", fmt.Sprintf("req-%02d", i), "alice", chatBody, nil)
		}()
	}
	wg.Wait()
	byReq := map[string]recording.Result{}
	for range n {
		res := result(t, g)
		if res.Outcome != recording.OutcomeStored {
			t.Fatalf("a recording failed: %+v", res)
		}
		en, err := e.rec.Get(testCtx(t), res.ID)
		if err != nil {
			t.Fatal(err)
		}
		byReq[en.RequestID] = res
	}
	if len(byReq) != n {
		t.Fatalf("%d distinct recordings, want %d", len(byReq), n)
	}
	for i, s := range seens {
		res := byReq[fmt.Sprintf("req-%02d", i)]
		rec, _, err := e.rec.Load(testCtx(t), res.ID, 1<<20)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		if !bytes.Equal(rec.ResponseBody, s.body) || rec.Meta.Response.Events != s.events || s.events != 121 {
			t.Errorf("stream %d: recorded %d bytes / %d events, client got %d bytes / %d events",
				i, len(rec.ResponseBody), rec.Meta.Response.Events, len(s.body), s.events)
		}
	}
}

// TestMemoryFlatOn100MBStream: recording (and storing) a 100 MB streamed
// answer keeps the heap flat: it spills to disk instead of growing with
// the stream. The client receives all of it, and the recording verifies.
func TestMemoryFlatOn100MBStream(t *testing.T) {
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
	e := newEnv(t, nil, nil)
	g := newGatewayProxy(t, e.rec, up, proxyOpts{})

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
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

	req, _ := http.NewRequest("POST", g.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("X-Request-Id", "req-100mb")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil || n < total {
		t.Fatalf("client read %d bytes: %v", n, err)
	}
	res := result(t, g) // compressed, sealed and stored
	close(stop)
	<-sampled
	if res.Outcome != recording.OutcomeStored {
		t.Fatalf("recording failed: %+v", res)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("100 MB stream: heap in use grew by at most %.1f MiB; stored object %.1f MiB (%.1f%% of the stream)",
		float64(grew)/(1<<20), float64(res.Size)/(1<<20), 100*float64(res.Size)/float64(n))
	if grew > 40<<20 {
		t.Errorf("heap grew by %d MiB while recording a %d MiB stream; it should stay flat", grew>>20, n>>20)
	}
	if res.BodySize != n {
		t.Errorf("recorded %d body bytes, client received %d", res.BodySize, n)
	}

	// The recording reads back as a stream and matches what the client got.
	o, err := e.rec.Open(testCtx(t), res.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.RequestBody(1 << 20); err != nil {
		t.Fatal(err)
	}
	marks, err := o.Marks()
	if err != nil {
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
	d, err := o.Reader.Close()
	if err != nil || d != res.Digest {
		t.Fatalf("digest %s, %v; Finish said %s", d, err, res.Digest)
	}
	if !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
		t.Error("the recorded body differs from what the client received")
	}
	if want := int(n) / len(event); len(marks) != want {
		t.Errorf("%d marks, want %d events", len(marks), want)
	}
	if ents, _ := os.ReadDir(e.dir + "/recordings/tmp"); len(ents) != 0 {
		t.Errorf("spill files left behind: %d", len(ents))
	}
}
