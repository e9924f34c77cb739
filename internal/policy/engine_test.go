package policy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const policyV1 = `version: 1
rules:
  - name: users
    when: principal.in_group("ml-users")
    action: allow
`

const policyV2 = `version: 1
rules:
  - name: admins
    when: principal.in_group("ml-admins")
    action: allow
`

const policyBad = `version: 1
rules:
  - name: admins
    when: principal.in_group(1)
    action: allow
`

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes data the way editors do: a temporary file renamed
// over the original.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp~"
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newTestEngine(t *testing.T, content string) (*Engine, string, chan Change) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, content)
	e, err := NewEngine(path, WithLogger(quietLogger()), WithDebounce(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan Change, 16)
	e.OnChange(func(c Change) { ch <- c })
	return e, path, ch
}

// waitChange waits for a change; the bound only turns a hang into a
// failure, it is not a performance threshold.
func waitChange(t *testing.T, ch chan Change, want func(Change) bool) Change {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case c := <-ch:
			if want(c) {
				return c
			}
		case <-deadline:
			t.Fatal("no matching policy change observed")
		}
	}
}

func TestNewEngineRefusesBadPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	writeFile(t, path, policyBad)
	if _, err := NewEngine(path); err == nil || !strings.Contains(err.Error(), `rule[0] "admins"`) {
		t.Fatalf("NewEngine with a bad policy: %v", err)
	}
	if _, err := NewEngine(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("NewEngine with a missing file succeeded")
	}
}

func TestReloadChangeCarriesBothVersions(t *testing.T) {
	e, path, ch := newTestEngine(t, policyV1)
	v1 := e.Current().Version()
	writeFile(t, path, policyV2)
	c, err := e.Reload("admin:carol")
	if err != nil {
		t.Fatal(err)
	}
	v2 := e.Current().Version()
	if v1 == v2 || c.Old != v1 || c.New != v2 || c.Actor != "admin:carol" || !c.Changed() || c.At.IsZero() {
		t.Fatalf("change = %+v, v1 %s v2 %s", c, v1, v2)
	}
	if got := <-ch; got.Old != v1 || got.New != v2 {
		t.Fatalf("callback change = %+v", got)
	}
	// Same content again: no callback.
	if c, err := e.Reload("sighup"); err != nil || c.Changed() {
		t.Fatalf("no-op reload: %+v %v", c, err)
	}
	select {
	case c := <-ch:
		t.Fatalf("callback for a no-op reload: %+v", c)
	default:
	}
}

func TestFailedReloadKeepsOldPolicy(t *testing.T) {
	e, path, ch := newTestEngine(t, policyV1)
	before := e.Current()
	writeFile(t, path, policyBad)
	c, err := e.Reload("sighup")
	if err == nil {
		t.Fatal("reload of a bad policy succeeded")
	}
	if e.Current() != before {
		t.Fatal("failed reload replaced the policy")
	}
	if c.Err == nil || c.Old != before.Version() || c.New != before.Version() || c.Changed() {
		t.Fatalf("change = %+v", c)
	}
	if got := <-ch; got.Err == nil || got.Actor != "sighup" {
		t.Fatalf("callback change = %+v", got)
	}
	// The old policy still decides.
	if d := e.Current().Decide(&Input{Principal: alice()}); d.Action != ActionAllow || d.Rule != "users" {
		t.Fatalf("decision after failed reload: %+v", d)
	}
}

// TestReloadMalformedYAMLKeepsOldPolicy: a file that crashes the YAML
// library (`rules:  ! `) fails the reload; it does not take the process
// down, and the previous policy keeps deciding.
func TestReloadMalformedYAMLKeepsOldPolicy(t *testing.T) {
	e, path, ch := newTestEngine(t, policyV1)
	before := e.Current()
	for _, bad := range []string{"rules:  ! \n", "version: 1\nrules:  ! \n", "version: 1\nrules: !00\n  - x\n"} {
		writeFile(t, path, bad)
		if _, err := e.Reload("sighup"); err == nil || !strings.Contains(err.Error(), "tags are not supported") {
			t.Fatalf("reload of %q: %v", bad, err)
		}
		if got := <-ch; got.Err == nil {
			t.Fatalf("callback change = %+v", got)
		}
		if e.Current() != before {
			t.Fatal("failed reload replaced the policy")
		}
	}
}

func TestWatchReloadsOnFileChange(t *testing.T) {
	e, path, ch := newTestEngine(t, policyV1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	v1 := e.Current().Version()

	// Editor-style rename over the file.
	replaceFile(t, path, policyV2)
	c := waitChange(t, ch, func(c Change) bool { return c.Changed() })
	if c.Actor != "file-watch" || c.Old != v1 || c.New != e.Current().Version() {
		t.Fatalf("change = %+v", c)
	}
	v2 := c.New

	// A broken write is reported and does not replace the policy.
	writeFile(t, path, policyBad)
	c = waitChange(t, ch, func(c Change) bool { return c.Err != nil })
	if e.Current().Version() != v2 || c.Old != v2 {
		t.Fatalf("after broken write: current %s, change %+v", e.Current().Version(), c)
	}

	// In-place write back to v1.
	writeFile(t, path, policyV1)
	c = waitChange(t, ch, func(c Change) bool { return c.Changed() })
	if c.New != v1 || e.Current().Version() != v1 {
		t.Fatalf("change = %+v", c)
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	e, path, ch := newTestEngine(t, policyV1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.ReloadOnSignal(ctx, syscall.SIGHUP)
	v1 := e.Current().Version()
	writeFile(t, path, policyV2)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	c := waitChange(t, ch, func(c Change) bool { return c.Changed() })
	if c.Actor != "sighup" || c.Old != v1 || c.New != e.Current().Version() {
		t.Fatalf("change = %+v", c)
	}
}

func TestConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	if !c.WatchEnabled() || c.Debounce <= 0 {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "file: is required") {
		t.Fatalf("validate: %v", err)
	}
	c.File = "policy.yaml"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRejectsPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyV1)
	noAdmins := func(p *Policy) error {
		for _, r := range p.Rules() {
			if r.Name == "admins" {
				return errors.New("rule admins is not allowed here")
			}
		}
		return nil
	}
	e, err := NewEngine(path, WithLogger(quietLogger()), WithCheck(noAdmins))
	if err != nil {
		t.Fatal(err)
	}
	before := e.Current()
	writeFile(t, path, policyV2) // loads, but fails the check
	if _, err := e.Reload("sighup"); err == nil || !strings.Contains(err.Error(), "rule admins is not allowed") {
		t.Fatalf("reload: %v", err)
	}
	if e.Current() != before {
		t.Fatal("a policy failing the check was installed")
	}
	if _, err := NewEngine(path, WithCheck(noAdmins)); err == nil {
		t.Fatal("NewEngine accepted a policy failing the check")
	}
}

// TestWatchFollowsConfigMapSwap mimics how Kubernetes updates a mounted
// ConfigMap: the file is a symlink through "..data", which is swapped
// atomically to a new directory.
func TestWatchFollowsConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	mk := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "policy.yaml"), content)
	}
	mk("..2026_01", policyV1)
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "policy.yaml")
	if err := os.Symlink(filepath.Join("..data", "policy.yaml"), path); err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(path, WithLogger(quietLogger()), WithDebounce(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan Change, 16)
	e.OnChange(func(c Change) { ch <- c })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	v1 := e.Current().Version()

	mk("..2026_02", policyV2)
	if err := os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	c := waitChange(t, ch, func(c Change) bool { return c.Changed() })
	if c.Old != v1 || c.New == v1 || c.Actor != "file-watch" {
		t.Fatalf("change = %+v", c)
	}
}
