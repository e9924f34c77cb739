package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeLogsThroughOneHandler: with --log-format json every line
// `warden serve` writes is JSON — including the identity component's
// (an unreachable issuer) and, with WARDEN_TEST_POSTGRES, the PostgreSQL
// store's (which printed plain text before); a policy reload is exactly
// one line; and serve says when it has stopped. The PostgreSQL store runs
// in the schema audit.postgres.schema names.
func TestServeLogsThroughOneHandler(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "policy.yaml")
	const pol = "version: 1\nrules:\n  - name: a\n    when: request.path == \"/v1/models\"\n    action: allow\n"
	if err := os.WriteFile(pf, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, adm, deadIdP := freeAddr(t), freeAddr(t), freeAddr(t)
	store := ""
	if os.Getenv("WARDEN_TEST_POSTGRES") != "" {
		store = fmt.Sprintf("audit:\n  store: postgres\n  dsn: %s\n  postgres:\n    schema: logs_e2e\n    max_conns: 4\n", testDatabase(t))
	} else {
		t.Log("WARDEN_TEST_POSTGRES not set: checking the SQLite store only")
	}
	cfg := fmt.Sprintf(`listen: %s
admin_listen: %s
data_dir: %s
routes:
  - {name: openai, path_prefix: /v1/, upstream: http://127.0.0.1:9, profile: openai}
identity:
  issuers: [{issuer: "http://%s", audiences: [warden]}]
policy:
  file: %s
  watch: false
%s`, gw, adm, filepath.Join(dir, "data"), deadIdP, pf, store)
	cp := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd := exec.Command(wardenBin, "serve", "--config", cp, "--log-format", "json")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		for i := 0; i < 400; i++ {
			if ok(stderr.String()) {
				return
			}
			select {
			case err := <-exited:
				t.Fatalf("serve exited (%v) waiting for %s:\n%s", err, what, stderr.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Fatalf("no %s in:\n%s", what, stderr.String())
	}
	waitFor("readiness", func(string) bool {
		resp, err := http.Get("http://" + adm + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	waitFor("identity warning", func(s string) bool { return strings.Contains(s, "identity provider keys not refreshed") })

	if err := os.WriteFile(pf, []byte(strings.Replace(pol, "/v1/models", "/v1/other", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitFor("reload line", func(s string) bool { return strings.Contains(s, "policy reloaded") })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not stop:\n%s", stderr.String())
	}

	var msgs []string
	components := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not JSON: %q", line)
			continue
		}
		msg, _ := rec["msg"].(string)
		msgs = append(msgs, msg)
		if c, ok := rec["component"].(string); ok {
			components[c] = true
			if c == "audit.postgres" && rec["schema"] != "logs_e2e" {
				t.Errorf("audit.postgres.schema not applied: %s", line)
			}
		}
	}
	if !components["identity"] {
		t.Errorf("no JSON line from the identity component: %v", components)
	}
	if store != "" && !components["audit.postgres"] {
		t.Errorf("no JSON line from the PostgreSQL store: %v", components)
	}
	reloads := 0
	for _, m := range msgs {
		if strings.Contains(m, "policy reload") {
			reloads++
		}
	}
	if reloads != 1 {
		t.Errorf("%d log lines for one policy reload, want 1: %q", reloads, msgs)
	}
	if len(msgs) == 0 || msgs[len(msgs)-1] != "warden stopped" {
		t.Errorf("last log line is not \"warden stopped\": %q", msgs)
	}
}
