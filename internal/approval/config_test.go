package approval

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/wardenhq/warden/internal/config/field"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *Config)
		path string // "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"webhook ok", func(c *Config) { c.Webhooks = []WebhookConfig{{URL: "https://hooks.slack.test/x", Format: "slack"}} }, ""},
		{"bad review url", func(c *Config) { c.ReviewURLBase = "warden.local" }, "review_url_base"},
		{"negative sweep", func(c *Config) { c.SweepInterval = -time.Second }, "sweep_interval"},
		{"webhook url", func(c *Config) { c.Webhooks = []WebhookConfig{{URL: "ftp://x"}} }, "webhooks[0].url"},
		{"webhook format", func(c *Config) { c.Webhooks = []WebhookConfig{{URL: "http://x", Format: "teams"}} }, "webhooks[0].format"},
		{"webhook event", func(c *Config) {
			c.Webhooks = []WebhookConfig{{URL: "http://x"}, {URL: "http://y", Events: []string{"approval.requested", "approval.nope"}}}
		}, "webhooks[1].events[1]"},
		{"queue size", func(c *Config) { c.WebhookQueueSize = -1 }, "webhook_queue_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			tc.mod(&c)
			c.SetDefaults()
			err := c.Validate()
			if tc.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *field.Error
			if !errors.As(err, &fe) || fe.Path != tc.path {
				t.Fatalf("error %v, want one at %s", err, tc.path)
			}
		})
	}
	var c Config
	c.Webhooks = []WebhookConfig{{URL: "http://x", Secret: "topsecret"}}
	c.SetDefaults()
	if c.SweepInterval != 30*time.Second || c.Webhooks[0].Format != "generic" || c.Webhooks[0].Timeout != 10*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	c.Webhooks[0].URL = "bad"
	if err := c.Validate(); err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("error %v must not show the secret", err)
	}
}

// TestConfigYAML decodes the documented example the way the config
// loader does (goccy/go-yaml, unknown fields refused).
func TestConfigYAML(t *testing.T) {
	const doc = `
review_url_base: https://warden.example.com
sweep_interval: 1m
poll_interval: 2s
retry_after: 20s
webhook_queue_size: 500
webhook_max_attempts: 6
webhook_backoff: 2s
webhooks:
  - url: https://hooks.slack.com/services/T0/B0/XXXX
    format: slack
    events: [approval.requested, approval.approved, approval.denied]
  - url: https://soc.example.com/warden
    secret: s3cret
    timeout: 5s
`
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte(doc), &c, yaml.DisallowUnknownField()); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.SweepInterval != time.Minute || c.Webhooks[1].Timeout != 5*time.Second || c.Webhooks[1].Format != "generic" || len(c.Webhooks[0].Events) != 3 {
		t.Fatalf("decoded %+v", c)
	}
	if err := yaml.UnmarshalWithOptions([]byte("webhook:\n  - url: x\n"), &c, yaml.DisallowUnknownField()); err == nil {
		t.Fatal("unknown key accepted")
	}
}
