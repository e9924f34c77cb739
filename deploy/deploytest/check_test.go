package deploytest

import (
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/policy"
)

// layout is what a rendering is expected to be.
type layout struct {
	sidecar  bool // Warden beside the model server (else a gateway Deployment)
	postgres bool // N replicas on PostgreSQL (else one on SQLite)
	tls      bool // TLS on Warden's listeners
	metrics  bool // ServiceMonitor and the admin port open to Prometheus
}

// reporter is the part of *testing.T the checks use; the mutation test
// substitutes a recorder to see that each violation is reported.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
	Logf(format string, args ...any)
	Setenv(key, value string)
	TempDir() string
}

var _ reporter = (*testing.T)(nil)

// findings collects the invariant violations of one layout.
type findings struct {
	t      reporter
	source string
}

func (f findings) errorf(format string, args ...any) {
	f.t.Helper()
	f.t.Errorf("%s: "+format, append([]any{f.source}, args...)...)
}

// checkLayout asserts every deployment invariant on b.
func checkLayout(t reporter, source string, b *bundle, want layout) {
	t.Helper()
	f := findings{t, source}
	if len(b.deployments) != 1 {
		t.Fatalf("%s: %d Deployments, want 1", source, len(b.deployments))
	}
	d := b.deployments[0]
	ps := &d.Spec.Template.Spec
	podLabels := d.Spec.Template.Labels
	if sel, err := metav1.LabelSelectorAsMap(d.Spec.Selector); err != nil || !subset(sel, podLabels) {
		f.errorf("the Deployment's selector %v does not match its pod labels %v", d.Spec.Selector, podLabels)
	}

	// Where Warden and the model server run.
	warden, model := findContainers(f, ps, want.sidecar)
	if warden == nil {
		return
	}
	wardenPorts := map[string]int32{}
	for _, p := range warden.Ports {
		wardenPorts[p.Name] = p.ContainerPort
	}
	if wardenPorts["gateway"] == 0 || wardenPorts["admin"] == 0 {
		f.errorf("warden container ports %v, want named ports gateway and admin", warden.Ports)
	}
	resolve := func(p intstr.IntOrString) (int32, bool) {
		if p.Type == intstr.String {
			n, ok := wardenPorts[p.StrVal]
			return n, ok
		}
		for _, n := range wardenPorts {
			if n == p.IntVal {
				return n, true
			}
		}
		return 0, false
	}

	// The embedded configuration: it loads, and it agrees with the pod.
	cfg, drain := loadConfig(f, b, ps, warden)
	modelPort := int32(0)
	if cfg != nil {
		checkConfig(f, cfg, ps, warden, wardenPorts, want)
		if want.sidecar {
			u, err := url.Parse(cfg.Routes[0].Upstream)
			if err != nil || u.Hostname() != "127.0.0.1" {
				f.errorf("sidecar route upstream %q, want the model server on 127.0.0.1", cfg.Routes[0].Upstream)
			} else {
				n, _ := strconv.Atoi(u.Port())
				modelPort = int32(n)
			}
		}
	}

	// The model server is reachable only through Warden.
	if want.sidecar && model != nil {
		if len(model.Ports) > 0 {
			f.errorf("the model server declares ports %v; it must listen on 127.0.0.1 only", model.Ports)
		}
		if !slices.Contains(append(append([]string{}, model.Args...), model.Command...), "127.0.0.1") && !envHas(model, "127.0.0.1") {
			f.errorf("the model server is not told to bind 127.0.0.1 (args %q)", model.Args)
		}
		if model.Lifecycle == nil || model.Lifecycle.PreStop == nil || model.Lifecycle.PreStop.Sleep == nil {
			f.errorf("the model server has no preStop sleep: it would stop while Warden still forwards to it")
		} else if s := model.Lifecycle.PreStop.Sleep.Seconds; time.Duration(s)*time.Second < drain {
			f.errorf("model preStop sleep %ds is shorter than Warden's drain delay %s", s, drain)
		}
		if wardenPorts["gateway"] == modelPort || wardenPorts["admin"] == modelPort {
			f.errorf("Warden's ports %v collide with the model port %d", wardenPorts, modelPort)
		}
	}
	grace := int64(30)
	if ps.TerminationGracePeriodSeconds != nil {
		grace = *ps.TerminationGracePeriodSeconds
	}
	if cfg != nil {
		need := drain + cfg.Timeouts.Shutdown
		if want.sidecar && model != nil && model.Lifecycle != nil && model.Lifecycle.PreStop != nil && model.Lifecycle.PreStop.Sleep != nil {
			need = time.Duration(model.Lifecycle.PreStop.Sleep.Seconds)*time.Second + drain
		}
		if time.Duration(grace)*time.Second <= need {
			f.errorf("terminationGracePeriodSeconds %d does not cover drain (%s) and shutdown: need more than %s", grace, drain, need)
		}
	}

	// Services: Warden's data-path port only (and the admin port for
	// Prometheus), never the model server's.
	var mainSvc int
	for _, s := range b.services {
		if !subset(s.Spec.Selector, podLabels) || len(s.Spec.Selector) == 0 {
			f.errorf("Service %s selector %v does not select the pods %v", s.Name, s.Spec.Selector, podLabels)
		}
		for _, p := range s.Spec.Ports {
			n, ok := resolve(p.TargetPort)
			switch {
			case !ok:
				f.errorf("Service %s port %s targets %s, which is not a Warden port", s.Name, p.Name, p.TargetPort.String())
			case modelPort != 0 && (n == modelPort || p.Port == modelPort):
				f.errorf("Service %s exposes the model server's port %d", s.Name, modelPort)
			case n == wardenPorts["gateway"]:
				mainSvc++
			case n == wardenPorts["admin"] && !want.metrics:
				f.errorf("Service %s exposes the admin port without a ServiceMonitor", s.Name)
			}
		}
	}
	if mainSvc != 1 {
		f.errorf("%d Service ports reach Warden's data-path port, want exactly 1", mainSvc)
	}

	// NetworkPolicy: ingress only on Warden's ports.
	if len(b.netpols) != 1 {
		f.errorf("%d NetworkPolicies, want 1", len(b.netpols))
	}
	for _, np := range b.netpols {
		sel, err := metav1.LabelSelectorAsMap(&np.Spec.PodSelector)
		if err != nil || len(sel) == 0 || !subset(sel, podLabels) {
			f.errorf("NetworkPolicy %s does not select the pods", np.Name)
		}
		if !slices.Contains(np.Spec.PolicyTypes, "Ingress") {
			f.errorf("NetworkPolicy %s does not restrict ingress", np.Name)
		}
		allowed := map[int32]bool{}
		for i, r := range np.Spec.Ingress {
			if len(r.Ports) == 0 {
				f.errorf("NetworkPolicy %s ingress rule %d admits every port", np.Name, i)
			}
			for _, p := range r.Ports {
				if p.Port == nil {
					f.errorf("NetworkPolicy %s ingress rule %d admits every port", np.Name, i)
					continue
				}
				n, ok := resolve(*p.Port)
				if !ok || (modelPort != 0 && n == modelPort) {
					f.errorf("NetworkPolicy %s admits port %s, which is not Warden's", np.Name, p.Port.String())
				}
				allowed[n] = true
			}
		}
		if !allowed[wardenPorts["gateway"]] {
			f.errorf("NetworkPolicy %s does not admit Warden's data-path port", np.Name)
		}
		if allowed[wardenPorts["admin"]] != want.metrics {
			f.errorf("NetworkPolicy %s admits the admin port: %v, want %v (only for Prometheus)", np.Name, allowed[wardenPorts["admin"]], want.metrics)
		}
	}

	// Probes on the admin listener.
	scheme := corev1.URISchemeHTTP
	if want.tls {
		scheme = corev1.URISchemeHTTPS
	}
	for _, pr := range []struct {
		name, path string
		p          *corev1.Probe
	}{{"liveness", "/healthz", warden.LivenessProbe}, {"readiness", "/readyz", warden.ReadinessProbe}, {"startup", "/healthz", warden.StartupProbe}} {
		if pr.p == nil || pr.p.HTTPGet == nil {
			f.errorf("warden has no %s probe", pr.name)
			continue
		}
		g := pr.p.HTTPGet
		if n, ok := resolve(g.Port); g.Path != pr.path || !ok || n != wardenPorts["admin"] || g.Scheme != scheme {
			f.errorf("warden %s probe %s %s on %s, want %s %s on the admin port", pr.name, g.Scheme, g.Path, g.Port.String(), scheme, pr.path)
		}
	}

	// Locked down.
	checkSecurity(f, ps, warden)
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		f.errorf("the pod mounts a service account token; Warden does not call the Kubernetes API")
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		f.errorf("the pod shares host namespaces")
	}
	if warden.Resources.Requests.Cpu().IsZero() || warden.Resources.Requests.Memory().IsZero() || warden.Resources.Limits.Memory().IsZero() {
		f.errorf("warden resources %v: want cpu and memory requests and a memory limit", warden.Resources)
	}
	if img := warden.Image; strings.HasSuffix(img, ":latest") || !strings.ContainsAny(path.Base(img), ":@") {
		f.errorf("warden image %q is not pinned to a tag or digest", img)
	}
	for _, e := range warden.Env {
		up := strings.ToUpper(e.Name)
		secretish := strings.Contains(up, "KEY") || strings.Contains(up, "DSN") || strings.Contains(up, "TOKEN") || strings.Contains(up, "PASSWORD") || strings.Contains(up, "SECRET")
		if secretish && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			f.errorf("env %s is not taken from a Secret", e.Name)
		}
	}

	// Disruption budget.
	if len(b.pdbs) != 1 {
		f.errorf("%d PodDisruptionBudgets, want 1", len(b.pdbs))
	}
	for _, p := range b.pdbs {
		sel, err := metav1.LabelSelectorAsMap(p.Spec.Selector)
		if err != nil || len(sel) == 0 || !subset(sel, podLabels) {
			f.errorf("PodDisruptionBudget %s does not select the pods", p.Name)
		}
		if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
			f.errorf("PodDisruptionBudget %s sets no budget", p.Name)
		}
	}

	// Replicas and storage.
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	data := volumeAt(ps, warden, "/var/lib/warden")
	if want.postgres {
		if replicas < 2 || d.Spec.Strategy.Type == "Recreate" {
			f.errorf("postgres layout: %d replicas, strategy %s; want several, rolling", replicas, d.Spec.Strategy.Type)
		}
	} else {
		if replicas != 1 || d.Spec.Strategy.Type != "Recreate" {
			f.errorf("sqlite layout: %d replicas, strategy %q; want 1, Recreate (one writer)", replicas, d.Spec.Strategy.Type)
		}
		if data == nil || data.PersistentVolumeClaim == nil {
			f.errorf("sqlite layout: the data dir is not on a PersistentVolumeClaim")
		} else if len(b.pvcs) == 1 && b.pvcs[0].Name != data.PersistentVolumeClaim.ClaimName {
			f.errorf("the PVC %s is not the one mounted (%s)", b.pvcs[0].Name, data.PersistentVolumeClaim.ClaimName)
		}
	}

	// TLS source and monitoring.
	if want.tls {
		v := volumeAt(ps, warden, "/etc/warden/tls")
		if v == nil || v.Secret == nil || v.Secret.SecretName == "" {
			f.errorf("TLS on, but no Secret mounted for the certificate")
		} else {
			for _, c := range b.certificates {
				if c.Spec.SecretName != v.Secret.SecretName {
					f.errorf("cert-manager writes %s, the pod mounts %s", c.Spec.SecretName, v.Secret.SecretName)
				}
			}
		}
	}
	if (len(b.serviceMonitors) == 1) != want.metrics {
		f.errorf("%d ServiceMonitors with metrics %v", len(b.serviceMonitors), want.metrics)
	}
	for _, sm := range b.serviceMonitors {
		sel, _ := metav1.LabelSelectorAsMap(&sm.Spec.Selector)
		found := false
		for _, s := range b.services {
			if subset(sel, s.Labels) {
				for _, p := range s.Spec.Ports {
					if len(sm.Spec.Endpoints) > 0 && p.Name == sm.Spec.Endpoints[0].Port {
						if n, _ := resolve(p.TargetPort); n == wardenPorts["admin"] {
							found = true
						}
					}
				}
			}
		}
		if !found {
			f.errorf("ServiceMonitor %s does not reach Warden's admin port", sm.Metadata.Name)
		}
	}
}

// findContainers returns the Warden container and the model server's.
// In sidecar mode Warden must be a native sidecar: an init container with
// restartPolicy Always (so it starts before the model server and stops
// after it), with a startup probe gating the model server's start.
func findContainers(f findings, ps *corev1.PodSpec, sidecar bool) (warden, model *corev1.Container) {
	f.t.Helper()
	if sidecar {
		for i := range ps.InitContainers {
			c := &ps.InitContainers[i]
			if c.Name == "warden" {
				warden = c
				if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
					f.errorf("warden is an init container without restartPolicy: Always (not a native sidecar)")
				}
				if c.StartupProbe == nil {
					f.errorf("the warden sidecar has no startup probe: the model server could start before Warden serves")
				}
				if i != 0 {
					f.errorf("warden is init container %d; it must start first", i)
				}
			}
		}
		if len(ps.Containers) != 1 {
			f.errorf("sidecar layout: %d main containers, want the model server only", len(ps.Containers))
		} else {
			model = &ps.Containers[0]
		}
		for _, c := range ps.Containers {
			if c.Name == "warden" {
				f.errorf("warden is a main container in the sidecar layout: it would not outlive the model server")
			}
		}
	} else {
		for i := range ps.Containers {
			if ps.Containers[i].Name == "warden" {
				warden = &ps.Containers[i]
			}
		}
	}
	if warden == nil {
		f.errorf("no warden container")
	}
	return warden, model
}

// checkSecurity: Warden runs as non-root with a read-only root
// filesystem, no privilege escalation, no capabilities and the runtime's
// seccomp profile — container settings override the pod's.
func checkSecurity(f findings, ps *corev1.PodSpec, c *corev1.Container) {
	f.t.Helper()
	pod := ps.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		f.errorf("warden has no securityContext")
		return
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		f.errorf("warden: runAsNonRoot is not true")
	}
	if u := sc.RunAsUser; u != nil && *u == 0 {
		f.errorf("warden runs as uid 0")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		f.errorf("warden: readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		f.errorf("warden: allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		f.errorf("warden is privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		f.errorf("warden: capabilities %v, want drop ALL and add none", sc.Capabilities)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil {
		seccomp = pod.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		f.errorf("warden: seccomp profile %v, want RuntimeDefault", seccomp)
	}
	// A read-only root filesystem needs writable mounts for what Warden
	// writes: its data dir and the temporary directory.
	for _, dir := range []string{"/var/lib/warden", "/tmp"} {
		if v := volumeAt(ps, c, dir); v == nil || (v.EmptyDir == nil && v.PersistentVolumeClaim == nil) {
			f.errorf("warden has no writable volume at %s", dir)
		}
	}
}

// loadConfig finds the ConfigMap the --config argument names, checks it
// is mounted as a directory (so the kubelet's symlink swap reaches
// Warden), sets the environment the container gives Warden, and loads
// warden.yaml with Warden's own strict loader and the policy with its
// policy loader. It returns the config and the drain delay.
func loadConfig(f findings, b *bundle, ps *corev1.PodSpec, c *corev1.Container) (*config.Config, time.Duration) {
	f.t.Helper()
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		f.errorf("warden args %q: no --config", c.Args)
		return nil, 0
	}
	cfgPath := c.Args[i+1]
	dir := path.Dir(cfgPath)
	var mount *corev1.VolumeMount
	for j := range c.VolumeMounts {
		if c.VolumeMounts[j].MountPath == dir {
			mount = &c.VolumeMounts[j]
		}
	}
	if mount == nil {
		f.errorf("nothing is mounted at %s", dir)
		return nil, 0
	}
	if mount.SubPath != "" || mount.SubPathExpr != "" {
		f.errorf("the config is mounted with subPath: the kubelet never updates it, so the policy cannot reload")
	}
	var cmName string
	for _, v := range ps.Volumes {
		if v.Name == mount.Name && v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
		}
	}
	var cm *corev1.ConfigMap
	for _, m := range b.configMaps {
		if m.Name == cmName {
			cm = m
		}
	}
	if cm == nil {
		f.errorf("the config volume is not the ConfigMap of this layout (%q)", cmName)
		return nil, 0
	}
	raw, ok := cm.Data[path.Base(cfgPath)]
	if !ok {
		f.errorf("ConfigMap %s has no %s", cm.Name, path.Base(cfgPath))
		return nil, 0
	}

	// Every ${VAR} in the config must come from the container's env.
	for _, e := range c.Env {
		val := e.Value
		if e.ValueFrom != nil {
			val = "from-" + e.Name + "-0123456789abcdef"
			if e.Name == "WARDEN_AUDIT_DSN" {
				val = "postgres://warden@postgres.db.svc:5432/warden?sslmode=verify-full"
			}
		}
		f.t.Setenv(e.Name, val)
	}

	// The drain delay (timeouts.drain_delay) is checked against the
	// grace period; see drainDelay.
	drain, text := drainDelay(f, raw)

	// Files the config names are given as the pod mounts them; the test
	// writes the policy where the config expects it so the loader can
	// compile it.
	tmp := f.t.TempDir()
	mountRoot := filepath.Join(tmp, "root")
	rewrite := func(p string) string { return filepath.Join(mountRoot, filepath.FromSlash(p)) }
	cfg, err := config.Parse(cfgPath, []byte(text))
	if err != nil {
		f.errorf("the embedded warden.yaml does not load: %v", err)
		return nil, drain
	}
	if cfg.Policy == nil {
		f.errorf("warden.yaml has no policy section")
		return cfg, drain
	}
	pf := cfg.Policy.File
	if path.Dir(pf) != dir {
		f.errorf("policy.file %s is not in the config mount %s", pf, dir)
	} else if pol, ok := cm.Data[path.Base(pf)]; !ok {
		f.errorf("ConfigMap %s has no %s", cm.Name, path.Base(pf))
	} else {
		p := rewrite(pf)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(pol), 0o600); err != nil {
			f.t.Fatal(err)
		}
		if _, err := policy.LoadFile(p); err != nil {
			f.errorf("the embedded policy does not load: %v", err)
		}
	}
	if !cfg.Policy.WatchEnabled() {
		f.errorf("policy.watch is off: a ConfigMap update would not reload the policy")
	}
	return cfg, drain
}

// drainDelay reads timeouts.drain_delay from the raw config: it must be
// set (positive) so that the Service's endpoints drain before the
// listeners close; the value is checked against the grace period. The
// config is then loaded strictly, the key included.
func drainDelay(f findings, raw string) (time.Duration, string) {
	f.t.Helper()
	var doc struct {
		Timeouts map[string]any `json:"timeouts"`
	}
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		f.errorf("warden.yaml: %v", err)
		return 0, raw
	}
	s, _ := doc.Timeouts["drain_delay"].(string)
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		f.errorf("warden.yaml: timeouts.drain_delay %q, want a positive duration matching the Service's endpoint removal", s)
	}
	return d, raw
}

// checkConfig: the listeners are the container's ports, TLS files and
// the data dir are where the pod mounts them.
func checkConfig(f findings, cfg *config.Config, ps *corev1.PodSpec, c *corev1.Container, ports map[string]int32, want layout) {
	f.t.Helper()
	for _, l := range []struct{ key, addr, port string }{{"listen", cfg.Listen, "gateway"}, {"admin_listen", cfg.AdminListen, "admin"}} {
		_, p, err := net.SplitHostPort(l.addr)
		if n, _ := strconv.Atoi(p); err != nil || int32(n) != ports[l.port] {
			f.errorf("%s %s is not the container's %s port %d", l.key, l.addr, l.port, ports[l.port])
		}
	}
	if (cfg.TLS != nil) != want.tls || (cfg.AdminTLS != nil) != want.tls {
		f.errorf("tls %v admin_tls %v, want TLS %v on both listeners", cfg.TLS != nil, cfg.AdminTLS != nil, want.tls)
	}
	secretFile := func(key, file string) {
		v := volumeAt(ps, c, path.Dir(file))
		if v == nil || v.Secret == nil {
			f.errorf("%s %s is not on a mounted Secret", key, file)
		}
	}
	if cfg.TLS != nil {
		secretFile("tls.cert_file", cfg.TLS.CertFile)
		secretFile("tls.key_file", cfg.TLS.KeyFile)
	}
	if cfg.AdminTLS != nil && cfg.AdminTLS.ClientCAFile != "" {
		secretFile("admin_tls.client_ca_file", cfg.AdminTLS.ClientCAFile)
		if cfg.AdminTLS.ClientAuth != "require_except_probes" {
			f.errorf("admin client certificates with client_auth %q would fail the kubelet's probes", cfg.AdminTLS.ClientAuth)
		}
	}
	for _, r := range cfg.Routes {
		if t := r.UpstreamTLS; t != nil {
			for _, p := range []string{t.CAFile, t.CertFile, t.KeyFile} {
				if p != "" {
					secretFile("routes.upstream_tls", p)
				}
			}
		}
	}
	if volumeAt(ps, c, cfg.DataDir) == nil {
		f.errorf("data_dir %s is not a mounted volume", cfg.DataDir)
	}
	if want.postgres {
		if cfg.Audit.Store != "postgres" || !strings.HasPrefix(cfg.Audit.DSN, "postgres://") {
			f.errorf("postgres layout: audit store %q", cfg.Audit.Store)
		}
		// Every replica must sign with the same key and mask with the
		// same fingerprint key.
		secretFile("audit.signing_key_file", cfg.Audit.SigningKeyFile)
		if cfg.Masking == nil || cfg.Masking.Key == "" {
			f.errorf("postgres layout: masking.key is not set (replicas would fingerprint differently)")
		}
		// Recordings: one S3 bucket and one catalogue for every replica,
		// one key-encryption key from a Secret (a KEK created in each
		// pod's emptyDir would make other replicas' recordings unreadable).
		if r := cfg.Recordings; r.Store != "s3" || r.Catalog != "postgres" {
			f.errorf("postgres layout: recordings store %q catalog %q, want s3 and postgres (shared by the replicas)", r.Store, r.Catalog)
		} else {
			secretFile("recordings.key_file", r.KeyFile)
			if r.S3.SecretKeyFile != "" {
				secretFile("recordings.s3.secret_key_file", r.S3.SecretKeyFile)
			}
		}
	} else if cfg.Audit.Store != "sqlite" {
		f.errorf("sqlite layout: audit store %q", cfg.Audit.Store)
	}
}

// volumeAt returns the volume mounted in c at dir.
func volumeAt(ps *corev1.PodSpec, c *corev1.Container, dir string) *corev1.Volume {
	for _, m := range c.VolumeMounts {
		if m.MountPath == dir {
			for i := range ps.Volumes {
				if ps.Volumes[i].Name == m.Name {
					return &ps.Volumes[i]
				}
			}
		}
	}
	return nil
}

func envHas(c *corev1.Container, s string) bool {
	for _, e := range c.Env {
		if strings.Contains(e.Value, s) {
			return true
		}
	}
	return false
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
