// Package keyfile decides whether a secret key file is private enough to
// load: readable by its owner only, or additionally by the process's own
// group — what a Kubernetes Secret volume with fsGroup gives a non-root
// container. The audit signing key and the recordings' key-encryption key
// follow the same rule.
//
// It never reads or logs a key's contents.
package keyfile
