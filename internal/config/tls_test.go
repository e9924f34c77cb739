package config

import (
	"strings"
	"testing"
)

const tlsYAML = `listen: 0.0.0.0:8443
admin_listen: 0.0.0.0:9443
allow_anonymous: true
tls:
  cert_file: /etc/warden/tls/tls.crt
  key_file: /etc/warden/tls/tls.key
  min_version: 1.3
admin_tls:
  cert_file: /etc/warden/tls/tls.crt
  key_file: /etc/warden/tls/tls.key
  client_ca_file: /etc/warden/admin-ca/ca.crt
  client_auth: require_except_probes
routes:
  - name: openai
    path_prefix: /v1/
    upstream: https://10.0.0.7:8000
    profile: openai
    upstream_tls:
      ca_file: /etc/warden/upstream/ca.crt
      cert_file: /etc/warden/upstream/tls.crt
      key_file: /etc/warden/upstream/tls.key
      server_name: vllm.models.svc
    upstream_credential:
      value: Bearer ${WARDEN_TEST_MODEL_KEY}
`

func TestLoadTLS(t *testing.T) {
	t.Setenv("WARDEN_TEST_MODEL_KEY", "sk-test-123")
	cfg, err := Load(writeFile(t, tlsYAML))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.MinVersion != "1.3" || cfg.AdminTLS.MinVersion != "1.2" || cfg.AdminTLS.ClientAuth != "require_except_probes" {
		t.Errorf("tls sections: %+v %+v", cfg.TLS, cfg.AdminTLS)
	}
	r := cfg.Routes[0]
	if r.UpstreamTLS.ServerName != "vllm.models.svc" || r.UpstreamTLS.MinVersion != "1.2" {
		t.Errorf("upstream_tls: %+v", r.UpstreamTLS)
	}
	if r.UpstreamCredential.Header != "Authorization" || r.UpstreamCredential.Value != "Bearer sk-test-123" {
		t.Errorf("upstream_credential: header %q", r.UpstreamCredential.Header)
	}
}

// TestTLSErrors: every new key reports its file, line and key; the
// credential's value never appears in a message.
func TestTLSErrors(t *testing.T) {
	t.Setenv("WARDEN_TEST_MODEL_KEY", "sk-secret-value")
	rep := func(old, new string) string {
		if !strings.Contains(tlsYAML, old) {
			t.Fatalf("test case does not apply: %q", old)
		}
		return strings.Replace(tlsYAML, old, new, 1)
	}
	tests := []struct {
		name, yaml string
		line       int
		key, msg   string
	}{
		{"listener tls 1.1", rep("min_version: 1.3", "min_version: 1.1"), 7, "tls.min_version", "not accepted"},
		{"listener without key", rep("  key_file: /etc/warden/tls/tls.key\n  min_version", "  min_version"), 5, "tls.key_file", "is required"},
		{"unknown tls key", rep("  min_version: 1.3", "  min_versoin: 1.3"), 7, "tls.min_versoin", "unknown key"},
		{"bad client auth", rep("client_auth: require_except_probes", "client_auth: optional"), 12, "admin_tls.client_auth", "must be"},
		{"client auth without CA", rep("  client_ca_file: /etc/warden/admin-ca/ca.crt\n", ""), 11, "admin_tls.client_auth", "needs client_ca_file"},
		{"upstream_tls on http", rep("https://10.0.0.7:8000", "http://10.0.0.7:8000"), 19, "routes[0].upstream_tls", "needs an https:// upstream"},
		{"upstream cert without key", rep("      key_file: /etc/warden/upstream/tls.key\n", ""), 19, "routes[0].upstream_tls.key_file", "go together"},
		{"upstream server name with port", rep("server_name: vllm.models.svc", "server_name: vllm:443"), 22, "routes[0].upstream_tls.server_name", "without scheme or port"},
		{"credential empty", rep("value: Bearer ${WARDEN_TEST_MODEL_KEY}", "value: ${WARDEN_TEST_EMPTY:-}"), 24, "routes[0].upstream_credential.value", "is required"},
		{"credential reserved header", rep("    upstream_credential:\n", "    upstream_credential:\n      header: Host\n"), 24, "routes[0].upstream_credential.header", "set by the gateway"},
		{"credential bad header", rep("    upstream_credential:\n", "    upstream_credential:\n      header: \"X Api Key\"\n"), 24, "routes[0].upstream_credential.header", "not a valid header name"},
		{"credential unset env", rep("${WARDEN_TEST_MODEL_KEY}", "${WARDEN_TEST_UNSET_KEY}"), 24, "routes[0].upstream_credential.value", "WARDEN_TEST_UNSET_KEY is not set"},
		{"credential in URL", rep("https://10.0.0.7:8000", "https://user:pw@10.0.0.7:8000"), 16, "routes[0].upstream", "use upstream_credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.yaml)
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "sk-secret-value") {
				t.Fatalf("the credential leaked into the error: %s", msg)
			}
			want := path + ":"
			if !strings.Contains(msg, want) || !strings.Contains(msg, tt.key+": ") || !strings.Contains(msg, tt.msg) {
				t.Fatalf("got %q, want file, key %s and %q", msg, tt.key, tt.msg)
			}
			ce, ok := firstError(err)
			if !ok || ce.Line != tt.line {
				t.Errorf("line: got %+v, want %d", ce, tt.line)
			}
		})
	}
	// A value with a line break (an injected header) is refused without
	// being echoed.
	t.Setenv("WARDEN_TEST_MODEL_KEY", "sk-secret-value\r\nX-Admin: 1")
	_, err := Load(writeFile(t, tlsYAML))
	if err == nil || strings.Contains(err.Error(), "sk-secret-value") || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("header injection through the credential: %v", err)
	}
}

func firstError(err error) (*Error, bool) {
	for _, e := range flatten(err) {
		if ce, ok := e.(*Error); ok {
			return ce, true
		}
	}
	return nil, false
}
