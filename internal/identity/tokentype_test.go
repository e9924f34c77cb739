package identity

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// idpShape is a token as one identity provider issues it: the JOSE typ
// header and the claims (besides iss, iat and exp), for the access token
// and the ID token of the same login.
type idpShape struct {
	name        string
	typ         string // JOSE header typ of the access token ("" for none)
	idTyp       string // JOSE header typ of the ID token
	groupsClaim string
	access      map[string]any
	id          map[string]any
	wantSub     string
	wantGroups  []string
}

// idpShapes are access and ID tokens with the headers and claims Keycloak
// (≥ 19), Okta (custom authorization server), Entra ID (v2 tokens) and
// Auth0 put in them, as documented by each and seen in their tokens. The
// API audience is "warden" and the client (the app the user logged in
// to) "warden-cli" throughout.
var idpShapes = []idpShape{
	{
		name: "Keycloak", typ: "JWT", idTyp: "JWT", groupsClaim: "realm_access.roles",
		access: map[string]any{
			"jti": "0d5f2b40-7b1e-4f5e-a7f6-3f2f7a3b2c11", "auth_time": 1764500000,
			"aud": []string{"warden", "account"}, "sub": "f3b2c1d0-1111-2222-3333-444455556666",
			"typ": "Bearer", "azp": "warden-cli", "session_state": "8b1e…", "sid": "8b1e…", "acr": "1",
			"allowed-origins": []string{"https://console.example.com"},
			"realm_access":    map[string]any{"roles": []string{"ml-users", "offline_access"}},
			"resource_access": map[string]any{"account": map[string]any{"roles": []string{"view-profile"}}},
			"scope":           "openid profile email", "email_verified": true,
			"name": "Alice Example", "preferred_username": "alice", "email": "alice@example.com",
		},
		id: map[string]any{
			"aud": "warden-cli", "sub": "f3b2c1d0-1111-2222-3333-444455556666", "typ": "ID",
			"azp": "warden-cli", "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
			"sid": "8b1e…", "email": "alice@example.com",
		},
		wantSub: "f3b2c1d0-1111-2222-3333-444455556666", wantGroups: []string{"ml-users", "offline_access"},
	},
	{
		name: "Okta", typ: "", idTyp: "", groupsClaim: "groups",
		access: map[string]any{
			"ver": 1, "jti": "AT.xYz123", "aud": "warden", "cid": "0oa1warden", "uid": "00u1alice",
			"scp": []string{"openid", "profile"}, "auth_time": 1764500000,
			"sub": "alice@example.com", "groups": []string{"ml-users"},
		},
		id: map[string]any{
			"ver": 1, "jti": "ID.abc", "aud": "warden-cli", "sub": "00u1alice", "amr": []string{"pwd"},
			"idp": "00o1", "nonce": "n-0S6_WzA2Mj", "auth_time": 1764500000, "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
		},
		wantSub: "alice@example.com", wantGroups: []string{"ml-users"},
	},
	{
		name: "Entra ID", typ: "JWT", idTyp: "JWT", groupsClaim: "roles",
		access: map[string]any{
			"aud": "warden", "nbf": 1764500000, "aio": "AWQAm/8…", "azp": "11111111-2222-3333-4444-555555555555",
			"azpacr": "0", "name": "Alice Example", "oid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
			"preferred_username": "alice@example.com", "rh": "0.AAAA…", "roles": []string{"ML.User"},
			"scp": "access_as_user", "sid": "0018…", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
			"tid": "72f988bf-0000-0000-0000-2d7cd011db47", "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0",
		},
		id: map[string]any{
			"aud": "warden-cli", "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "nbf": 1764500000,
			"aio": "Df2UVXL1…", "nonce": "n-0S6_WzA2Mj", "oid": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
			"tid": "72f988bf-0000-0000-0000-2d7cd011db47", "ver": "2.0", "c_hash": "LDktKdoQak3Pk0cnXxCltA",
		},
		wantSub: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", wantGroups: []string{"ML.User"},
	},
	{
		name: "Auth0", typ: "JWT", idTyp: "JWT", groupsClaim: "https://example.com/groups",
		access: map[string]any{
			"sub": "auth0|64f1c2", "aud": []string{"warden", "https://tenant.eu.auth0.com/userinfo"},
			"azp": "warden-cli-client-id", "scope": "openid profile email",
			"permissions":                []string{"infer:chat"},
			"https://example.com/groups": []string{"ml-users"},
		},
		id: map[string]any{
			"sub": "auth0|64f1c2", "aud": "warden-cli", "nickname": "alice", "name": "alice@example.com",
			"picture": "https://s.gravatar.com/avatar/x.png", "updated_at": "2026-11-30T10:00:00.000Z",
			"email": "alice@example.com", "email_verified": true, "sid": "Hk2…", "nonce": "n-0S6_WzA2Mj",
		},
		wantSub: "auth0|64f1c2", wantGroups: []string{"ml-users"},
	},
}

// TestIdPAccessTokensAcceptedIDTokensRefused: with the default
// token_types, the access tokens each common IdP issues (typ JWT or none,
// not at+jwt) are accepted, and the ID token of the same login is refused
// with a 401 that says so — even when its audience is one Warden accepts.
// Listing id_token is the explicit opt-in that lets ID tokens in.
func TestIdPAccessTokensAcceptedIDTokensRefused(t *testing.T) {
	ra, _, _ := testKeys()
	k := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	idp := newTestIdP(t, k)
	for _, shape := range idpShapes {
		t.Run(shape.name, func(t *testing.T) {
			token := func(c *clock, base map[string]any, typ string, aud any) string {
				m := map[string]any{"iss": idp.issuer(), "iat": c.now().Unix(), "exp": c.now().Add(time.Hour).Unix()}
				for k, v := range base {
					m[k] = v
				}
				if aud != nil {
					m["aud"] = aud
				}
				return mint(t, k, typ, m)
			}
			// Default token types, and a configuration that also lists the
			// client id as an audience (the substitution risk: an ID token
			// for warden-cli would match).
			cfg := Config{Issuers: []IssuerConfig{{Issuer: idp.issuer(), Audiences: []string{"warden", "warden-cli"}, GroupsClaim: shape.groupsClaim}}}
			a, c := newAuth(t, cfg, true)
			if got := a.Config().Issuers[0].TokenTypes; !slices.Equal(got, []string{TokenTypeAccess}) {
				t.Fatalf("default token_types %q, want [access_token]", got)
			}
			p, err := a.Authenticate(bearer(token(c, shape.access, shape.typ, nil)))
			if err != nil {
				t.Fatalf("%s access token refused: %v", shape.name, err)
			}
			if p.Subject != shape.wantSub || !slices.Equal(p.Groups, shape.wantGroups) {
				t.Fatalf("principal sub %q groups %q, want %q %q", p.Subject, p.Groups, shape.wantSub, shape.wantGroups)
			}
			idTok := token(c, shape.id, shape.idTyp, nil)
			_, err = a.Authenticate(bearer(idTok))
			if err == nil {
				t.Fatalf("%s ID token accepted as a bearer credential by default", shape.name)
			}
			e := authErr(t, err)
			if e.Status != http.StatusUnauthorized || e.Code != CodeInvalidToken || e.Description != DescIDTokenNotAccepted {
				t.Fatalf("ID token: %d %s %q, want 401 invalid_token %q", e.Status, e.Code, e.Description, DescIDTokenNotAccepted)
			}
			if wa := e.WWWAuthenticate(); !strings.Contains(wa, "id token not accepted") {
				t.Fatalf("WWW-Authenticate %q does not say why", wa)
			}
			// The same ID token typed as an RFC 9068 access token would be
			// a forgery by the IdP itself; an access token for another API
			// is refused for its audience.
			if _, err := a.Authenticate(bearer(token(c, shape.access, shape.typ, "other-api"))); authErr(t, err).Description != DescAudience {
				t.Fatalf("access token for another API: %v", err)
			}

			// Explicit opt-in: ID tokens for warden-cli are accepted.
			optIn := Config{Issuers: []IssuerConfig{{Issuer: idp.issuer(), Audiences: []string{"warden"}, ClientIDs: []string{"warden-cli"},
				TokenTypes: []string{TokenTypeAccess, TokenTypeID}, GroupsClaim: shape.groupsClaim}}}
			b, c2 := newAuth(t, optIn, true)
			if _, err := b.Authenticate(bearer(token(c2, shape.id, shape.idTyp, nil))); err != nil {
				t.Fatalf("ID token refused with token_types [access_token, id_token]: %v", err)
			}
			if _, err := b.Authenticate(bearer(token(c2, shape.access, shape.typ, nil))); err != nil {
				t.Fatalf("access token refused with the opt-in: %v", err)
			}
			// ... but not one for another client.
			if _, err := b.Authenticate(bearer(token(c2, shape.id, shape.idTyp, "other-client"))); authErr(t, err).Description != DescAudience {
				t.Fatalf("ID token of another client: %v", err)
			}
		})
	}
}

// TestTokenTypeHeader: RFC 9068 at+jwt tokens are access tokens; JWTs
// explicitly typed for something else are never credentials; an untyped
// JWT with any single ID-token marker is an ID token.
func TestTokenTypeHeader(t *testing.T) {
	ra, _, _ := testKeys()
	k := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	idp := newTestIdP(t, k)
	a, c := newAuth(t, oneIssuer(idp), true)
	base := baseClaims(idp.issuer(), c.now())
	with := func(key string, v any) map[string]any {
		m := baseClaims(idp.issuer(), c.now())
		m[key] = v
		return m
	}
	cases := []struct {
		name   string
		typ    string
		claims map[string]any
		want   string // "" accepted
	}{
		{"at+jwt", "at+jwt", base, ""},
		{"application/at+jwt", "application/at+jwt", base, ""},
		{"at+jwt wins over a nonce (RFC 9068 typed)", "at+jwt", with("nonce", "x"), ""},
		{"JWT", "JWT", base, ""},
		{"application/jwt", "application/jwt", base, ""},
		{"no typ", "", base, ""},
		{"nonce", "JWT", with("nonce", "x"), DescIDTokenNotAccepted},
		{"at_hash", "", with("at_hash", "x"), DescIDTokenNotAccepted},
		{"c_hash", "JWT", with("c_hash", "x"), DescIDTokenNotAccepted},
		{"keycloak typ ID claim", "JWT", with("typ", "ID"), DescIDTokenNotAccepted},
		{"logout token", "logout+jwt", base, DescTokenType},
		{"security event token", "secevent+jwt", base, DescTokenType},
		{"DPoP proof", "dpop+jwt", base, DescTokenType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authenticate(bearer(mint(t, k, tc.typ, tc.claims)))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if e := authErr(t, err); e.Status != http.StatusUnauthorized || e.Description != tc.want {
				t.Fatalf("got %d %q, want 401 %q", e.Status, e.Description, tc.want)
			}
		})
	}
}

// TestGroupsClaimTypes: a single string is one group; any other type
// (number, object, boolean, null, a list holding a non-string) is a clear
// 401 rather than a principal silently without groups.
func TestGroupsClaimTypes(t *testing.T) {
	ra, _, _ := testKeys()
	k := testKey{kid: "rsa1", alg: jose.RS256, priv: ra}
	idp := newTestIdP(t, k)
	a, c := newAuth(t, oneIssuer(idp), true)
	cases := []struct {
		name  string
		v     any
		want  []string
		fails bool
	}{
		{"one string", "ml-users", []string{"ml-users"}, false},
		{"list", []string{"a", "b"}, []string{"a", "b"}, false},
		{"empty list", []string{}, nil, false},
		{"number", 7, nil, true},
		{"boolean", true, nil, true},
		{"object", map[string]any{"a": 1}, nil, true},
		{"null", nil, nil, true},
		{"list with a number", []any{"a", 7}, nil, true},
		{"list with an object", []any{map[string]any{"name": "a"}}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := baseClaims(idp.issuer(), c.now())
			m["groups"] = tc.v
			p, err := a.Authenticate(bearer(mint(t, k, "at+jwt", m)))
			if tc.fails {
				e := authErr(t, err)
				if e.Status != http.StatusUnauthorized || e.Description != DescGroupsClaim+": groups" {
					t.Fatalf("got %d %q", e.Status, e.Description)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Groups) != len(tc.want) || !slices.Equal(p.Groups, tc.want) {
				t.Fatalf("groups %q, want %q", p.Groups, tc.want)
			}
		})
	}
}

// TestEmptyBearer: "Authorization: Bearer " (the server trims the space)
// and "Bearer   " are an empty token, not a wrong scheme.
func TestEmptyBearer(t *testing.T) {
	a, _ := newAuth(t, Config{}, false)
	for _, v := range []string{"Bearer ", "Bearer", "bearer    ", "Bearer \t "} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", v)
		e := authErr(t, func() error { _, err := a.Authenticate(r); return err }())
		if e.Status != http.StatusBadRequest || e.Code != CodeInvalidRequest || e.Description != DescEmptyBearer {
			t.Fatalf("%q: %d %s %q, want 400 invalid_request %q", v, e.Status, e.Code, e.Description, DescEmptyBearer)
		}
	}
	for _, v := range []string{"Basic dXNlcjpwYXNz", "Bearerx abc", "Token abc"} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", v)
		e := authErr(t, func() error { _, err := a.Authenticate(r); return err }())
		if e.Description != DescBadScheme {
			t.Fatalf("%q: %q, want %q", v, e.Description, DescBadScheme)
		}
	}
}

// TestUnavailableRetryAfter: the 503 for an identity provider not reached
// yet carries Retry-After, as docs/identity.md promises.
func TestUnavailableRetryAfter(t *testing.T) {
	ae := errUnavailable().APIError()
	if ae.RetryAfter != RetryAfter || RetryAfter <= 0 {
		t.Fatalf("RetryAfter %v", ae.RetryAfter)
	}
	if errToken(DescExpired).APIError().RetryAfter != 0 {
		t.Fatal("a 401 carries Retry-After")
	}
}
