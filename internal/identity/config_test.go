package identity

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

func TestConfigValidate(t *testing.T) {
	ok := IssuerConfig{Issuer: "https://idp.example.com", Audiences: []string{"warden"}}
	cases := []struct {
		name string
		mod  func(c *Config)
		path string // "" = valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"loopback http ok", func(c *Config) { c.Issuers[0].Issuer = "http://127.0.0.1:9000" }, ""},
		{"plain http refused", func(c *Config) { c.Issuers[0].Issuer = "http://idp.example.com" }, "issuers[0].issuer"},
		{"alg none", func(c *Config) { c.Issuers[0].Algorithms = []string{"RS256", "none"} }, "issuers[0].algorithms[1]"},
		{"HS256", func(c *Config) { c.Issuers[0].Algorithms = []string{"HS256"} }, "issuers[0].algorithms[0]"},
		{"skew too large", func(c *Config) { c.Issuers[0].ClockSkew = 6 * time.Minute }, "issuers[0].clock_skew"},
		{"no audience", func(c *Config) { c.Issuers[0].Audiences = nil }, "issuers[0].audiences"},
		{"bad token type", func(c *Config) { c.Issuers[0].TokenTypes = []string{"refresh_token"} }, "issuers[0].token_types[0]"},
		{"duplicate issuer", func(c *Config) { c.Issuers = append(c.Issuers, c.Issuers[0]) }, "issuers[1].issuer"},
		{"bad header", func(c *Config) { c.Assertion.Header = "X Bad" }, "assertion.header"},
		{"bad strip header", func(c *Config) { c.StripHeaders = []string{"ok", "bad:"} }, "strip_headers[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Issuers: []IssuerConfig{ok}}
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
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.path+":") {
				t.Fatalf("error %v, want one at %s", err, tc.path)
			}
		})
	}
	c := Config{}
	c.SetDefaults()
	if c.JWKSRefresh != DefaultJWKSRefresh || c.UnknownKIDCooldown != DefaultUnknownKIDCooldown || c.TokenCacheSize != DefaultTokenCacheSize ||
		c.Assertion.Header != DefaultAssertionHeader || c.Assertion.TTL != DefaultAssertionTTL || !c.APIKeysEnabled() {
		t.Fatalf("defaults %+v", c)
	}
}
