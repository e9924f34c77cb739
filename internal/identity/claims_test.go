package identity

import (
	"encoding/json"
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestGroupsMapping runs real tokens through an Authenticator per case:
// claim path, prefix and rename map as each IdP family shapes them.
func TestGroupsMapping(t *testing.T) {
	ra, _, _ := testKeys()
	k := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	idp := newTestIdP(t, k)
	cases := []struct {
		name   string
		claim  string
		prefix string
		rename map[string]string
		extra  map[string]any
		want   []string
	}{
		{"groups (default)", "", "", nil, map[string]any{"groups": []string{"a", "b"}}, []string{"a", "b"}},
		{"roles", "roles", "", nil, map[string]any{"roles": []string{"admin"}}, []string{"admin"}},
		{"keycloak realm_access.roles", "realm_access.roles", "", nil, map[string]any{"realm_access": map[string]any{"roles": []string{"offline_access", "ml"}}}, []string{"offline_access", "ml"}},
		{"keycloak client roles with a dotted client id", "resource_access.my.app.roles", "", nil, map[string]any{"resource_access": map[string]any{"my.app": map[string]any{"roles": []string{"r1"}}}}, []string{"r1"}},
		{"cognito:groups", "cognito:groups", "", nil, map[string]any{"cognito:groups": []string{"eu-admins"}}, []string{"eu-admins"}},
		{"namespaced URL claim (contains dots)", "https://example.com/groups", "", nil, map[string]any{"https://example.com/groups": []string{"auth0-group"}}, []string{"auth0-group"}},
		{"single string", "groups", "", nil, map[string]any{"groups": "solo"}, []string{"solo"}},
		{"prefix", "groups", "idp:", nil, map[string]any{"groups": []string{"a", "b"}}, []string{"idp:a", "idp:b"}},
		{"rename then prefix, duplicates dropped", "groups", "kc-", map[string]string{"Data Scientists": "ds", "ds-old": "ds"}, map[string]any{"groups": []string{"Data Scientists", "ds-old", "eng"}}, []string{"kc-ds", "kc-eng"}},
		{"missing claim", "roles", "", nil, map[string]any{}, nil},
		{"empty members dropped", "groups", "", nil, map[string]any{"groups": []any{"a", ""}}, []string{"a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneIssuer(idp)
			cfg.Issuers[0].GroupsClaim = tc.claim
			cfg.Issuers[0].GroupPrefix = tc.prefix
			cfg.Issuers[0].GroupMap = tc.rename
			a, c := newAuth(t, cfg, true)
			m := baseClaims(idp.issuer(), c.now())
			delete(m, "groups")
			for k, v := range tc.extra {
				m[k] = v
			}
			p, err := a.Authenticate(bearer(mint(t, k, "at+jwt", m)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Groups, tc.want) {
				t.Fatalf("groups %q, want %q", p.Groups, tc.want)
			}
		})
	}
}

// TestServiceRuleAndClaims: client_credentials tokens become service
// principals; required claims are enforced; selected claims are copied
// with plain JSON types.
func TestServiceRuleAndClaims(t *testing.T) {
	ra, _, _ := testKeys()
	k := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	idp := newTestIdP(t, k)
	cfg := oneIssuer(idp)
	cfg.Issuers[0].Claims = []string{"tenant", "acr", "realm_access.roles", "absent"}
	cfg.Issuers[0].RequiredClaims = map[string]string{"tenant": "acme"}
	a, c := newAuth(t, cfg, true)
	cases := []struct {
		name string
		mod  map[string]any
		kind Kind
		desc string
	}{
		{"user", map[string]any{"azp": "warden-cli"}, KindUser, ""},
		{"client_id == sub", map[string]any{"sub": "batch-job", "client_id": "batch-job"}, KindService, ""},
		{"azp == sub", map[string]any{"sub": "svc-1", "azp": "svc-1"}, KindService, ""},
		{"gty client-credentials (Auth0)", map[string]any{"sub": "x@clients", "gty": "client-credentials"}, KindService, ""},
		{"required claim wrong", map[string]any{"tenant": "evil"}, "", DescRequiredClaim + ": tenant"},
		{"required claim missing", map[string]any{"tenant": nil}, "", DescRequiredClaim + ": tenant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := baseClaims(idp.issuer(), c.now())
			m["tenant"] = "acme"
			m["acr"] = 2
			m["realm_access"] = map[string]any{"roles": []string{"r"}}
			for k, v := range tc.mod {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			p, err := a.Authenticate(bearer(mint(t, k, "at+jwt", m)))
			if tc.desc != "" {
				if e := authErr(t, err); e.Description != tc.desc {
					t.Fatalf("got %q, want %q", e.Description, tc.desc)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Kind != tc.kind {
				t.Fatalf("kind %q, want %q", p.Kind, tc.kind)
			}
			got, _ := json.Marshal(p.Claims)
			if string(got) != `{"acr":2,"realm_access.roles":["r"],"tenant":"acme"}` {
				t.Fatalf("claims %s", got)
			}
			if _, ok := p.Claims["acr"].(int64); !ok {
				t.Fatalf("acr is %T, want int64", p.Claims["acr"])
			}
		})
	}
}

func TestClaimPath(t *testing.T) {
	claims := map[string]any{
		"a.b": "whole key wins",
		"a":   map[string]any{"b": "nested"},
		"x":   map[string]any{"y": map[string]any{"z": "deep"}},
	}
	for path, want := range map[string]any{"a.b": "whole key wins", "x.y.z": "deep", "x.q": nil, "nope": nil} {
		got, ok := claimPath(claims, path)
		if (want == nil) == ok || (ok && got != want) {
			t.Errorf("claimPath(%q) = %v, %v; want %v", path, got, ok, want)
		}
	}
}
