package mask

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestConfigYAML(t *testing.T) {
	src := `
key: k1-0123456789abcdef
profiles:
  clinical:
    style: token
    hold_back: 128
    fail_closed: false
    entities:
      - CREDIT_CARD
      - type: EMAIL_ADDRESS
        min_score: 0.4
        style: partial
    regex:
      - name: mrn
        pattern: 'MRN-\d{6}'
        entity: MRN
    keywords:
      - name: codenames
        words: [Falcon, Osprey]
    json_paths:
      - name: patient_mrn
        path: $.data[*].patient.mrn
        entity: MRN
    allow: [support@example.com, 're:.*@example\.org']
    content_types:
      image/*: pass
      application/pdf: block
`
	var cfg Config
	if err := yaml.UnmarshalWithOptions([]byte(src), &cfg, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := cfg.Profiles["clinical"]
	if len(p.Entities) != 2 || p.Entities[0].Type != "CREDIT_CARD" || p.Entities[0].MinScore != DefaultMinScore ||
		p.Entities[1].MinScore != 0.4 || p.Entities[1].Style != StylePartial || *p.FailClosed || p.HoldBack != 128 ||
		p.Keywords[0].Entity != "KEYWORD" || p.ContentTypes["image/*"] != ActionPass {
		t.Fatalf("parsed %+v", p)
	}
	if _, ok := cfg.Profiles["default"]; !ok {
		t.Fatal("default profile missing")
	}
	set, err := New(cfg, nil) // falls back to cfg.Key
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Names(); len(got) != 2 || got[0] != "clinical" || got[1] != "default" {
		t.Fatalf("names %v", got)
	}
	m, _ := set.Profile("clinical")
	if got := m.MaskText("MRN-123456 falcon support@example.com x@example.org y@corp.io", "", nil); got != "<MRN_"+m.fingerprint("MRN", "MRN123456")[:6]+"> <KEYWORD_"+m.fingerprint("KEYWORD", "FALCON")[:6]+"> support@example.com x@example.org [EMAIL_ADDRESS:…p.io]" {
		t.Fatalf("masked %q", got)
	}

	short := Config{Key: "short"}
	short.SetDefaults()
	if err := short.Validate(); err == nil || !strings.Contains(err.Error(), "key: must be at least") {
		t.Fatalf("short key: %v", err)
	}

	var bad Config
	if err := yaml.UnmarshalWithOptions([]byte("profiles:\n  p:\n    hold_bak: 3\n"), &bad, yaml.Strict()); err == nil {
		t.Fatal("strict mode accepted an unknown key")
	}
}

// TestProfileNameNoneReserved: a profile may not be called none, which a
// policy rule uses to turn masking off.
func TestProfileNameNoneReserved(t *testing.T) {
	cfg := Config{Profiles: map[string]Profile{"none": {}}}
	cfg.SetDefaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "profiles.none") || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("Validate: %v", err)
	}
}
