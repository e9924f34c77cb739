// Package configs holds the Warden configuration of every benchmark stage
// as a template, so each stage is an ordinary config file (rendered into
// the run's temporary directory, copied next to the results) and never a
// code path that exists only for benchmarks.
//
// Stages build on each other: passthrough (anonymous, no audit), then
// identity (OIDC bearer tokens), policy (CEL rules), masking (policy picks
// the "default" masking profile) and full (durable audit on top).
package configs
