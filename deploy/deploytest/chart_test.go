package deploytest

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"
)

const chartDir = "../helm/warden"

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// render renders the chart as `helm install warden -n ml -f values` would
// (schema validation included), on Kubernetes 1.31.
func render(t *testing.T, c *chart.Chart, overrides string) (map[string]string, error) {
	t.Helper()
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(overrides), &vals); err != nil {
		t.Fatalf("test values: %v", err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.31.0", Major: "1", Minor: "31"}
	rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{Name: "warden", Namespace: "ml", IsInstall: true, Revision: 1}, caps)
	if err != nil {
		return nil, err
	}
	// Strict: a template reading a value that does not exist fails.
	return engine.Engine{Strict: true}.Render(c, rv)
}

// matrix is every layout the chart offers.
var matrix = []struct {
	name   string
	values string
	want   layout
}{
	{"sidecar-sqlite-secret", ``, layout{sidecar: true, tls: true}},
	{"sidecar-sqlite-certmanager-metrics", `
tls: {certManager: {enabled: true, issuerRef: {name: internal-ca}}}
admin: {clientCASecret: {name: ops-ca}}
serviceMonitor: {enabled: true, tlsConfig: {ca: {secret: {name: warden-tls, key: ca.crt}}}}
modelServer: {apiKeySecret: {name: model-key}}
sqlite: {storageClassName: fast-ssd, size: 50Gi}
`, layout{sidecar: true, tls: true, metrics: true}},
	{"sidecar-postgres", `
store: postgres
replicas: 3
auditKeySecret: {name: warden-audit-key}
recordings: {kekSecret: {name: warden-recordings-kek}, s3: {endpoint: "https://s3.eu-west-1.amazonaws.com", bucket: warden-recordings, region: eu-west-1, credentialsSecret: {name: warden-s3}}}
modelServer: {apiKeySecret: {name: model-key}}
`, layout{sidecar: true, postgres: true, tls: true}},
	{"sidecar-sqlite-existing-claim-tls-off", `
tls: {enabled: false}
sqlite: {existingClaim: warden-audit}
networkPolicy: {from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: apps}}}]}
`, layout{sidecar: true}},
	{"gateway-sqlite-upstream-mtls", `
mode: gateway
gateway:
  upstream: https://vllm.models.svc.cluster.local:8443
  upstreamTLS: {caSecret: {name: models-ca}, clientCertSecret: {name: warden-client}, serverName: vllm.models.svc}
`, layout{tls: true}},
	{"gateway-postgres-certmanager-metrics", `
mode: gateway
store: postgres
replicas: 4
auditKeySecret: {name: warden-audit-key}
recordings: {kekSecret: {name: warden-recordings-kek}, s3: {endpoint: "http://minio.storage:9000", bucket: warden, pathStyle: true, credentialsSecret: {name: minio-warden}}}
tls: {certManager: {enabled: true, issuerRef: {name: internal-ca}}}
serviceMonitor: {enabled: true}
image: {digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
`, layout{postgres: true, tls: true, metrics: true}},
}

// TestChartLayouts renders every layout of the matrix, decodes every
// object strictly into the Kubernetes API types and checks the
// deployment invariants (checkLayout).
func TestChartLayouts(t *testing.T) {
	c := loadChart(t)
	for _, m := range matrix {
		t.Run(m.name, func(t *testing.T) {
			out, err := render(t, c, m.values)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			var b bundle
			names := make([]string, 0, len(out))
			for n := range out {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if filepath.Ext(n) != ".yaml" {
					continue
				}
				if err := b.add(n, []byte(out[n])); err != nil {
					t.Fatal(err)
				}
			}
			if b.count < 6 {
				t.Fatalf("only %d objects rendered", b.count)
			}
			checkLayout(t, m.name, &b, m.want)
			notes := out["warden/templates/NOTES.txt"]
			for _, w := range []string{"kubectl -n ml rollout status deployment/warden", "port-forward service/warden", "warden verify"} {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES.txt lacks %q:\n%s", w, notes)
				}
			}
		})
	}
}

// TestChartSchemaRejects: values.schema.json (or, for what a schema cannot
// say, the templates) refuses a bad value with a message naming it.
func TestChartSchemaRejects(t *testing.T) {
	c := loadChart(t)
	for _, tc := range []struct{ name, values, want string }{
		{"unknown mode", `mode: daemonset`, "mode"},
		{"replicas not a number", `replicas: three`, "replicas"},
		{"sqlite with replicas", `replicas: 3`, "replicas"},
		{"tls 1.1", `tls: {minVersion: "1.1"}`, "minVersion"},
		{"model server declaring ports", `modelServer: {container: {name: m, image: x:1, ports: [{containerPort: 8000}]}}`, "container"},
		{"latest tag", `image: {tag: latest}`, "tag"},
		{"misspelled key", `replica: 2`, "replica"},
		{"postgres without a signing key", `{store: postgres, replicas: 2}`, "auditKeySecret"},
		{"postgres without a recordings key", `{store: postgres, replicas: 2, auditKeySecret: {name: k}, recordings: {s3: {endpoint: "https://s3", bucket: b, credentialsSecret: {name: c}}}}`, "kekSecret"},
		{"recordings mode misspelled", `recordings: {mode: strictly}`, "mode"},
		{"bad upstream", `{mode: gateway, gateway: {upstream: "ftp://models"}}`, "upstream"},
		{"tls without a certificate source", `tls: {secretName: ""}`, "secretName"},
		{"drain delay as a string", `timeouts: {drainDelaySeconds: "10s"}`, "drainDelaySeconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, c, tc.values)
			if err == nil {
				t.Fatalf("accepted: %s", tc.values)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not name %q: %v", tc.want, err)
			}
		})
	}
}

// TestChartKubeVersion: the chart asks for Kubernetes 1.29 or later, where
// native sidecars are on by default.
func TestChartKubeVersion(t *testing.T) {
	c := loadChart(t)
	for v, ok := range map[string]bool{"1.28.9": false, "1.29.0": true, "1.33.1": true} {
		if got := chartutil.IsCompatibleRange(c.Metadata.KubeVersion, v); got != ok {
			t.Errorf("Kubernetes %s: compatible %v, want %v", v, got, ok)
		}
	}
}
