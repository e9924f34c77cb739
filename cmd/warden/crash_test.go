package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(nil)
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	return addr
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
	dir := t.TempDir()
	gwAddr, adminAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "warden.yaml")
	cfg := fmt.Sprintf(`listen: %s
admin_listen: %s
data_dir: %s
allow_anonymous: true
routes:
  - name: openai
    path_prefix: /v1/
    upstream: %s
    profile: openai
audit:
  checkpoint_every: 50
  checkpoint_interval: 200ms
`, gwAddr, adminAddr, filepath.Join(dir, "data"), up.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	rounds := 4
	if testing.Short() {
		rounds = 2
	}
	var answered []string // request ids whose caller got a response
	client := &http.Client{Timeout: 10 * time.Second}
	for round := 0; round < rounds; round++ {
		cmd := startServe(t, cfgPath, adminAddr)
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("crash-r%d-w%d-%d", round, w, i)
					req, _ := http.NewRequest("POST", "http://"+gwAddr+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
					req.Header.Set("X-Request-Id", id)
					resp, err := client.Do(req)
					if err != nil {
						continue // killed mid-request: no response byte, no promise
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					answered = append(answered, id)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(300+100*round) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		close(stop)
		wg.Wait()

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
