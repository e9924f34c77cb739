package deploytest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder collects what checkLayout reports instead of failing the test.
type recorder struct {
	*testing.T
	errs []string
}

type fatal struct{}

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(f string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(f, a...)) }
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); panic(fatal{}) }
func (r *recorder) Fatal(a ...any)            { r.errs = append(r.errs, fmt.Sprint(a...)); panic(fatal{}) }
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Setenv(k, v string)        { r.T.Setenv(k, v) }
func (r *recorder) TempDir() string           { return r.T.TempDir() }
func (r *recorder) run(f func(reporter)) (errs []string) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(fatal); !ok {
				panic(p)
			}
		}
		errs = r.errs
	}()
	f(r)
	return
}

// TestCheckerCatchesViolations breaks the plain SQLite manifests one way
// at a time — each a mistake that would let traffic bypass Warden, weaken
// the pod or break the drain — and expects the checks to report it. The
// unmodified manifests pass (TestPlainManifests), so every report here is
// caused by its mutation.
func TestCheckerCatchesViolations(t *testing.T) {
	dir := filepath.Join("..", "kubernetes", "sqlite")
	orig := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		orig[filepath.Base(f)] = string(b)
	}
	type edit struct{ file, old, new string }
	for _, tc := range []struct {
		name  string
		edits []edit
		want  string
	}{
		{"model server declares a port", []edit{{"deployment.yaml", "        - name: model\n", "        - name: model\n          ports: [{containerPort: 8000}]\n"}}, "declares ports"},
		{"service targets the model port", []edit{{"service.yaml", "targetPort: gateway", "targetPort: 8000"}}, "not a Warden port"},
		{"model server on all interfaces", []edit{{"deployment.yaml", `"--host", "127.0.0.1"`, `"--host", "0.0.0.0"`}}, "bind 127.0.0.1"},
		{"route to another host", []edit{{"configmap.yaml", "http://127.0.0.1:8000", "http://vllm.models.svc:8000"}}, "127.0.0.1"},
		{"network policy without ports", []edit{{"networkpolicy.yaml", "    - ports:\n        - port: gateway\n          protocol: TCP\n", "    - {}\n"}}, "admits every port"},
		{"network policy on the admin port", []edit{{"networkpolicy.yaml", "port: gateway", "port: admin"}}, "data-path port"},
		{"no network policy", []edit{{"networkpolicy.yaml", "", ""}}, "0 NetworkPolicies"},
		{"writable root", []edit{{"deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"}}, "readOnlyRootFilesystem"},
		{"root allowed", []edit{{"deployment.yaml", "runAsNonRoot: true", "runAsNonRoot: false"}}, "runAsNonRoot"},
		{"privilege escalation", []edit{{"deployment.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"}}, "allowPrivilegeEscalation"},
		{"capabilities kept", []edit{{"deployment.yaml", `drop: ["ALL"]`, `drop: ["NET_RAW"]`}}, "capabilities"},
		{"no seccomp", []edit{{"deployment.yaml", "            seccompProfile:\n              type: RuntimeDefault\n", ""}, {"deployment.yaml", "        seccompProfile:\n          type: RuntimeDefault\n", ""}}, "seccomp"},
		{"not a native sidecar", []edit{{"deployment.yaml", "          restartPolicy: Always\n", ""}}, "native sidecar"},
		{"readiness on the liveness endpoint", []edit{{"deployment.yaml", "              path: /readyz\n", "              path: /healthz\n"}}, "readiness probe"},
		{"probe over http on a TLS listener", []edit{{"deployment.yaml", "              path: /readyz\n              port: admin\n              scheme: HTTPS", "              path: /readyz\n              port: admin\n              scheme: HTTP"}}, "readiness probe"},
		{"config by subPath", []edit{{"deployment.yaml", "              mountPath: /etc/warden/config\n", "              mountPath: /etc/warden/config\n              subPath: warden.yaml\n"}}, "subPath"},
		{"grace period too short", []edit{{"deployment.yaml", "terminationGracePeriodSeconds: 75", "terminationGracePeriodSeconds: 30"}}, "terminationGracePeriodSeconds"},
		{"no preStop on the model server", []edit{{"deployment.yaml", "          lifecycle:\n            # Keep", "          x-lifecycle:\n            # Keep"}}, "field"},
		{"preStop shorter than the drain", []edit{{"deployment.yaml", "seconds: 40", "seconds: 5"}}, "shorter than Warden's drain delay"},
		{"no drain delay", []edit{{"configmap.yaml", "      drain_delay: 10s\n", ""}}, "drain_delay"},
		{"secret as a literal", []edit{{"deployment.yaml", "            - name: MODEL_API_KEY\n              valueFrom:\n                secretKeyRef:\n                  name: model-api-key\n                  key: api-key\n", "            - name: MODEL_API_KEY\n              value: sk-live-123\n"}}, "not taken from a Secret"},
		{"config needs an env var the pod lacks", []edit{{"configmap.yaml", "${WARDEN_MASK_KEY}", "${WARDEN_MASK_KEY_TYPO}"}}, "WARDEN_MASK_KEY_TYPO is not set"},
		{"misspelled config key", []edit{{"configmap.yaml", "    timeouts:\n", "    timeout:\n"}}, "unknown key"},
		{"policy that does not compile", []edit{{"configmap.yaml", `any_group(principal, ["ml-users", "ml-admins"])`, `any_grup(principal, ["ml-users"])`}}, "policy does not load"},
		{"policy watch off", []edit{{"configmap.yaml", "      watch: true\n", "      watch: false\n"}}, "policy.watch"},
		{"two sqlite writers", []edit{{"deployment.yaml", "  replicas: 1\n", "  replicas: 2\n"}}, "one writer"},
		{"rolling sqlite", []edit{{"deployment.yaml", "    type: Recreate\n", "    type: RollingUpdate\n"}}, "one writer"},
		{"data on an emptyDir", []edit{{"deployment.yaml", "          persistentVolumeClaim:\n            claimName: warden-data\n", "          emptyDir: {}\n"}}, "PersistentVolumeClaim"},
		{"no PDB", []edit{{"pdb.yaml", "", ""}}, "0 PodDisruptionBudgets"},
		{"token mounted", []edit{{"deployment.yaml", "      automountServiceAccountToken: false\n", ""}}, "service account token"},
		{"latest image", []edit{{"deployment.yaml", "ghcr.io/wardenhq/warden:0.1.0", "ghcr.io/wardenhq/warden:latest"}}, "not pinned"},
		{"no resources", []edit{{"deployment.yaml", "          resources:\n            requests:\n              cpu: 500m\n              memory: 256Mi\n            limits:\n              cpu: \"2\"\n              memory: 1Gi\n", ""}}, "resources"},
		{"no TLS secret", []edit{{"deployment.yaml", "        - name: tls\n          secret:\n            secretName: warden-tls\n", "        - name: tls\n          emptyDir: {}\n"}}, "Secret"},
		{"listener port mismatch", []edit{{"configmap.yaml", "listen: 0.0.0.0:8443", "listen: 0.0.0.0:8080"}}, "is not the container's gateway port"},
		{"no tmp volume", []edit{{"deployment.yaml", "            - name: tmp\n              mountPath: /tmp\n", ""}}, "writable volume at /tmp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range orig {
				files[k] = v
			}
			for _, e := range tc.edits {
				if e.old == "" {
					delete(files, e.file)
					continue
				}
				if !strings.Contains(files[e.file], e.old) {
					t.Fatalf("mutation does not apply: %q not in %s", e.old, e.file)
				}
				files[e.file] = strings.Replace(files[e.file], e.old, e.new, 1)
			}
			r := &recorder{T: t}
			errs := r.run(func(rep reporter) {
				var b bundle
				for name, data := range files {
					if err := b.add(name, []byte(data)); err != nil {
						rep.Fatal(err)
					}
				}
				checkLayout(rep, "mutated", &b, layout{sidecar: true, tls: true})
			})
			for _, e := range errs {
				if strings.Contains(e, tc.want) {
					return
				}
			}
			t.Fatalf("not reported (want %q); reports: %q", tc.want, errs)
		})
	}
}
