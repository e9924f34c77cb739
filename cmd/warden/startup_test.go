package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startupBase is a config that starts: anonymous, SQLite under data/.
const startupBase = `listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: data
allow_anonymous: true
routes:
  - name: r
    path_prefix: /
    upstream: http://127.0.0.1:9
`

// runWarden runs the real binary in dir and returns its exit code and
// stderr. A panic or a hang fails the test.
func runWarden(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wardenBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("warden %s did not exit: %s", strings.Join(args, " "), stderr.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	out := stdout.String() + stderr.String()
	if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		t.Fatalf("warden %s panicked:\n%s", strings.Join(args, " "), out)
	}
	return code, out
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStartupErrorsNameTheReason: each class of start-up error found in
// the trials makes `warden serve` exit 1 with the real reason (file, line
// and key where known) and no panic, and `warden config validate` finds
// the same configuration mistakes instead of printing "ok". Mistakes in
// the configuration are refused before the data dir is created, so a
// failed start leaves no audit entry.
func TestStartupErrorsNameTheReason(t *testing.T) {
	const celTypo = "version: 1\nrules:\n  - name: a\n    when: principal.subjct == \"x\"\n    action: allow\n"
	const unknownProfile = "version: 1\nrules:\n  - name: a\n    when: \"true\"\n    action: allow\n    mask: nosuch\n"
	cases := []struct {
		name     string
		config   string
		files    map[string]string
		want     []string
		validate bool // config validate must refuse it too
	}{
		{"missing policy file", startupBase + "policy:\n  file: missing.yaml\n", nil,
			[]string{"warden.yaml:10:9: policy.file:", "cannot read the policy file", "missing.yaml", "no such file"}, true},
		{"CEL typo", startupBase + "policy:\n  file: p.yaml\n", map[string]string{"p.yaml": celTypo},
			[]string{"p.yaml:4:20:", `rule[0] "a": when:`, "undefined field 'subjct'"}, true},
		{"unknown masking profile", startupBase + "policy:\n  file: p.yaml\n", map[string]string{"p.yaml": unknownProfile},
			[]string{"p.yaml:6:11:", `rule[0] "a": mask:`, `names masking profile "nosuch"`, "defined: default"}, true},
		{"malformed policy YAML", startupBase + "policy:\n  file: p.yaml\n", map[string]string{"p.yaml": "rules:  ! \n"},
			[]string{"p.yaml:1:9:", "tags are not supported"}, true},
		{"config type error", startupBase + "timeouts:\n  idle: 5\n", nil,
			[]string{"warden.yaml:10:9: timeouts.idle:", "expected a duration with a unit"}, true},
		{"listen host does not resolve", strings.Replace(startupBase, "listen: 127.0.0.1:0", "listen: nosuchhost.invalid:8080", 1), nil,
			[]string{"warden.yaml:1:9: listen:", `host "nosuchhost.invalid" does not resolve`}, true},
		{"PostgreSQL unreachable", startupBase + "audit:\n  store: postgres\n  dsn: postgres://warden:s3cretpw@127.0.0.1:1/warden?sslmode=disable&connect_timeout=5\n", nil,
			[]string{"warden.yaml:11:8: audit.dsn:", "audit store", "connection refused"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			writeFiles(t, dir, map[string]string{"warden.yaml": tc.config})
			code, out := runWarden(t, dir, "serve", "--config", "warden.yaml")
			if code != 1 {
				t.Fatalf("serve exit %d, want 1:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("serve output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "s3cretpw") {
				t.Errorf("serve printed the DSN password:\n%s", out)
			}
			if !tc.validate {
				return
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused configuration created the data dir (err %v)", err)
			}
			code, out = runWarden(t, dir, "config", "validate", "warden.yaml")
			if code != 1 || strings.Contains(out, ": ok") {
				t.Fatalf("config validate exit %d:\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("config validate output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// startupDir writes startupBase into a new directory (data dir dir/data,
// admin on a free port) and returns the directory, the admin address and
// the config written.
func startupDir(t *testing.T) (dir, admin, cfg string) {
	t.Helper()
	dir = t.TempDir()
	admin = freeAddr(t)
	cfg = strings.Replace(startupBase, "admin_listen: 127.0.0.1:0", "admin_listen: "+admin, 1)
	cfg = strings.Replace(cfg, "data_dir: data", "data_dir: "+filepath.Join(dir, "data"), 1)
	writeFiles(t, dir, map[string]string{"warden.yaml": cfg})
	return dir, admin, cfg
}

// TestStartupRefusesTamperedStore: a store that fails verification stops
// the start with exit 1, the store's file and the divergence.
func TestStartupRefusesTamperedStore(t *testing.T) {
	dir, admin, _ := startupDir(t)
	stopServe(t, startServe(t, filepath.Join(dir, "warden.yaml"), admin))
	db := filepath.Join(dir, "data", "audit.db")
	replaceInRecord(t, db, 0, "gateway", "gatewaX")
	code, out := runWarden(t, dir, "serve", "--config", "warden.yaml")
	if code != 1 {
		t.Fatalf("serve on a tampered store: exit %d:\n%s", code, out)
	}
	for _, w := range []string{"audit store " + db, "does not verify", "entry 0"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestConfigValidateOK: a config whose policy loads and names a defined
// profile (or mask: none, which is no profile) validates, and validating
// creates nothing.
func TestConfigValidateOK(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"warden.yaml": startupBase + "policy:\n  file: p.yaml\nmasking:\n  profiles:\n    strict: {}\n",
		"p.yaml":      "version: 1\nrules:\n  - name: a\n    when: \"true\"\n    action: allow\n    mask: strict\n  - name: b\n    when: \"true\"\n    action: allow\n    mask: none\n",
	})
	code, out := runWarden(t, dir, "config", "validate", "warden.yaml")
	if code != 0 || !strings.Contains(out, "warden.yaml: ok") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("config validate created the data dir (err %v)", err)
	}
}
