package recording

import (
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
)

// credentialHeaders are never recorded, in either direction.
var credentialHeaders = map[string]bool{
	"Authorization":        true,
	"Proxy-Authorization":  true,
	"Cookie":               true,
	"Set-Cookie":           true,
	"X-Api-Key":            true,
	"Api-Key":              true,
	"X-Auth-Token":         true,
	"X-Amz-Security-Token": true,
	// The identity assertion Warden sends upstream (its default name;
	// a configured name comes in through Options.StripHeaders).
	"X-Warden-Identity": true,
}

// hopByHop are the RFC 9110 §7.6.1 connection-specific headers (plus the
// obsolete ones net/http/httputil also removes).
var hopByHop = map[string]bool{
	"Connection":         true,
	"Proxy-Connection":   true,
	"Keep-Alive":         true,
	"Proxy-Authenticate": true,
	"Te":                 true,
	"Trailer":            true,
	"Transfer-Encoding":  true,
	"Upgrade":            true,
}

// filterHeader returns h's fields minus credentials, hop-by-hop headers
// (including those named by Connection) and strip (canonical names: the
// identity assertion header, configured API-key headers), sorted by name
// with values in order. The fields are a snapshot: h may change
// afterwards.
func filterHeader(h http.Header, strip []string) []Field {
	if len(h) == 0 {
		return []Field{}
	}
	var drop map[string]bool
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				if drop == nil {
					drop = map[string]bool{}
				}
				drop[http.CanonicalHeaderKey(name)] = true
			}
		}
	}
	var arr [32]string
	names := arr[:0]
	nv := 0
	for name, vs := range h {
		names = append(names, name)
		nv += len(vs)
	}
	slices.Sort(names)
	out := make([]Field, 0, nv)
	sorted := true
	for _, name := range names {
		c := http.CanonicalHeaderKey(name) // no copy when already canonical
		if credentialHeaders[c] || hopByHop[c] || drop[c] || slices.Contains(strip, c) {
			continue
		}
		if len(out) > 0 && out[len(out)-1].Name > c {
			sorted = false
		}
		for _, v := range h[name] {
			out = append(out, Field{Name: c, Value: v})
		}
	}
	if !sorted {
		// Non-canonical keys canonicalise out of order (rare: net/http
		// canonicalises what it parses).
		slices.SortStableFunc(out, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	}
	return out
}

// canonicalNames returns names in canonical header form.
func canonicalNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = http.CanonicalHeaderKey(n)
	}
	return out
}

// credentialParams are query parameter names whose values are replaced.
var credentialParams = []string{"key", "token", "secret", "password", "passwd", "signature", "sig", "auth", "credential", "session"}

// redactedValue replaces a credential-like query value.
const redactedValue = "[REDACTED]"

// redactQuery replaces the values of credential-like query parameters
// (api_key, access_token, X-Amz-Signature, …). A query that does not parse
// is dropped as a whole: it cannot be shown to be free of secrets.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		n, err := url.QueryUnescape(name)
		if err != nil {
			return redactedValue
		}
		if hasValue && credentialParam(n) {
			parts[i] = name + "=" + redactedValue
		}
	}
	return strings.Join(parts, "&")
}

func credentialParam(name string) bool {
	n := strings.ToLower(name)
	for _, c := range credentialParams {
		if strings.Contains(n, c) {
			return true
		}
	}
	return false
}
