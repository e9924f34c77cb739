package configs

import (
	"bytes"
	"embed"
	"fmt"
	"os"
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
	// NATSURL is the NATS JetStream server of the export stage, and
	// NATSStream and NATSSubject the run's own stream and subject prefix.
	NATSURL, NATSStream, NATSSubject string
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
	// File, when set, is a template file on disk used instead of Config
	// (a stage given on the command line with -stage NAME=FILE).
	File string
	// Features the stage turns on; the runner checks each is really
	// active before measuring (a token is required, a denied request is
	// refused, PII is masked, the audit store is written).
	Identity, PolicyOn, Masking, Audit bool
	// Recording: every call is recorded; the runner checks a recording
	// was stored under data_dir.
	Recording bool
	// Export: the stage exports to SIEM sinks (the runner checks the file
	// sink receives events, and that NATS answers before starting it).
	Export bool
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
	{Name: RecordingStage, Config: "warden-full-recording.yaml.tmpl", Policy: "policy-mask.yaml.tmpl",
		Summary: "+ every call recorded in full (session recordings, filesystem store)", Identity: true, PolicyOn: true, Masking: true, Audit: true, Recording: true},
	{Name: "warden-full+export", Config: "warden-full-export.yaml.tmpl", Policy: "policy-mask.yaml.tmpl",
		Summary: "+ SIEM export (OCSF, file + NATS JetStream sinks)", Identity: true, PolicyOn: true, Masking: true, Audit: true, Export: true},
}

// RecordingStage is the stage that records every call: the acceptance
// checks compare it with warden-full in the same run.
const RecordingStage = "warden-full+recording"

// RenderStage renders st's gateway config: its File when set, else its
// embedded Config template.
func RenderStage(st Stage, d Data) ([]byte, error) {
	if st.File == "" {
		return Render(st.Config, d)
	}
	src, err := os.ReadFile(st.File)
	if err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	t, err := template.New(st.Name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("configs: parse %s: %w", st.File, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("configs: render %s: %w", st.File, err)
	}
	return b.Bytes(), nil
}

// Render executes the named template with d.
func Render(name string, d Data) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name, d); err != nil {
		return nil, fmt.Errorf("configs: render %s: %w", name, err)
	}
	return b.Bytes(), nil
}
