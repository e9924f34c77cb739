package configs

import (
	"bytes"
	"embed"
	"fmt"
	"text/template"
)

//go:embed *.tmpl
var files embed.FS

var tmpl = template.Must(template.ParseFS(files, "*.tmpl"))

// Data fills the templates.
type Data struct {
	// Listen and AdminListen are the gateway's addresses.
	Listen, AdminListen string
	// DataDir is the stage's own data directory.
	DataDir string
	// Upstream is the fake model server's base URL.
	Upstream string
	// IssuerURL is the loopback OIDC issuer.
	IssuerURL string
	// PolicyFile is the rendered policy file's path.
	PolicyFile string
	// AuditOff writes "audit: {enabled: false}" into stages without audit.
	// The runner clears it for a build that has no audit section at all
	// (its strict loader rejects the key), where it would mean the same.
	AuditOff bool
}

// Stage is one Warden configuration measured by the harness.
type Stage struct {
	// Name is the target name in reports, e.g. "warden-identity".
	Name string
	// Config is the gateway config template.
	Config string
	// Policy is the policy template ("" when the stage has no policy).
	Policy string
	// Summary says what the stage adds.
	Summary string
}

// Stages lists the Warden stages in order, each adding one capability.
var Stages = []Stage{
	{"warden-passthrough", "warden-passthrough.yaml.tmpl", "", "routing only: anonymous, no audit"},
	{"warden-identity", "warden-identity.yaml.tmpl", "", "+ OIDC bearer token verification (RS256, JWKS)"},
	{"warden-policy", "warden-policy.yaml.tmpl", "policy.yaml.tmpl", "+ CEL policy decision"},
	{"warden-masking", "warden-masking.yaml.tmpl", "policy-mask.yaml.tmpl", "+ response masking (JSON and SSE)"},
	{"warden-full", "warden-full.yaml.tmpl", "policy-mask.yaml.tmpl", "+ durable audit (SQLite): everything on"},
}

// Render executes the named template with d.
func Render(name string, d Data) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name, d); err != nil {
		return nil, fmt.Errorf("configs: render %s: %w", name, err)
	}
	return b.Bytes(), nil
}
