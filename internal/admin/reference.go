package admin

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/wardenhq/warden/internal/apierr"
)

// commonErrors are answered by every endpoint (besides its own).
var commonErrors = []apierr.Code{apierr.MethodNotAllowed, apierr.Internal}

// roleErrors are answered because of an endpoint's role.
func roleErrors(r Role) []apierr.Code {
	switch r {
	case Public:
		return nil
	case Authenticated:
		return []apierr.Code{apierr.InvalidRequest, apierr.Unauthenticated, apierr.InvalidToken, apierr.TemporarilyUnavailable}
	}
	return []apierr.Code{apierr.InvalidRequest, apierr.Unauthenticated, apierr.InvalidToken, apierr.TemporarilyUnavailable, apierr.Forbidden}
}

// AllErrors returns every error code rt may answer with: its own, its
// role's and those of every endpoint, by status.
func (rt Route) AllErrors() []apierr.Code {
	all := slices.Concat(rt.Errors, roleErrors(rt.Role), commonErrors)
	slices.SortFunc(all, func(a, b apierr.Code) int {
		if d := a.Status() - b.Status(); d != 0 {
			return d
		}
		return strings.Compare(string(a), string(b))
	})
	return slices.Compact(all)
}

// roleDoc says who holds each role.
var roleDoc = map[Role]string{
	Public:        "anyone, no credential",
	Authenticated: "any authenticated caller; the approval service decides per request (requester, reviewer groups)",
	Auditor:       "members of `admin.roles.auditor` (default `[ml-admins, auditors]`)",
	Approver:      "members of `admin.roles.approver` when set; in any case a reviewer group of the request, never its requester",
	Admin:         "members of `admin.roles.admin` (default `[ml-admins]`)",
}

// areas titles the reference's sections by path prefix, in order.
var areas = []struct{ prefix, title string }{
	{"/.well-known/", "Identity assertion keys"},
	{"/v1/audit/", "Audit log"},
	{"/v1/policy", "Policy"},
	{"/v1/approvals", "Approvals and grants"},
	{"/v1/grants", "Approvals and grants"},
	{"/v1/keys", "API keys"},
	{"/v1/export/", "SIEM export"},
}

// Reference renders the admin API reference (docs/admin-api.md) from
// routes. A test compares the file with it, so the document cannot
// drift from the router.
func Reference(routes []Route) []byte {
	routes = slices.Clone(routes)
	slices.SortStableFunc(routes, func(a, b Route) int { return areaIndex(a.Path) - areaIndex(b.Path) })
	var b bytes.Buffer
	b.WriteString(referenceIntro)
	b.WriteString("\n## Errors\n\nEvery error is `{\"error\":{\"type\",\"message\",\"request_id\"}}` with `Cache-Control: no-store`; ")
	b.WriteString("401 answers carry an RFC 6750 `WWW-Authenticate` challenge, 405 answers an `Allow` header. ")
	b.WriteString("The types the admin API answers with (the one table is `internal/apierr`):\n\n| status | type | when |\n|---|---|---|\n")
	var used []apierr.Code
	for _, r := range routes {
		used = append(used, r.AllErrors()...)
	}
	used = append(used, apierr.NotFound, apierr.Forbidden) // unknown paths; cross-origin refusals
	for _, c := range apierr.Codes() {
		if slices.Contains(used, c) {
			fmt.Fprintf(&b, "| %d | `%s` | %s |\n", c.Status(), c.Type(), c.Doc())
		}
	}
	b.WriteString("\n## Roles\n\n| role | who |\n|---|---|\n")
	for _, r := range []Role{Public, Authenticated, Auditor, Approver, Admin} {
		fmt.Fprintf(&b, "| `%s` | %s |\n", r, roleDoc[r])
	}
	b.WriteString("\n## Endpoints\n\n| endpoint | role | what |\n|---|---|---|\n")
	for _, r := range routes {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s |\n", r.key(), anchor(r.key()), r.Role, r.Summary)
	}
	title := ""
	for _, r := range routes {
		if t := areaOf(r.Path); t != title {
			title = t
			fmt.Fprintf(&b, "\n## %s\n", title)
		}
		fmt.Fprintf(&b, "\n### %s\n\n%s.\n\n- **role**: `%s`\n", r.key(), r.Summary, r.Role)
		if len(r.Params) > 0 {
			b.WriteString("- **parameters**:\n")
			for _, p := range r.Params {
				fmt.Fprintf(&b, "  - `%s` (%s): %s\n", p.Name, p.In, p.Doc)
			}
		}
		if r.Reply != "" {
			fmt.Fprintf(&b, "- **answer**: %s\n", r.Reply)
		}
		b.WriteString("- **errors**: ")
		for i, c := range r.AllErrors() {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%d `%s`", c.Status(), c.Type())
		}
		b.WriteString("\n")
	}
	b.WriteString(referenceOps)
	return b.Bytes()
}

func areaIndex(path string) int {
	for i, a := range areas {
		if strings.HasPrefix(path, a.prefix) {
			return i
		}
	}
	return len(areas)
}

func areaOf(path string) string {
	if i := areaIndex(path); i < len(areas) {
		return areas[i].title
	}
	return "Other"
}

// anchor is the GitHub heading anchor of "### <key>".
func anchor(key string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(key) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		case c == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

const referenceIntro = `# Admin API reference

<!-- Generated from the routes of internal/admin by TestReference; do not edit.
     Regenerate: go test ./internal/admin -run TestReference -update -->

The admin listener (` + "`admin_listen`" + `, default ` + "`127.0.0.1:9090`" + `) serves the admin API
below and the gateway server's operations endpoints. Callers authenticate as on the
data path — ` + "`Authorization: Bearer <OIDC access token>`" + `, ` + "`Authorization: Bearer wk_…`" + ` or
` + "`X-API-Key: wk_…`" + ` — and hold roles through their groups (` + "`admin.roles`" + ` in the
configuration, see [configuration.md](configuration.md#admin-api)). Without an ` + "`identity`" + `
section the admin API is closed: every endpoint but the public ones answers 401.

Every answer carries ` + "`X-Request-Id`" + ` (a well-formed client value of 8-128 characters of
` + "`[A-Za-z0-9._:-]`" + ` is kept, anything else replaced); every error body repeats it as
` + "`request_id`" + `, and the admin request log line has it too. Browser requests with unsafe
methods from another origin are refused (403). Request bodies are JSON objects of at
most 64 KiB; unknown fields are refused.

` + "```sh" + `
curl -s 'http://127.0.0.1:9090/v1/audit/entries?kind=request.denied&limit=1' -H "Authorization: Bearer $TOKEN"
warden approvals list --state pending --token "$TOKEN"     # the CLI uses this API
` + "```" + `
`

const referenceOps = `
## Operations (served by the gateway server on the same listener)

They report on the server process itself, so they answer whether or not an admin API or
identity is configured, need no credential, and carry ` + "`X-Request-Id`" + ` like the rest.

| endpoint | answer |
|---|---|
| ` + "`GET /healthz`" + ` | ` + "`{\"status\":\"ok\"}`" + ` while the process runs |
| ` + "`GET /readyz`" + ` | ` + "`{\"status\":\"ready\"}`" + `, or 503 ` + "`not_ready`" + ` while starting, draining or when a component is not ready |
| ` + "`GET /metrics`" + ` | Prometheus metrics |
`
