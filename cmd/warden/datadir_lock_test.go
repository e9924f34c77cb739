package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecondServeRefusesDataDir: a second `warden serve` on a data dir a
// running one holds exits 1 naming the dir and the holder's pid, while
// read-only commands (verify, keys list, backup) keep working and restore
// refuses. The lock
// goes with the process: after SIGKILL a new gateway starts on the dir.
func TestSecondServeRefusesDataDir(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgFor := func(name string) (path, admin string) {
		admin = freeAddr(t)
		cfg := fmt.Sprintf("listen: %s\nadmin_listen: %s\ndata_dir: %s\nallow_anonymous: true\nroutes:\n  - {name: r, path_prefix: /, upstream: \"http://127.0.0.1:9\"}\n", freeAddr(t), admin, data)
		path = filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path, admin
	}
	cfgA, adminA := cfgFor("a")
	a := startServe(t, cfgA, adminA)
	defer func() {
		if a.ProcessState == nil {
			_ = a.Process.Kill()
			_ = a.Wait()
		}
	}()

	cfgB, adminB := cfgFor("b")
	code, out := runWarden(t, dir, "serve", "--config", cfgB)
	if code != 1 {
		t.Fatalf("second serve: exit %d:\n%s", code, out)
	}
	for _, w := range []string{"data dir " + data + " is in use", fmt.Sprintf("pid %d", a.Process.Pid), "its own data_dir"} {
		if !strings.Contains(out, w) {
			t.Errorf("second serve's message lacks %q:\n%s", w, out)
		}
	}

	// Read-only commands work while serve holds the dir.
	if code, out := runWarden(t, dir, "verify", "--data-dir", data); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("verify while serve runs: exit %d:\n%s", code, out)
	}
	if code, out := runWarden(t, dir, "keys", "list", "--data-dir", data); code != 0 {
		t.Errorf("keys list while serve runs: exit %d:\n%s", code, out)
	}
	if code, out := runWarden(t, dir, "backup", "--data-dir", data, "--out", filepath.Join(dir, "backup")); code != 0 {
		t.Errorf("backup while serve runs: exit %d:\n%s", code, out)
	}

	// A restore would rewrite the store under the running gateway.
	code, out = runWarden(t, dir, "restore", "--from", filepath.Join(dir, "backup"), "--data-dir", data, "--force")
	if code != 2 || !strings.Contains(out, "stop the gateway first") || strings.Contains(out, "restored into") {
		t.Errorf("restore while serve runs: exit %d:\n%s", code, out)
	}

	// SIGKILL: the kernel drops the lock; the next gateway starts.
	_ = a.Process.Kill()
	_ = a.Wait()
	b := startServe(t, cfgB, adminB)
	stopServe(t, b)
}
