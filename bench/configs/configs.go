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
	// Features the stage turns on; the runner checks each is really
	// active before measuring (a token is required, a denied request is
	// refused, PII is masked, the audit store is written).
	Identity, PolicyOn, Masking, Audit bool
}

// Stages lists the Warden stages in order, each adding one capability.
var Stages = []Stage{
	{Name: "warden-passthrough", Config: "warden-passthrough.yaml.tmpl",
		Summary: "routing only: anonymous, no audit"},
	{Name: "warden-identity", Config: "warden-identity.yaml.tmpl",
		Summary: "+ OIDC bearer token verification (RS256, JWKS)", Identity: true},
	{Name: "warden-policy", Config: "warden-policy.yaml.tmpl", Policy: "policy.yaml.tmpl",
		Summary: "+ CEL policy decision", Identity: true, PolicyOn: true},
	{Name: "warden-masking", Config: "warden-masking.yaml.tmpl", Policy: "policy-mask.yaml.tmpl",
		Summary: "+ response masking (JSON and SSE)", Identity: true, PolicyOn: true, Masking: true},
	{Name: "warden-full", Config: "warden-full.yaml.tmpl", Policy: "policy-mask.yaml.tmpl",
		Summary: "+ durable audit (SQLite): everything on", Identity: true, PolicyOn: true, Masking: true, Audit: true},
}

// Render executes the named template with d.
func Render(name string, d Data) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name, d); err != nil {
		return nil, fmt.Errorf("configs: render %s: %w", name, err)
	}
	return b.Bytes(), nil
}
