package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// fiftyRules builds a policy of 50 realistic rules where only the last
// one matches the benchmark input, so every rule is evaluated.
func fiftyRules(tb testing.TB) *Policy {
	tb.Helper()
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n")
	shapes := []string{
		`principal.in_group("team-%d") && request.path.glob("/v1/chat/**")`,
		`request.method == "DELETE" && request.path.glob("/v1/files/%d/*")`,
		`has(body.model) && body.model == "model-%d"`,
		`any_group(principal, ["g%d", "h%d"]) && route.name == "openai"`,
		`principal.subject == "svc-%d" && principal.kind == "service"`,
		`request.headers["x-tenant"] == "t%d"`,
	}
	for i := 0; i < 49; i++ {
		s := shapes[i%len(shapes)]
		s = strings.ReplaceAll(s, "%d", fmt.Sprint(i))
		fmt.Fprintf(&b, "  - name: r%d\n    when: '%s'\n    action: deny\n", i, s)
	}
	b.WriteString("  - name: chat\n    when: 'principal.in_group(\"ml-users\") && request.method == \"POST\" && request.path == \"/v1/chat/completions\" && has(body.model) && body.model in [\"warden-demo-small\", \"warden-demo-large\"]'\n    action: allow\n    mask: default\n")
	p, err := Load("bench.yaml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func benchInput() *Input {
	return &Input{
		Principal: &identity.Principal{Issuer: "https://idp", Subject: "alice", Kind: identity.KindUser, Groups: []string{"ml-users", "staff"}},
		Request:   Request{Method: "POST", Path: "/v1/chat/completions", Host: "gw", Headers: map[string]string{"x-tenant": "acme"}},
		Route:     Route{Name: "openai", Profile: "openai"},
		Body:      map[string]any{"model": "warden-demo-small", "stream": false, "message_count": 2},
		Now:       time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
	}
}

func BenchmarkDecide50Rules(b *testing.B) {
	p := fiftyRules(b)
	in := benchInput()
	if d := p.Decide(in); d.Rule != "chat" {
		b.Fatalf("decided by %q (%s), want chat", d.Rule, d.EvalError)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p.Decide(in)
	}
}

// BenchmarkDecide1Rule is the baseline: the same input against only the
// deciding rule, i.e. the fixed cost of a decision.
func BenchmarkDecide1Rule(b *testing.B) {
	p, err := Load("bench1.yaml", []byte("version: 1\nrules:\n  - name: chat\n    when: 'principal.in_group(\"ml-users\") && request.method == \"POST\" && request.path == \"/v1/chat/completions\" && has(body.model) && body.model in [\"warden-demo-small\", \"warden-demo-large\"]'\n    action: allow\n    mask: default\n"))
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	if d := p.Decide(in); d.Rule != "chat" {
		b.Fatalf("decided by %q", d.Rule)
	}
	b.ReportAllocs()
	for b.Loop() {
		p.Decide(in)
	}
}

// BenchmarkDecide50RulesParallel measures throughput with all CPUs
// deciding at once (the pooled activation must not serialise them).
func BenchmarkDecide50RulesParallel(b *testing.B) {
	p := fiftyRules(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		in := benchInput()
		for pb.Next() {
			p.Decide(in)
		}
	})
}
