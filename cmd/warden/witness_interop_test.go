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
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

// TestOmniwitnessInterop runs the real binary (`warden serve`) with two
// independent transparency-dev omniwitness processes: requests through
// the gateway produce checkpoints that both witnesses cosign; the
// cosignatures are stored and `warden verify --witness … --min-witnesses
// 2` accepts them; the data dir rolled back to an earlier copy is refused
// by the gateway (the witnesses remember a larger tree) and by `warden
// verify` given the witness's own copy. Skipped without the omniwitness
// binary unless WARDEN_TEST_REQUIRE_WITNESS=1 (CI).
func TestOmniwitnessInterop(t *testing.T) {
	if _, ok := witnesstest.OmniwitnessBinary(); !ok {
		witnesstest.Omniwitness(t, "probe") // skips or fails with the install hint
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	signer, _ := audit.KeyPaths(data)
	logKey, err := audit.GenerateKeyFiles(signer, "warden-audit")
	if err != nil {
		t.Fatal(err)
	}
	wa := witnesstest.Omniwitness(t, "witness-a.test", logKey)
	wb := witnesstest.Omniwitness(t, "witness-b.test", logKey)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"object":"chat.completion","choices":[{"message":{"content":"ok"}}]}`))
	}))
	defer up.Close()
	gw, adm := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "warden.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: %s
admin_listen: %s
data_dir: %s
allow_anonymous: true
routes:
  - {name: openai, path_prefix: /v1/, upstream: %s, profile: openai}
audit:
  checkpoint_every: 8
  checkpoint_interval: 200ms
  witnesses:
    - {name: a, url: %s, key: %s}
    - {name: b, url: %s, key: %s}
  witnessing:
    poll: 50ms
`, gw, adm, data, up.URL, wa.URL, wa.Key, wb.URL, wb.Key)), 0o600)

	// drive serves n requests through the gateway, waits until both
	// witnesses cosigned the newest checkpoint (metrics), and stops it.
	drive := func(n int) int64 {
		t.Helper()
		cmd := startServe(t, cfgPath, adm)
		for i := 0; i < n; i++ {
			resp, err := http.Post("http://"+gw+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","messages":[]}`))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
		}
		var metrics string
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get("http://" + adm + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
			if strings.Contains(metrics, `warden_witness_up{witness="a"} 1`) && strings.Contains(metrics, `warden_witness_up{witness="b"} 1`) &&
				strings.Contains(metrics, `warden_witness_submissions_total{result="cosigned",witness="b"}`) {
				break
			}
		}
		if !strings.Contains(metrics, `warden_witness_up{witness="a"} 1`) || !strings.Contains(metrics, `warden_witness_up{witness="b"} 1`) {
			t.Fatalf("witnesses not up:\n%s\nwitness a:\n%s", grepLines(metrics, "warden_witness"), wa.Output())
		}
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("warden serve: %v", err)
		}
		st, err := sqlite.OpenReadOnly(context.Background(), filepath.Join(data, "audit.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		size, _ := st.Size(context.Background())
		cs, err := sqlite.OpenCosignaturesReadOnly(context.Background(), filepath.Join(data, "cosignatures.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		for _, w := range []string{"witness-a.test", "witness-b.test"} {
			rows, err := cs.Cosignatures(context.Background(), w, 0, 1)
			if err != nil || len(rows) != 1 || rows[0].Size != size {
				t.Fatalf("stored cosignatures of %s: %+v %v (store size %d)", w, rows, err, size)
			}
		}
		return size
	}

	drive(12)
	backup := filepath.Join(dir, "backup")
	copyDir(t, data, backup)
	size := drive(12)

	verify := func(args ...string) (string, int) {
		cmd := exec.Command(wardenBin, append([]string{"verify", "--data-dir", data}, args...)...)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	out, code := verify("--witness", wa.Key, "--witness", wb.Key, "--min-witnesses", "2")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("witnessed: checkpoint of size %d", size)) ||
		!strings.Contains(out, "witness-a.test (") || !strings.Contains(out, "witness-b.test (") {
		t.Fatalf("verify with both witnesses: exit %d\n%s", code, out)
	}
	// The cosigned file carries both witnesses' cosignatures.
	cosigned, _ := os.ReadFile(filepath.Join(data, "audit.cosigned"))
	lv, _ := audit.LoadVerifier(filepath.Join(data, "keys", "audit.verifier"))
	va, _ := witness.NewVerifier(wa.Key)
	vb, _ := witness.NewVerifier(wb.Key)
	if c, err := witness.OpenCosigned(cosigned, lv, []*witness.Verifier{va, vb}); err != nil || c.Size != size || len(c.Sigs) != 2 {
		t.Fatalf("cosigned file: %+v %v\n%s", c, err, cosigned)
	}
	// The witness's own copy of its latest checkpoint.
	auditor := filepath.Join(dir, "witness-b.note")
	os.WriteFile(auditor, wb.Latest(t, "warden-audit"), 0o644)

	// Roll the data dir back.
	os.RemoveAll(data)
	copyDir(t, backup, data)
	if out, code := verify(); code != 0 {
		t.Fatalf("plain verify on the rolled-back dir (passes: that is the attack): exit %d\n%s", code, out)
	}
	out, code = verify("--witness", wa.Key, "--witness", wb.Key, "--checkpoint", auditor)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("checkpoint %d was cosigned by witness-b.test: the log was truncated or rolled back", size)) {
		t.Fatalf("verify with the witness's copy: exit %d\n%s", code, out)
	}
	cmd := exec.Command(wardenBin, "serve", "--config", cfgPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(stderr.String(), fmt.Sprintf("has cosigned a tree of size %d for this log", size)) {
			t.Fatalf("warden serve on the rolled-back dir: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("warden serve started on a rolled-back data dir:\n%s", stderr.String())
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
