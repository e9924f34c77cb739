package approval

import (
	"errors"
	"strings"
	"testing"
	"time"

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
