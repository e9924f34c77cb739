// Package runner is the benchmark harness: it starts the fake upstream,
// the loopback OIDC issuer and every target (direct, the do-nothing Go
// floor proxy, nginx, and Warden in stages), measures them interleaved —
// A B C D, A B C D … — with repetitions, and writes a markdown and a JSON
// report with ratios to the direct path and to the floor from the same
// run.
//
// Guarantees: all load goes to 127.0.0.1 and every phase is bounded in
// time; a target that cannot start (a Warden stage whose config the binary
// rejects, nginx not installed) is reported as unavailable instead of
// failing the run; a measurement with any non-2xx answer, transport error
// or truncated stream is marked invalid in the report. It stops every
// process it started, by its process id, and no other.
package runner
