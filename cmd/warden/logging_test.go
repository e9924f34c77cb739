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

// loggedServe is a `warden serve` whose stderr the test reads.
type loggedServe struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan error
}

// startLogged starts `warden serve --config cfg args...` and waits for
// /readyz on admin; the process is killed when the test ends.
func startLogged(t *testing.T, cfg, admin string, args ...string) *loggedServe {
	t.Helper()
	sv := &loggedServe{t: t, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	sv.cmd = exec.Command(wardenBin, append([]string{"serve", "--config", cfg}, args...)...)
	sv.cmd.Stderr = sv.stderr
	if err := sv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { sv.exited <- sv.cmd.Wait() }()
	t.Cleanup(func() {
		if sv.cmd.ProcessState == nil {
			_ = sv.cmd.Process.Kill()
		}
	})
	sv.waitFor("readiness", func(string) bool { return readyz(admin) == 200 })
	return sv
}

// waitFor polls ok on the log so far for up to 20 s; the process exiting
// meanwhile fails the test.
func (sv *loggedServe) waitFor(what string, ok func(log string) bool) {
	sv.t.Helper()
	for i := 0; i < 400; i++ {
		if ok(sv.stderr.String()) {
			return
		}
		select {
		case err := <-sv.exited:
			sv.t.Fatalf("serve exited (%v) waiting for %s:\n%s", err, what, sv.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	sv.t.Fatalf("no %s in:\n%s", what, sv.stderr.String())
}

func readyz(admin string) int {
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMalformedPolicyReloadKeepsServing: a policy file that crashed the
// YAML library (`rules:  ! `) no longer takes the running gateway down on
// SIGHUP or a file-watch reload: the reload fails with the file and line,
// the previous policy keeps deciding, the gateway stays ready.
func TestMalformedPolicyReloadKeepsServing(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte("version: 1\nrules:\n  - name: a\n    when: \"true\"\n    action: deny\n    reason: closed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf("listen: %s\nadmin_listen: %s\ndata_dir: %s\nallow_anonymous: true\nroutes:\n  - {name: r, path_prefix: /, upstream: \"http://127.0.0.1:9\"}\npolicy:\n  file: %s\n  debounce: 50ms\n", gw, adm, filepath.Join(dir, "data"), pf)
	cp := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sv := startLogged(t, cp, adm)
	if err := os.WriteFile(pf, []byte("rules:  ! \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = sv.cmd.Process.Signal(syscall.SIGHUP)
	sv.waitFor("failed reload", func(s string) bool {
		return strings.Count(s, "policy reload failed") >= 1 && strings.Contains(s, "policy.yaml:1:9: YAML tags are not supported")
	})
	resp, err := http.Get("http://" + gw + "/v1/models")
	if err != nil {
		t.Fatalf("gateway gone after a malformed reload: %v\n%s", err, sv.stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || readyz(adm) != 200 {
		t.Fatalf("after a malformed reload: /v1/models %d, /readyz %d", resp.StatusCode, readyz(adm))
	}
	if s := sv.stderr.String(); strings.Contains(s, "panic") {
		t.Fatalf("panic in the log:\n%s", s)
	}
}

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
	sv := startLogged(t, cp, adm, "--log-format", "json")
	cmd, stderr, exited := sv.cmd, sv.stderr, sv.exited
	waitFor := sv.waitFor
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
