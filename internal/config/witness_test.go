package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// A cosignature/v1 verifier key (type 0x04) and a plain note key (0x01).
const (
	witnessKey = "witness.example/w1+1f8858e6+BFIfGQPqonA3xYlOmmgh8M3PCdKrP0OCAITnlc4VDAV8"
	plainKey   = "witness.example/w1+3cb80a4f+AVIfGQPqonA3xYlOmmgh8M3PCdKrP0OCAITnlc4VDAV8"
)

func TestWitnessConfig(t *testing.T) {
	y := validYAML + `audit:
  witnesses:
    - url: https://witness-a.example/
      key: ` + witnessKey + `
      timeout: 3s
  witnessing:
    submit: interval
    interval: 30s
`
	cfg, err := Load(writeFile(t, y))
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Audit.Witnesses[0]
	if w.Name != "witness.example/w1" || w.Timeout != 3*time.Second || w.URL != "https://witness-a.example/" {
		t.Fatalf("witness = %+v (name defaults to the key's name)", w)
	}
	p := cfg.Audit.Witnessing
	if p.Submit != "interval" || p.Interval != 30*time.Second || !strings.HasSuffix(p.CosignedFile, "audit.cosigned") || !p.StartCheckOn() {
		t.Fatalf("witnessing = %+v", p)
	}
}

// TestWitnessConfigErrors: every error names the key and its line.
func TestWitnessConfigErrors(t *testing.T) {
	base := validYAML + "audit:\n  witnesses:\n    - name: a\n      url: https://w.example/\n      key: " + witnessKey + "\n"
	tests := []struct {
		name, yaml string
		line       int
		key, msg   string
	}{
		{"plain note key", strings.Replace(base, witnessKey, plainKey, 1), 13, "audit.witnesses[0].key", "plain Ed25519 note key (type 0x01)"},
		{"mangled key", strings.Replace(base, "+1f8858e6+", "+1f8858e7+", 1), 13, "audit.witnesses[0].key", "does not match the key"},
		{"missing url", strings.Replace(base, "      url: https://w.example/\n", "", 1), 11, "audit.witnesses[0].url", "is required"},
		{"bad url", strings.Replace(base, "https://w.example/", "w.example", 1), 12, "audit.witnesses[0].url", "http:// or https://"},
		{"credentials in url", strings.Replace(base, "https://w.example/", "https://u:p@w.example/", 1), 12, "audit.witnesses[0].url", "credentials"},
		{"unknown key", base + "      timeot: 5s\n", 14, "audit.witnesses[0].timeot", "unknown key"},
		{"duplicate", base + "    - name: a\n      url: https://x.example/\n      key: " + witnessKey + "\n", 16, "audit.witnesses[1].key", "listed twice"},
		{"bad submit", base + "  witnessing:\n    submit: sometimes\n", 15, "audit.witnessing.submit", "every_checkpoint or interval"},
		{"bad interval", base + "  witnessing:\n    interval: -1s\n", 15, "audit.witnessing.interval", "must be > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.yaml))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *config.Error", err)
			}
			msg := err.Error()
			if ce.Key != tt.key || ce.Line != tt.line || !strings.Contains(msg, tt.msg) {
				t.Fatalf("got key %q line %d: %s\nwant key %q line %d containing %q", ce.Key, ce.Line, msg, tt.key, tt.line, tt.msg)
			}
		})
	}
}
