package identity

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// claimPath finds a claim by name or dotted path. The whole string is tried
// as a claim name first, so "cognito:groups" and
// "https://example.com/groups" (which contains dots) work; then the path
// is walked through nested objects, trying the longest key first at each
// level ("realm_access.roles", "resource_access.my.app.roles").
func claimPath(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	for i := len(path) - 1; i > 0; i-- {
		if path[i] != '.' {
			continue
		}
		head, rest := path[:i], path[i+1:]
		if sub, ok := claims[head].(map[string]any); ok {
			if v, ok := claimPath(sub, rest); ok {
				return v, true
			}
		}
	}
	return nil, false
}

// stringList turns a claim value into strings: a list of strings, or one
// string (a single group). Other types give nothing.
func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// groupList reads a groups claim: a list of strings, or one string (some
// IdPs emit a single group that way). Anything else — a number, an
// object, null, a list holding a non-string — is not readable (ok false).
// Empty strings are dropped.
func groupList(v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil, true
		}
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			if s != "" {
				out = append(out, s)
			}
		}
		return out, true
	}
	return nil, false
}

// mapGroups applies the issuer's rename map and prefix, dropping
// duplicates while keeping order.
func mapGroups(raw []string, rename map[string]string, prefix string) []string {
	if len(raw) == 0 {
		return nil
	}
	out := make([]string, 0, len(raw))
	for _, g := range raw {
		if r, ok := rename[g]; ok {
			g = r
		}
		g = prefix + g
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// audiences reads `aud`, a string or a list of strings.
func audiences(claims map[string]any) []string {
	return stringList(claims["aud"])
}

// numericDate reads a JSON number claim as a time (fractions allowed).
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok || v == nil {
		return time.Time{}, false, nil
	}
	var f float64
	switch x := v.(type) {
	case json.Number:
		var err error
		if f, err = x.Float64(); err != nil {
			return time.Time{}, false, fmt.Errorf("claim %s: %w", name, err)
		}
	case float64:
		f = x
	default:
		return time.Time{}, false, fmt.Errorf("claim %s is not a number", name)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("claim %s out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// stringClaim reads a string claim; other types read as "".
func stringClaim(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return s
}

// isService applies the issuer's service rule.
func (r *ServiceRule) isService(claims map[string]any, sub string) bool {
	if r.MatchClientSubject == nil || *r.MatchClientSubject {
		if cid := stringClaim(claims, "client_id"); cid != "" && cid == sub {
			return true
		}
		if azp := stringClaim(claims, "azp"); azp != "" && azp == sub {
			return true
		}
	}
	if r.Claim != "" {
		if v, ok := claimPath(claims, r.Claim); ok {
			for _, s := range stringList(v) {
				if slices.Contains(r.Values, s) {
					return true
				}
			}
		}
	}
	return false
}

// claimMatches reports whether the claim at path equals want, or contains
// it when the claim is a list. Non-string scalars compare by their JSON
// text (so `email_verified: "true"` matches a boolean true).
func claimMatches(claims map[string]any, path, want string) bool {
	v, ok := claimPath(claims, path)
	if !ok {
		return false
	}
	switch x := v.(type) {
	case string:
		return x == want
	case []any:
		return slices.Contains(stringList(x), want)
	case bool:
		return fmt.Sprint(x) == want
	case json.Number:
		return x.String() == want
	}
	return false
}

// isAccessTokenType reports whether a JOSE typ header marks an RFC 9068
// access token.
func isAccessTokenType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == "at+jwt" || typ == "application/at+jwt"
}

// isPlainJWTType reports whether a JOSE typ header says no more than
// "a JWT" (RFC 7519 §5.1): "JWT", "application/jwt", or absent.
func isPlainJWTType(typ string) bool {
	typ = strings.ToLower(typ)
	return typ == "" || typ == "jwt" || typ == "application/jwt"
}

// IDTokenMarkers are the claims that only an OpenID Connect ID token
// carries (OIDC Core §2, §3.1.3.6, §3.3.2.11): a JWT that has one is never
// taken for an access token.
var IDTokenMarkers = []string{"nonce", "at_hash", "c_hash"}

// hasIDTokenMarker reports whether claims carry an ID-token marker, or
// Keycloak's own `typ: "ID"` claim.
func hasIDTokenMarker(claims map[string]any) bool {
	for _, m := range IDTokenMarkers {
		if _, ok := claims[m]; ok {
			return true
		}
	}
	t, _ := claims["typ"].(string)
	return strings.EqualFold(t, "ID")
}

// plainJSON converts json.Number (from a UseNumber decode) to int64 when
// integral, else float64, recursively, so copied claims have the types
// encoding/json and CEL expect.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plainJSON(e)
		}
		return out
	}
	return v
}
