package deploytest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitFile = "../systemd/warden.service"

// unit parses a systemd unit file into section -> key -> values.
func unit(t *testing.T) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			sec = l[1 : len(l)-1]
			u[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("%s: malformed line %q", unitFile, l)
			}
			u[sec][k] = append(u[sec][k], v)
		}
	}
	return u
}

// TestSystemdUnitHardened: the unit runs Warden unprivileged, with its
// state in StateDirectory, a read-only system, no new privileges, a
// restart policy and a stop timeout above drain + shutdown.
func TestSystemdUnitHardened(t *testing.T) {
	u := unit(t)
	svc := u["Service"]
	for k, want := range map[string]string{
		"DynamicUser": "yes", "StateDirectory": "warden", "StateDirectoryMode": "0700",
		"ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "Restart": "on-failure", "CapabilityBoundingSet": "", "UMask": "0077",
		"RestrictSUIDSGID": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
		"KillSignal": "SIGTERM",
	} {
		if got := svc[k]; len(got) != 1 || got[0] != want {
			t.Errorf("[Service] %s=%q, want %q", k, got, want)
		}
	}
	if got := svc["ExecStart"]; len(got) != 1 || !strings.Contains(got[0], "warden serve --config /etc/warden/warden.yaml") {
		t.Errorf("ExecStart %q", got)
	}
	if got := svc["ExecReload"]; len(got) != 1 || !strings.Contains(got[0], "-HUP $MAINPID") {
		t.Errorf("ExecReload %q: want SIGHUP (policy reload)", got)
	}
	if got := svc["SystemCallFilter"]; len(got) < 2 || got[0] != "@system-service" {
		t.Errorf("SystemCallFilter %q", got)
	}
	// Drain: the chart's defaults (drain 10s + shutdown 30s) must fit.
	stop, err := time.ParseDuration(strings.Join(svc["TimeoutStopSec"], ""))
	if err != nil || stop <= 40*time.Second {
		t.Errorf("TimeoutStopSec %q must exceed drain_delay + shutdown (40s)", svc["TimeoutStopSec"])
	}
	if u["Install"]["WantedBy"][0] != "multi-user.target" {
		t.Errorf("WantedBy %q", u["Install"]["WantedBy"])
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestSystemdAnalyze: `systemd-analyze verify` accepts the unit (with
// ExecStart pointed at an existing binary) and `systemd-analyze security`
// rates its exposure at most 2.0 ("OK"). Skipped where systemd-analyze is
// missing, unless WARDEN_TEST_REQUIRE_SYSTEMD_ANALYZE is set (CI).
func TestSystemdAnalyze(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("WARDEN_TEST_REQUIRE_SYSTEMD_ANALYZE") != "" {
			t.Fatal("systemd-analyze is required (WARDEN_TEST_REQUIRE_SYSTEMD_ANALYZE) but not installed")
		}
		t.Skip("systemd-analyze not installed (apt-get install systemd); the unit's syntax is not checked by systemd")
	}
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "warden.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/warden", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", p).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", "--no-pager", p).CombinedOutput()
	m := exposure.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Fatalf("exposure level %s, want at most 2.0:\n%s", m[1], out)
	}
}
