package configs

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestStagesRender(t *testing.T) {
	d := Data{
		Listen: "127.0.0.1:1", AdminListen: "127.0.0.1:2", DataDir: "/tmp/d",
		Upstream: "http://127.0.0.1:3", IssuerURL: "http://127.0.0.1:4", PolicyFile: "/tmp/p.yaml",
		AuditOff: true, NATSURL: "nats://127.0.0.1:5", NATSStream: "S", NATSSubject: "s",
	}
	// Which top-level sections each stage must have: each adds one.
	want := map[string][]string{
		"warden-passthrough": {"allow_anonymous", "audit"},
		"warden-identity":    {"identity", "audit"},
		"warden-policy":      {"identity", "policy", "audit"},
		"warden-masking":     {"identity", "policy", "masking", "audit"},
		"warden-full":        {"identity", "policy", "masking", "audit"},
		RecordingStage:       {"identity", "policy", "masking", "audit", "recordings"},
		"warden-full+export": {"identity", "policy", "masking", "audit", "export"},
	}
	for _, st := range Stages {
		t.Run(st.Name, func(t *testing.T) {
			b, err := Render(st.Config, d)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := yaml.UnmarshalWithOptions(b, &m, yaml.Strict()); err != nil {
				t.Fatalf("not YAML: %v\n%s", err, b)
			}
			for _, k := range []string{"listen", "admin_listen", "data_dir", "routes"} {
				if _, ok := m[k]; !ok {
					t.Errorf("missing %s", k)
				}
			}
			for _, k := range want[st.Name] {
				if _, ok := m[k]; !ok {
					t.Errorf("missing %s", k)
				}
			}
			if len(m) != 7+len(want[st.Name]) {
				t.Errorf("%d top-level keys, want the 7 common ones + %v", len(m), want[st.Name])
			}
			audit, _ := m["audit"].(map[string]any)
			if got, wantOn := audit["enabled"], st.Audit; got != wantOn {
				t.Errorf("audit.enabled = %v, want %v", got, wantOn)
			}
			if st.Policy != "" {
				p, err := Render(st.Policy, d)
				if err != nil {
					t.Fatal(err)
				}
				var pol struct {
					Version int
					Rules   []struct{ Name, When, Action, Mask string }
				}
				if err := yaml.Unmarshal(p, &pol); err != nil || pol.Version != 1 || len(pol.Rules) == 0 {
					t.Fatalf("policy: %v %+v", err, pol)
				}
				last := pol.Rules[len(pol.Rules)-1]
				if wantMask := st.Masking; (last.Mask == "default") != wantMask {
					t.Errorf("allow rule mask = %q, masking stage %v", last.Mask, wantMask)
				}
			}
		})
	}
	d.AuditOff = false
	b, _ := Render("warden-passthrough.yaml.tmpl", d)
	if strings.Contains(string(b), "\naudit:") {
		t.Errorf("AuditOff=false still writes the audit key:\n%s", b)
	}
}
