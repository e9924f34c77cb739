package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// freeAddr returns a loopback address nobody listens on right now. The
// port is picked below the kernel's ephemeral range: a port the kernel
// handed out for ":0" is also what it hands to outgoing connections, so
// under a parallel test run (load generators, proxies) it could be taken
// by a client socket before warden binds it again after a kill, which
// made restarts fail with "address already in use".
func freeAddr(t *testing.T) string {
	t.Helper()
	lo, hi := 20000, ephemeralLow()-1
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", lo+rand.IntN(hi-lo+1))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatalf("no free loopback port in %d-%d", lo, hi)
	return ""
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 21024 {
		return 32768
	}
	return n
}

// startServe runs `warden serve` on cfgPath and waits for /readyz.
func startServe(t *testing.T, cfgPath, adminAddr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(wardenBin, "serve", "--config", cfgPath, "--log-level", "warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	t.Fatalf("warden serve did not become ready:\n%s", stderr.String())
	return nil
}

// crashConfig writes the config of an anonymous gateway with one OpenAI
// route to upstream (plus extra YAML) in a new directory; the data dir
// is dir/data.
func crashConfig(t *testing.T, upstream, extra string) (dir, gwAddr, adminAddr, cfgPath string) {
	t.Helper()
	dir = t.TempDir()
	gwAddr, adminAddr = freeAddr(t), freeAddr(t)
	cfgPath = filepath.Join(dir, "warden.yaml")
	cfg := fmt.Sprintf(`listen: %s
admin_listen: %s
data_dir: %s
allow_anonymous: true
routes:
  - name: openai
    path_prefix: /v1/
    upstream: %s
    profile: openai
%s`, gwAddr, adminAddr, filepath.Join(dir, "data"), upstream, extra)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, gwAddr, adminAddr, cfgPath
}

// loadAndKill sends POST /v1/chat/completions with body from workers
// goroutines (request ids prefix-w<worker>-<n>) and kills cmd with
// SIGKILL after d. answered, if set, gets the id of every request whose
// caller received a response (headers at least). It returns how many requests were sent.
func loadAndKill(cmd *exec.Cmd, gwAddr string, workers int, body, prefix string, d time.Duration, answered func(id string)) int64 {
	client := &http.Client{Timeout: 10 * time.Second}
	var sent atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-w%d-%d", prefix, w, i)
				req, _ := http.NewRequest("POST", "http://"+gwAddr+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("X-Request-Id", id)
				sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					continue // killed mid-request: no response byte, no promise
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if answered != nil {
					answered(id)
				}
			}
		}()
	}
	time.Sleep(d)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	close(stop)
	wg.Wait()
	return sent.Load()
}

// TestCrashUnderLoad kills the gateway with SIGKILL under concurrent load,
// several times. After each kill `warden verify` must pass, the gateway
// must restart on the same data, and every request whose caller received
// any response byte must have its request.admitted entry.
func TestCrashUnderLoad(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"chat.completion","choices":[{"message":{"content":"ok"}}]}`))
	}))
	defer up.Close()
	dir, gwAddr, adminAddr, cfgPath := crashConfig(t, up.URL, "audit:\n  checkpoint_every: 50\n  checkpoint_interval: 200ms\n")

	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	var answered []string // request ids whose caller got a response
	for round := 0; round < rounds; round++ {
		cmd := startServe(t, cfgPath, adminAddr)
		var mu sync.Mutex
		loadAndKill(cmd, gwAddr, 16, `{"model":"m"}`, fmt.Sprintf("crash-r%d", round), time.Duration(300+100*round)*time.Millisecond, func(id string) {
			mu.Lock()
			answered = append(answered, id)
			mu.Unlock()
		})

		out, err := exec.Command(wardenBin, "verify", "--data-dir", filepath.Join(dir, "data")).CombinedOutput()
		if err != nil {
			t.Fatalf("round %d: warden verify after SIGKILL failed: %v\n%s", round, err, out)
		}
	}
	if len(answered) == 0 {
		t.Fatal("no request was answered; the test proves nothing")
	}

	// Every answered request has its admission on record.
	st, err := sqlite.OpenReadOnly(context.Background(), filepath.Join(dir, "data", "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Counted from the log itself (the search index of a killed gateway
	// may lag; it is caught up at the next start).
	admitted := map[string]bool{}
	size, err := st.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for from := int64(0); from < size; from += 1000 {
		recs, err := st.ReadRecords(context.Background(), from, min(from+1000, size))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			e, err := audit.ParseEntry(r.Seq, r.Data)
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind == audit.KindRequestAdmitted {
				admitted[e.RequestID] = true
			}
		}
	}
	missing := 0
	for _, id := range answered {
		if !admitted[id] {
			missing++
			if missing < 5 {
				t.Errorf("request %s was answered but has no request.admitted entry", id)
			}
		}
	}
	t.Logf("%d rounds, %d answered requests, %d admitted entries, %d missing", rounds, len(answered), len(admitted), missing)
}

// TestCrashTerminalRecords: SIGKILL under load with requests in flight
// (slow streamed answers), many times. After the last kill one clean
// start and stop closes what the crashes left open: then every admission
// has exactly one terminal entry (request.completed or request.abandoned)
// and `warden verify` reports 0 open requests.
func TestCrashTerminalRecords(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"part %d \"}}]}\n\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	dir, gwAddr, adminAddr, cfgPath := crashConfig(t, up.URL, "")
	rounds := 30
	if testing.Short() {
		rounds = 5
	}
	var sent int64
	for round := range rounds {
		cmd := startServe(t, cfgPath, adminAddr)
		sent += loadAndKill(cmd, gwAddr, 8, `{"model":"m","stream":true}`, fmt.Sprintf("term-r%d", round),
			time.Duration(150+(round*37)%200)*time.Millisecond, nil)
	}
	// One clean run: its start closes what the last crash left open.
	cmd := startServe(t, cfgPath, adminAddr)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	out, err := exec.Command(wardenBin, "verify", "--data-dir", filepath.Join(dir, "data")).CombinedOutput()
	if err != nil {
		t.Fatalf("warden verify failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "open requests: 0 ") {
		t.Fatalf("warden verify does not report 0 open requests:\n%s", out)
	}

	// Count from the log itself: exactly one terminal entry per admission.
	st, err := sqlite.OpenReadOnly(context.Background(), filepath.Join(dir, "data", "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	type counts struct{ admitted, terminal int }
	byID := map[string]*counts{}
	kinds := map[string]int{}
	size, err := st.Size(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for from := int64(0); from < size; from += 1000 {
		recs, err := st.ReadRecords(context.Background(), from, min(from+1000, size))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			e, err := audit.ParseEntry(r.Seq, r.Data)
			if err != nil {
				t.Fatal(err)
			}
			kinds[e.Kind]++
			if e.RequestID == "" || !strings.HasPrefix(e.RequestID, "term-") {
				continue
			}
			c := byID[e.RequestID]
			if c == nil {
				c = &counts{}
				byID[e.RequestID] = c
			}
			switch {
			case e.Kind == audit.KindRequestAdmitted:
				c.admitted++
			case audit.IsTerminal(e.Kind):
				c.terminal++
			}
		}
	}
	bad := 0
	for id, c := range byID {
		if c.admitted != 1 || c.terminal != 1 {
			bad++
			if bad <= 5 {
				t.Errorf("request %s: %d admissions, %d terminal entries; want exactly one each", id, c.admitted, c.terminal)
			}
		}
	}
	if kinds[audit.KindRequestAdmitted] == 0 || kinds[audit.KindRequestAbandoned] == 0 {
		t.Fatalf("the test proves nothing: kinds %v", kinds)
	}
	t.Logf("%d crash rounds, %d requests sent, kinds %v, %d requests with a wrong terminal count", rounds, sent, kinds, bad)
}
