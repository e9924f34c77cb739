package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const backupPolicy = `version: 1
default_action: deny
rules:
  - name: everyone
    when: "true"
    action: allow
`

func backupConfig(t *testing.T, dir, dataDir, gwAddr, adminAddr, upstream string) string {
	t.Helper()
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(backupPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("warden-%s.yaml", filepath.Base(dataDir)))
	cfg := fmt.Sprintf(`listen: %s
admin_listen: %s
data_dir: %s
allow_anonymous: true
routes:
  - name: openai
    path_prefix: /v1/
    upstream: %s
    profile: openai
policy:
  file: %s
audit:
  checkpoint_every: 50
  checkpoint_interval: 100ms
`, gwAddr, adminAddr, dataDir, upstream, pf)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var verifiedRange = regexp.MustCompile(`verified entries \[0, (\d+)\)`)

func verifiedSize(t *testing.T, out string) int {
	t.Helper()
	m := verifiedRange.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no verified range in:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func stopServe(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("warden serve did not stop on SIGTERM")
	}
}

// TestBackupUnderLoad runs `warden backup` (to a directory and as a tar
// stream) against a gateway serving 8 concurrent clients: the gateway
// answers every request during the backups, each copy verifies with
// `warden verify`, and a restored copy starts a gateway that serves.
// Restoring over the live data dir needs --force and reports the entries
// the rollback loses.
func TestBackupUnderLoad(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"chat.completion","choices":[{"message":{"content":"ok"}}]}`))
	}))
	defer up.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	gwAddr, adminAddr := freeAddr(t), freeAddr(t)
	cfgPath := backupConfig(t, dir, data, gwAddr, adminAddr, up.URL)
	srv := startServe(t, cfgPath, adminAddr)
	defer func() {
		if srv.ProcessState == nil {
			stopServe(t, srv)
		}
	}()

	var answered, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Post("http://"+gwAddr+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
					continue
				}
				answered.Add(1)
			}
		}()
	}
	for answered.Load() < 200 {
		if failed.Load() > 0 {
			t.Fatalf("requests failed before the backup: %v", firstErr.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// 1. To a directory, while the load goes on.
	bak := filepath.Join(dir, "backup-1")
	before := answered.Load()
	out, err := exec.Command(wardenBin, "backup", "--config", cfgPath, "--out", bak).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\nOK\n") {
		t.Fatalf("warden backup: %v\n%s", err, out)
	}
	size1 := verifiedSize(t, string(out))
	if answered.Load() == before {
		t.Fatal("no request was answered while the backup ran: it did not run under load")
	}
	// The copy verifies on its own, with the plain verify command.
	vout, err := exec.Command(wardenBin, "verify", "--data-dir", bak).CombinedOutput()
	if err != nil || verifiedSize(t, string(vout)) != size1 {
		t.Fatalf("warden verify of the backup: %v\n%s", err, vout)
	}
	for _, f := range []string{"audit.db", "approvals.db", "audit.checkpoint", "keys/audit.signer", "keys/audit.verifier", "keys/mask.key"} {
		if _, err := os.Stat(filepath.Join(bak, f)); err != nil {
			t.Errorf("the backup lacks %s: %v", f, err)
		}
	}
	if size1 < 200 {
		t.Fatalf("the backup holds %d entries; at least 200 requests were admitted before it", size1)
	}

	// 2. As a tar stream on stdout (for kubectl exec), still under load.
	cmd := exec.Command(wardenBin, "backup", "--data-dir", data, "--out", "-", "--work-dir", dir)
	var tarOut, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &tarOut, &stderr
	if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "\nOK\n") {
		t.Fatalf("warden backup --out -: %v\n%s", err, stderr.String())
	}
	size2 := verifiedSize(t, stderr.String())
	bak2 := filepath.Join(dir, "backup-2")
	untar(t, &tarOut, bak2)
	vout, err = exec.Command(wardenBin, "verify", "--data-dir", bak2).CombinedOutput()
	if err != nil || verifiedSize(t, string(vout)) != size2 || size2 < size1 {
		t.Fatalf("warden verify of the streamed backup (%d entries, first backup %d): %v\n%s", size2, size1, err, vout)
	}
	if staged, _ := filepath.Glob(filepath.Join(dir, "warden-backup-*")); len(staged) != 0 {
		t.Errorf("staging left behind: %v", staged)
	}

	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d requests failed during the backups (first: %v)", n, firstErr.Load())
	}
	stopServe(t, srv)

	// 3. Restore into a new data dir and serve from it.
	data2 := filepath.Join(dir, "data2")
	out, err = exec.Command(wardenBin, "restore", "--from", bak, "--data-dir", data2).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\nOK\n") {
		t.Fatalf("warden restore: %v\n%s", err, out)
	}
	gw2, admin2 := freeAddr(t), freeAddr(t)
	srv2 := startServe(t, backupConfig(t, dir, data2, gw2, admin2, up.URL), admin2)
	resp, err := http.Post("http://"+gw2+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("gateway on the restored data dir: %v %v", resp, err)
	}
	resp.Body.Close()
	stopServe(t, srv2)

	// 4. Over the live data dir: refused without --force; with it, the
	// rollback is reported and the newer checkpoint kept aside.
	out, err = exec.Command(wardenBin, "restore", "--from", bak, "--data-dir", data).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--force") {
		t.Fatalf("restore over a data dir with a log: %v\n%s", err, out)
	}
	out, err = exec.Command(wardenBin, "restore", "--from", bak, "--data-dir", data, "--force").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "are lost by this restore") || !strings.Contains(string(out), "\nOK\n") {
		t.Fatalf("restore --force: %v\n%s", err, out)
	}
	if aside, _ := filepath.Glob(filepath.Join(data, "audit.checkpoint.before-restore-*")); len(aside) != 1 {
		t.Fatalf("the newer checkpoint was not kept aside: %v", aside)
	}
	// The replaced frame file's durable mark went aside with it: it
	// describes that file, not the restored one.
	if _, err := os.Stat(filepath.Join(data, "audit.db.frames.mark")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the replaced frame file's mark was left beside the restored one: %v", err)
	}
	if aside, _ := filepath.Glob(filepath.Join(data, "audit.db.frames.before-restore-*.mark")); len(aside) != 1 {
		t.Fatalf("the replaced frame file's mark was not kept aside with it: %v", aside)
	}
	t.Logf("%d requests answered; backups of %d and %d entries", answered.Load(), size1, size2)
}

// TestBackupRefusesPostgresAndBadTargets: a PostgreSQL store is not
// backed up by this command; an existing target and a missing log are
// refused; a backup that does not verify is not restored.
func TestBackupRefusesPostgresAndBadTargets(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pg.yaml")
	if err := os.WriteFile(cfg, []byte("allow_anonymous: true\nroutes: [{name: r, path_prefix: /, upstream: http://127.0.0.1:1}]\naudit: {store: postgres, dsn: postgres://x@127.0.0.1:1/x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runCmd(t, newBackupCmd(), "--config", cfg, "--out", filepath.Join(dir, "b")); code != 2 || !strings.Contains(out, "pg_dump") {
		t.Fatalf("postgres: %d %s", code, out)
	}
	if out, code := runCmd(t, newBackupCmd(), "--data-dir", filepath.Join(dir, "empty"), "--out", filepath.Join(dir, "b")); code != 2 || !strings.Contains(out, "no audit log") {
		t.Fatalf("missing log: %d %s", code, out)
	}
	if err := os.Mkdir(filepath.Join(dir, "exists"), 0o700); err != nil {
		t.Fatal(err)
	}
	if out, code := runCmd(t, newRestoreCmd(), "--from", filepath.Join(dir, "exists"), "--data-dir", filepath.Join(dir, "target")); code == 0 {
		t.Fatalf("a backup without a log was restored: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "target", "audit.db")); err == nil {
		t.Fatal("a refused restore wrote the target")
	}
}

func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir) {
			t.Fatalf("tar entry outside the target: %s", h.Name)
		}
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, os.FileMode(h.Mode).Perm()); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n < 4 {
		t.Fatalf("the archive holds %d files", n)
	}
}
