package identity

import (
	"slices"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// TestConfigYAML: the documented example decodes under the strict loader
// the gateway uses (goccy/go-yaml, yaml.Strict) and validates.
func TestConfigYAML(t *testing.T) {
	src := `
issuers:
  - issuer: https://login.example.com/realms/ml
    audiences: [warden]
    client_ids: [warden-cli]
    token_types: [access_token, id_token]
    algorithms: [RS256, ES256]
    clock_skew: 45s
    required_claims: {tenant: acme}
    groups_claim: realm_access.roles
    group_prefix: "kc:"
    group_map: {"Data Scientists": ds}
    claims: [tenant, acr]
    service_rule:
      match_client_subject: true
      claim: gty
      values: [client-credentials]
jwks_refresh: 5m
unknown_kid_cooldown: 20s
token_cache_size: 5000
api_keys:
  enabled: true
  file: /var/lib/warden/apikeys.json
assertion:
  header: X-Warden-Identity
  ttl: 30s
  key_file: /var/lib/warden/assertion.key
strip_headers: [X-Tenant-Override]
forward_credential: false
`
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte(src), &c, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ic := c.Issuers[0]
	if ic.ClockSkew != 45*time.Second || c.JWKSRefresh != 5*time.Minute || c.Assertion.TTL != 30*time.Second ||
		ic.GroupMap["Data Scientists"] != "ds" || !slices.Equal(ic.Algorithms, []string{"RS256", "ES256"}) || !c.APIKeysEnabled() {
		t.Fatalf("decoded %+v", c)
	}
	var bad Config
	if err := yaml.UnmarshalWithOptions([]byte("issuers:\n  - issuer: https://x\n    audience: [a]\n"), &bad, yaml.Strict()); err == nil {
		t.Fatal("strict decode accepted an unknown key")
	}
}
