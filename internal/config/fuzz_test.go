package config

import (
	"os"
	"testing"
)

// FuzzParse: no configuration file makes Parse panic; every refusal is a
// located *Error (or several joined).
func FuzzParse(f *testing.F) {
	f.Add([]byte(validYAML))
	f.Add([]byte(validYAML + "timeouts:  ! \n"))
	f.Add([]byte(validYAML + "timeouts: {idle: 5}\nlimits: {max_request_body: 2MiB}\n"))
	f.Add([]byte(validYAML + "identity:\n  issuers:\n    - issuer: https://idp\n      audiences: [w]\n  api_keys: {enabled: true}\n"))
	f.Add([]byte(validYAML + "policy: {file: p.yaml}\nmasking:\n  profiles:\n    strict: {entities: [EMAIL_ADDRESS]}\n"))
	f.Add([]byte(validYAML + "audit:\n  store: postgres\n  dsn: ${DSN:-postgres://x}\n"))
	if b, err := os.ReadFile("../../examples/warden.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config without error")
		}
	})
}
