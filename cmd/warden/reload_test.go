package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPolicyReloadOnSIGHUP: with file watching off, editing the policy
// changes nothing until SIGHUP; then the new rules apply and the change is
// in the audit log as config.changed with both versions and the actor. A
// broken edit is refused and the old policy stays in force.
func TestPolicyReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	issuer, idpURL, upURL := startIssuer(t)

	allowModels := `version: 1
rules:
  - name: models
    when: request.path == "/v1/models"
    action: allow
  - name: auditors
    when: request.path == "/never"
    action: allow
`
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(allowModels), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`listen: %s
admin_listen: %s
data_dir: %s
routes:
  - {name: openai, path_prefix: /v1/, upstream: %s, profile: openai}
identity:
  issuers: [{issuer: %s, audiences: [warden]}]
policy:
  file: %s
  watch: false
`, gw, adm, filepath.Join(dir, "data"), upURL, idpURL, pf)
	cp := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := startServe(t, cp, adm)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	alice, carol := token(t, issuer, "alice"), token(t, issuer, "carol")
	get := func(addr, path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if st, _ := get(gw, "/v1/models", alice); st != 200 {
		t.Fatalf("before: /v1/models %d", st)
	}
	// Edit: models now denied. Nothing changes until SIGHUP.
	if err := os.WriteFile(pf, []byte(strings.Replace(allowModels, "action: allow\n  - name: auditors", "action: deny\n    reason: closed\n  - name: auditors", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, _ := get(gw, "/v1/models", alice); st != 200 {
		t.Fatalf("policy changed without SIGHUP (watch is off): %d", st)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	var st int
	for i := 0; i < 100; i++ {
		if st, _ = get(gw, "/v1/models", alice); st == 403 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st != 403 {
		t.Fatalf("after SIGHUP: /v1/models %d, want 403", st)
	}
	// A broken policy is refused; the previous one stays.
	if err := os.WriteFile(pf, []byte("version: 1\nrules:\n  - name: x\n    when: request.nope ==\n    action: allow\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	var body string
	for i := 0; i < 100; i++ {
		_, body = get(adm, "/v1/audit/entries?kind=config.changed", carol)
		if strings.Count(body, `"kind":"config.changed"`) >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st, _ := get(gw, "/v1/models", alice); st != 403 {
		t.Fatalf("a broken policy changed the decision: %d", st)
	}
	for _, want := range []string{`"actor":"sighup"`, `"old_version":"sha256:`, `"new_version":"sha256:`, `"applied":true`, `"applied":false`} {
		if !strings.Contains(body, want) {
			t.Errorf("config.changed entries lack %s:\n%s", want, body)
		}
	}
}
