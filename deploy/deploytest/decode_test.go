package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// certificate mirrors the part of cert-manager's Certificate (v1) the
// chart uses, so strict decoding catches a misspelled field there too.
type certificate struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		SecretName  string   `json:"secretName"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		DNSNames    []string `json:"dnsNames"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		Usages    []string `json:"usages"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// serviceMonitor mirrors the part of the Prometheus operator's
// ServiceMonitor (monitoring.coreos.com/v1) the chart uses.
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port      string         `json:"port"`
			Path      string         `json:"path"`
			Interval  string         `json:"interval"`
			Scheme    string         `json:"scheme"`
			TLSConfig map[string]any `json:"tlsConfig,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// bundle is every object of one layout, by kind.
type bundle struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	netpols         []*networkingv1.NetworkPolicy
	pdbs            []*policyv1.PodDisruptionBudget
	configMaps      []*corev1.ConfigMap
	pvcs            []*corev1.PersistentVolumeClaim
	serviceAccounts []*corev1.ServiceAccount
	certificates    []*certificate
	serviceMonitors []*serviceMonitor
	count           int
}

// splitDocs splits a multi-document YAML stream and drops documents with
// nothing but comments.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
		empty := true
		for _, l := range strings.Split(string(d), "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, d)
		}
	}
	return docs
}

// add decodes every document of data strictly into its API type: an
// unknown kind, apiVersion or field is an error.
func (b *bundle) add(source string, data []byte) error {
	for i, doc := range splitDocs(data) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return fmt.Errorf("%s document %d: %w", source, i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			o := new(appsv1.Deployment)
			b.deployments, obj = append(b.deployments, o), o
		case "v1 Service":
			o := new(corev1.Service)
			b.services, obj = append(b.services, o), o
		case "networking.k8s.io/v1 NetworkPolicy":
			o := new(networkingv1.NetworkPolicy)
			b.netpols, obj = append(b.netpols, o), o
		case "policy/v1 PodDisruptionBudget":
			o := new(policyv1.PodDisruptionBudget)
			b.pdbs, obj = append(b.pdbs, o), o
		case "v1 ConfigMap":
			o := new(corev1.ConfigMap)
			b.configMaps, obj = append(b.configMaps, o), o
		case "v1 PersistentVolumeClaim":
			o := new(corev1.PersistentVolumeClaim)
			b.pvcs, obj = append(b.pvcs, o), o
		case "v1 ServiceAccount":
			o := new(corev1.ServiceAccount)
			b.serviceAccounts, obj = append(b.serviceAccounts, o), o
		case "cert-manager.io/v1 Certificate":
			o := new(certificate)
			b.certificates, obj = append(b.certificates, o), o
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o := new(serviceMonitor)
			b.serviceMonitors, obj = append(b.serviceMonitors, o), o
		default:
			return fmt.Errorf("%s document %d: unexpected object %q %q", source, i, tm.APIVersion, tm.Kind)
		}
		if err := decodeStrict(doc, obj); err != nil {
			return fmt.Errorf("%s document %d (%s): %w", source, i, tm.Kind, err)
		}
		b.count++
	}
	return nil
}

// decodeStrict decodes one YAML document the way the API server does in
// strict mode: duplicate keys, unknown fields and fields that differ only
// in case (encoding/json would match those) are errors.
func decodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// TestStrictDecodingCatchesMistakes: the decoder really is strict — a
// misspelled field, a field at the wrong level, a wrong type and an
// unknown kind are all refused — so a passing chart test means something.
func TestStrictDecodingCatchesMistakes(t *testing.T) {
	const good = `apiVersion: apps/v1
kind: Deployment
metadata: {name: w}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: warden
          image: warden:1
          securityContext: {readOnlyRootFilesystem: true}
`
	var b bundle
	if err := b.add("good", []byte(good)); err != nil {
		t.Fatalf("a valid Deployment was refused: %v", err)
	}
	for name, bad := range map[string]string{
		"misspelled field": strings.Replace(good, "readOnlyRootFilesystem", "readOnlyRootFilesytem", 1),
		"wrong case":       strings.Replace(good, "readOnlyRootFilesystem", "readOnlyRootFileSystem", 1),
		"wrong level":      strings.Replace(good, "          image: warden:1\n", "          image: warden:1\n          runAsNonRoot: true\n", 1),
		"wrong type":       strings.Replace(good, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: yes please", 1),
		"duplicate key":    strings.Replace(good, "          image: warden:1\n", "          image: warden:1\n          image: warden:2\n", 1),
		"unknown kind":     strings.Replace(good, "kind: Deployment", "kind: Deploymnet", 1),
		"wrong group":      strings.Replace(good, "apiVersion: apps/v1", "apiVersion: extensions/v1beta1", 1),
	} {
		var b bundle
		if err := b.add(name, []byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
