package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validYAML = `listen: 127.0.0.1:8080
admin_listen: 127.0.0.1:9090
allow_anonymous: true
routes:
  - name: openai
    path_prefix: /v1/
    upstream: http://127.0.0.1:8000
    profile: openai
`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "warden.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadValid(t *testing.T) {
	cfg, err := Load(writeFile(t, validYAML+"limits:\n  max_request_body: 2MiB\ntimeouts:\n  upstream_header: 3s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Limits.MaxRequestBody != 2<<20 || cfg.Timeouts.UpstreamHeader != 3*time.Second {
		t.Errorf("limits/timeouts not decoded: %+v %+v", cfg.Limits, cfg.Timeouts)
	}
	if cfg.Timeouts.Shutdown != 30*time.Second || cfg.DataDir != "./warden-data" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

// TestLoadErrors has one case per class of error; each message must name
// the key and the line.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		wantLine int
		wantKey  string
		wantMsg  string
	}{
		{"unknown key", validYAML + "timeouts:\n  upstream_headr: 5s\n", 10, "timeouts.upstream_headr", `unknown key "upstream_headr"`},
		{"unknown nested key", strings.Replace(validYAML, "    profile: openai", "    profil: openai", 1), 8, "routes[0].profil", "unknown key"},
		{"wrong type", validYAML + "upstream_pool:\n  max_idle_per_host: lots\n", 10, "upstream_pool.max_idle_per_host", `expected an integer, got the string "lots"`},
		{"bad duration", validYAML + "timeouts:\n  idle: 5 minutes\n", 10, "timeouts.idle", `expected a duration with a unit (30s, 5m, 1h), got "5 minutes"`},
		// The trials saw "cannot unmarshal uint64 into Go struct field
		// Config.Timeouts of type time.Duration" here.
		{"bare number duration", validYAML + "timeouts:\n  idle: 5\n", 10, "timeouts.idle", "expected a duration with a unit (30s, 5m, 1h), got the number 5 (a bare number has no unit: write e.g. 5s)"},
		{"quoted number duration", validYAML + "timeouts:\n  shutdown: \"5\"\n", 10, "timeouts.shutdown", `expected a duration with a unit (30s, 5m, 1h), got "5"`},
		{"list as duration", validYAML + "timeouts:\n  idle: [1]\n", 10, "timeouts.idle", "expected a duration with a unit (30s, 5m, 1h), got a list"},
		{"scalar as section", validYAML + "timeouts: 5\n", 9, "timeouts", "expected a mapping (key: value lines), got a number"},
		{"mapping as list", validYAML + "identity:\n  issuers: {a: b}\n", 10, "identity.issuers", "expected a list, got a mapping"},
		{"string as bool", validYAML + "audit:\n  enabled: yes\n", 10, "audit.enabled", `expected true or false, got the string "yes"`},
		{"out of range", validYAML + "upstream_pool:\n  max_idle_per_host: 99999999999999999999\n", 10, "upstream_pool.max_idle_per_host", "99999999999999999999 is out of range for an integer"},
		{"list as size", validYAML + "limits:\n  max_request_body: [1]\n", 10, "limits.max_request_body", "expected a size such as 512KiB or 10MiB, got a list"},
		{"bad size", validYAML + "limits:\n  max_request_body: ten\n", 10, "limits.max_request_body", "invalid size"},
		{"missing upstream", strings.Replace(validYAML, "    upstream: http://127.0.0.1:8000\n", "", 1), 5, "routes[0].upstream", "is required"},
		{"bad URL", strings.Replace(validYAML, "http://127.0.0.1:8000", "127.0.0.1:8000", 1), 7, "routes[0].upstream", "http:// or https://"},
		{"bad URL scheme", strings.Replace(validYAML, "http://127.0.0.1:8000", "ftp://x", 1), 7, "routes[0].upstream", "http:// or https://"},
		{"bad profile", strings.Replace(validYAML, "profile: openai", "profile: grpc", 1), 8, "routes[0].profile", "must be"},
		{"prefix not normalised", strings.Replace(validYAML, "path_prefix: /v1/", "path_prefix: /v1/../", 1), 6, "routes[0].path_prefix", "normalised"},
		{"same listeners", strings.Replace(validYAML, "127.0.0.1:9090", "127.0.0.1:8080", 1), 2, "admin_listen", "must differ"},
		{"missing env", strings.Replace(validYAML, "http://127.0.0.1:8000", "${WARDEN_TEST_UNSET_VAR}", 1), 7, "routes[0].upstream", "WARDEN_TEST_UNSET_VAR is not set"},
		{"no routes", "listen: 127.0.0.1:8080\nallow_anonymous: true\n", 0, "routes", "at least one route"},
		{"no identity", strings.Replace(validYAML, "allow_anonymous: true\n", "", 1), 0, "identity", "is required"},
		{"identity section error", validYAML + "identity:\n  issuers:\n    - issuer: http://idp.example.com\n      audiences: [warden]\n", 11, "identity.issuers[0].issuer", ""},
		{"identity unknown key", validYAML + "identity:\n  isuers: []\n", 10, "identity.isuers", "unknown key"},
		{"recordings mode", validYAML + "recordings:\n  mode: sometimes\n", 10, "recordings.mode", "strict or best_effort"},
		{"recordings default", validYAML + "recordings:\n  default: everything\n", 10, "recordings.default", "off, metadata or full"},
		{"recordings unknown key", validYAML + "recordings:\n  retension: 1h\n", 10, "recordings.retension", "unknown key"},
		{"policy missing file", validYAML + "policy:\n  watch: true\n", 10, "policy.file", "is required"},
		{"audit bad store", validYAML + "audit:\n  store: mysql\n", 10, "audit.store", "sqlite or postgres"},
		{"postgres pool too small", validYAML + "audit:\n  store: postgres\n  dsn: postgres://db/w\n  postgres:\n    max_conns: 1\n", 13, "audit.postgres.max_conns", "at least 2"},
		{"postgres bad schema", validYAML + "audit:\n  store: postgres\n  dsn: postgres://db/w\n  postgres:\n    schema: Bad-Name\n", 13, "audit.postgres.schema", "lowercase"},
		{"postgres dsn in the wrong place", validYAML + "audit:\n  store: postgres\n  postgres:\n    dsn: postgres://db/w\n", 12, "audit.postgres.dsn", "unknown key"},
		{"export bad sink type", validYAML + "export:\n  sinks:\n    - name: siem\n      type: carrier-pigeon\n", 12, "export.sinks[0].type", "must be file, syslog"},
		{"export bad syslog address", validYAML + "export:\n  sinks:\n    - name: siem\n      type: syslog\n      syslog: {address: nohost}\n", 13, "export.sinks[0].syslog.address", "host:port"},
		{"export bad filter", validYAML + "export:\n  sinks:\n    - name: f\n      type: file\n      filter: 'entry.kind +'\n      file: {path: /tmp/x.jsonl}\n", 13, "export.sinks[0].filter", "filter"},
		{"export bad cursor", validYAML + "export:\n  cursor: redis\n", 10, "export.cursor", "store or file"},
		{"export without audit", validYAML + "audit:\n  enabled: false\nexport:\n  sinks:\n    - {name: f, type: file, file: {path: /tmp/x.jsonl}}\n", 0, "export.sinks", "need the audit log"},
		{"export file cursor with postgres", validYAML + "audit:\n  store: postgres\n  dsn: postgres://x/y\nexport:\n  cursor: file\n", 13, "export.cursor", "every replica"},
		{"syntax", "listen: [\n", 1, "", ""},
		// goccy/go-yaml v1.19.2 panics on a tag with no value.
		{"empty tag", validYAML + "timeouts:  ! \n", 9, "timeouts", "tags are not supported"},
		{"tag on a list", strings.Replace(validYAML, "routes:", "routes: !00", 1), 4, "routes", "tags are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.yaml)
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *config.Error: %v", err, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path) {
				t.Errorf("message does not name the file: %s", msg)
			}
			if tt.wantLine > 0 && ce.Line != tt.wantLine {
				t.Errorf("line %d, want %d: %s", ce.Line, tt.wantLine, msg)
			}
			if tt.wantKey != "" && ce.Key != tt.wantKey {
				t.Errorf("key %q, want %q: %s", ce.Key, tt.wantKey, msg)
			}
			if !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", msg, tt.wantMsg)
			}
			for _, internal := range []string{"Go struct", "Go value", "interface {}", "Unmarshaler", "uint64", "time.Duration"} {
				if strings.Contains(msg, internal) {
					t.Errorf("message shows Go internals (%q): %s", internal, msg)
				}
			}
		})
	}
}

// TestPostgresSettings: the PostgreSQL store's schema, pool size and
// timeouts are reachable from YAML, with their defaults when absent.
func TestPostgresSettings(t *testing.T) {
	cfg, err := Load(writeFile(t, validYAML+`audit:
  store: postgres
  dsn: postgres://warden@db.internal/warden
  postgres:
    schema: gw_prod
    max_conns: 32
    write_timeout: 2s
    connect_timeout: 3s
    poll_interval: 250ms
`))
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.Audit.PostgresConfig()
	if pc.DSN != "postgres://warden@db.internal/warden" || pc.Schema != "gw_prod" || pc.MaxConns != 32 ||
		pc.WriteTimeout != 2*time.Second || pc.ConnectTimeout != 3*time.Second || pc.PollInterval != 250*time.Millisecond {
		t.Errorf("postgres settings not decoded: %+v", pc)
	}
	cfg, err = Load(writeFile(t, validYAML+"audit:\n  store: postgres\n  dsn: postgres://db/w\n"))
	if err != nil {
		t.Fatal(err)
	}
	if pc := cfg.Audit.PostgresConfig(); pc.Schema != "warden" || pc.MaxConns != 8 || pc.WriteTimeout != 5*time.Second || pc.ConnectTimeout != 5*time.Second {
		t.Errorf("postgres defaults: %+v", pc)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("WARDEN_TEST_UPSTREAM", "http://10.0.0.1:9000")
	y := strings.Replace(validYAML, "http://127.0.0.1:8000", "${WARDEN_TEST_UPSTREAM}", 1) +
		"data_dir: ${WARDEN_TEST_NO_SUCH_DIR:-/var/lib/warden}\n"
	cfg, err := Load(writeFile(t, y))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routes[0].Upstream != "http://10.0.0.1:9000" || cfg.DataDir != "/var/lib/warden" {
		t.Errorf("expansion: %q %q", cfg.Routes[0].Upstream, cfg.DataDir)
	}
	// A value with YAML syntax in it stays a plain string.
	t.Setenv("WARDEN_TEST_UPSTREAM", "http://x:1\nadmin_listen: 0.0.0.0:1")
	if _, err := Load(writeFile(t, y)); err == nil || !strings.Contains(err.Error(), "routes[0].upstream") {
		t.Errorf("injected value was not contained in its key: %v", err)
	}
}

func TestExampleConfigValid(t *testing.T) {
	if _, err := Load("../../examples/warden.yaml"); err != nil {
		t.Fatalf("examples/warden.yaml: %v", err)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"10MiB": 10 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30, "5MB": 5e6, "100": 100, "7B": 7} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5MiB", "ten"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
