package audit

import (
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// BenchmarkRequestEntries measures the request's side of the audit path
// for one proxied chat completion, as the gateway builds it: the
// admission and completion entries (principal, decision, redacted
// params, mask actions, hashes) each given its id and time and encoded
// canonically by Log.prepare. One op is both entries; allocs/op is what
// a request allocates for them; cpu-µs/op is the process's CPU time per
// op (getrusage: the GC's work on other threads included), steadier
// than ns/op on a shared machine. bench/enc-compare.sh runs it against a
// base revision.
func BenchmarkRequestEntries(b *testing.B) {
	l := &Log{now: time.Now, instance: "gw-1"}
	p := &identity.Principal{Issuer: "https://idp.example.com", Subject: "alice", Kind: "user", Name: "Alice",
		Groups: []string{"ml-users", "staff"}, AuthMethod: "oidc", CredentialID: "kid-1", Email: "alice@example.com"}
	const hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	build := func(kind string) *Entry {
		return &Entry{Kind: kind, RequestID: "3f0c9a1b2c3d4e5f60718293a4b5c6d7", Instance: "gw-1", Route: "openai",
			Method: "POST", Path: "/v1/chat/completions", Model: "warden-demo-small", RequestSHA256: hash, Principal: p,
			Decision: &Decision{Action: "allow", Rule: "chat-approved-models", PolicyVersion: "sha256:" + hash}}
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		adm := build(KindRequestAdmitted)
		adm.BytesIn = 1834
		adm.Params = map[string]any{"model": "warden-demo-small", "stream": false, "message_count": 3.0,
			"max_tokens": 256.0, "temperature": 0.2, "user": "[redacted]"}
		if _, err := l.prepare(adm); err != nil {
			b.Fatal(err)
		}
		done := build(KindRequestCompleted)
		done.Status, done.BytesIn, done.BytesOut = 200, 1834, 912
		done.ResponseSHA256, done.Upstream, done.Gateway = hash, 1843*time.Microsecond, 212*time.Microsecond
		done.Masking = []MaskAction{{Rule: "emails", Entity: "EMAIL", Location: "response:choices.message.content", Count: 2, Fingerprint: "hmac:9f86d081884c7d65"},
			{Rule: "cards", Entity: "CREDIT_CARD", Location: "response:choices.message.content", Count: 1, Fingerprint: "hmac:60303ae22b998861"}}
		done.Outcome = OutcomeOK
		if _, err := l.prepare(done); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
