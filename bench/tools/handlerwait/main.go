// Command handlerwait is decision 037's experiment: does a wait inside
// the handler (like the durable admission's group commit) raise net/http's CPU per request
// (the response's write syscall)? Run, alternating WAIT 0s and 2ms:
//
//	go build -o /tmp/hw . && for w in 0s 2ms 0s 2ms; do
//	  /tmp/hw server $w 5s /tmp/hw-$w.pprof & sleep 0.5; /tmp/hw client 64 7s; wait; done
//	go tool pprof -top -focus 'net/http.\(\*conn\).serve$' /tmp/hw /tmp/hw-2ms.pprof
//
// server: serves 127.0.0.1:18777, waiting WAIT before answering, and
// CPU-profiles itself for DUR after a 2 s warm-up, then prints requests
// and process CPU per request. client: C keep-alive connections in a
// closed loop for DUR.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var body = []byte(`{"object":"chat.completion","choices":[{"message":{"role":"assistant","content":"hello there, this is a short answer of a few words"}}],"usage":{"prompt_tokens":12,"completion_tokens":9}}`)

func main() {
	switch os.Args[1] {
	case "server":
		wait, _ := time.ParseDuration(os.Args[2])
		dur, _ := time.ParseDuration(os.Args[3])
		var n atomic.Int64
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if wait > 0 {
				time.Sleep(wait)
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
			n.Add(1)
		})
		go http.ListenAndServe("127.0.0.1:18777", h)
		time.Sleep(2 * time.Second) // warm up
		f, _ := os.Create(os.Args[4])
		n0, c0 := n.Load(), cpu()
		pprof.StartCPUProfile(f)
		time.Sleep(dur)
		pprof.StopCPUProfile()
		reqs, used := n.Load()-n0, cpu()-c0
		fmt.Printf("wait=%v requests=%d req/s=%.0f cpu-µs/req=%.1f\n", wait, reqs, float64(reqs)/dur.Seconds(), float64(used.Microseconds())/float64(reqs))
	case "client":
		c, _ := strconv.Atoi(os.Args[2])
		dur, _ := time.ParseDuration(os.Args[3])
		cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
		end := time.Now().Add(dur)
		var wg sync.WaitGroup
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					resp, err := cl.Post("http://127.0.0.1:18777/x", "application/json", nil)
					if err != nil {
						time.Sleep(10 * time.Millisecond)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
	}
}
