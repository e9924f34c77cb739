// Package deploytest holds the tests of Warden's Kubernetes deployment:
// the Helm chart (deploy/helm/warden), rendered with the Helm library for
// every layout in a values matrix, and the plain manifests
// (deploy/kubernetes). Every object is decoded strictly into the
// Kubernetes API types (an unknown or misspelled field fails) and checked
// against the invariants a sidecar deployment must keep: the model server
// is reachable only through Warden, the pod is locked down, probes and
// drain are set, the embedded warden.yaml and policy load.
//
// It is its own Go module's package (github.com/wardenhq/warden/deploy),
// so the Helm and Kubernetes libraries never enter the warden binary's
// dependency graph. It has no non-test code.
package deploytest
