package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

func mustLoad(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Load("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func alice() *identity.Principal {
	return &identity.Principal{
		Issuer: "https://idp.example", Subject: "alice", Kind: identity.KindUser,
		Name: "Alice", Email: "alice@example.com", Groups: []string{"ml-users", "staff"},
		Claims: map[string]any{"department": "research", "level": 3.0}, AuthMethod: "oidc",
	}
}

func TestRuleOrderingFirstMatchWins(t *testing.T) {
	const src = `
version: 1
rules:
  - name: block-large
    when: body.model == "large"
    action: deny
    reason: large model is closed
  - name: users
    when: principal.in_group("ml-users")
    action: allow
    mask: default
    log: hash_only
  - name: never-reached
    when: "true"
    action: deny
`
	p := mustLoad(t, src)
	tests := []struct {
		name       string
		model      string
		groups     []string
		wantAction Action
		wantRule   string
		wantReason string
	}{
		{"earlier deny beats later allow", "large", []string{"ml-users"}, ActionDeny, "block-large", "large model is closed"},
		{"allow when earlier rule does not match", "small", []string{"ml-users"}, ActionAllow, "users", ""},
		{"catch-all after", "small", []string{"other"}, ActionDeny, "never-reached", "denied by policy rule never-reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Input{Principal: &identity.Principal{Subject: "x", Groups: tt.groups}, Body: map[string]any{"model": tt.model}}
			d := p.Decide(in)
			if d.Action != tt.wantAction || d.Rule != tt.wantRule || d.Reason != tt.wantReason {
				t.Fatalf("got %s by %q (%q), want %s by %q (%q)", d.Action, d.Rule, d.Reason, tt.wantAction, tt.wantRule, tt.wantReason)
			}
			if d.Version != p.Version() {
				t.Errorf("decision version %q, policy %q", d.Version, p.Version())
			}
			if d.Rule == "users" && (d.Mask != "default" || d.Log != LogHashOnly) {
				t.Errorf("mask/log = %q/%q, want default/hash_only", d.Mask, d.Log)
			}
		})
	}
}

func TestDefaultDeny(t *testing.T) {
	p := mustLoad(t, `
version: 1
rules:
  - name: only-admins
    when: principal.in_group("ml-admins")
    action: allow
`)
	d := p.Decide(&Input{Principal: alice()})
	if d.Action != ActionDeny || d.Rule != DefaultRuleName || d.Reason != DefaultDenyReason {
		t.Fatalf("got %+v, want default deny", d)
	}
	// A nil principal must not panic and is denied.
	if d := p.Decide(&Input{}); d.Action != ActionDeny {
		t.Fatalf("nil principal: got %+v", d)
	}
}

// TestVariables checks each CEL variable and helper against an input
// where the expression must be true, and a variant where it must be false.
func TestVariables(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	base := func() *Input {
		return &Input{
			Principal: alice(),
			Request: Request{
				Method: "POST", Path: "/v1/chat/completions", Host: "gw.example",
				Query:   map[string][]string{"api-version": {"2024-01"}},
				Headers: map[string]string{"x-team": "vision"},
			},
			Route:  Route{Name: "openai", Profile: "openai"},
			Body:   BodyFacts([]byte(`{"model":"warden-demo-small","stream":true,"n":2,"max_tokens":100,"messages":[{},{}],"tools":[{"type":"function","function":{"name":"search"}}]}`)),
			Grants: []Grant{{ID: "g1", Scope: "finetune", Expires: now.Add(time.Hour)}, {ID: "g0", Scope: "export", Expires: now.Add(-time.Hour)}},
			Now:    now,
		}
	}
	tests := []struct {
		expr   string
		mutate func(*Input) // makes the expression false
	}{
		{`principal.issuer == "https://idp.example"`, func(in *Input) { in.Principal.Issuer = "other" }},
		{`principal.subject == "alice"`, func(in *Input) { in.Principal.Subject = "bob" }},
		{`principal.kind == "user"`, func(in *Input) { in.Principal.Kind = identity.KindService }},
		{`principal.name == "Alice"`, func(in *Input) { in.Principal.Name = "" }},
		{`principal.email.endsWith("@example.com")`, func(in *Input) { in.Principal.Email = "a@x.org" }},
		{`principal.auth_method == "oidc"`, func(in *Input) { in.Principal.AuthMethod = "api_key" }},
		{`"staff" in principal.groups`, func(in *Input) { in.Principal.Groups = nil }},
		{`principal.claims.department == "research" && principal.claims.level >= 3.0`, func(in *Input) { in.Principal.Claims["department"] = "sales" }},
		{`has(principal.email)`, func(in *Input) { in.Principal.Email = "" }},
		{`request.method == "POST"`, func(in *Input) { in.Request.Method = "GET" }},
		{`request.path == "/v1/chat/completions"`, func(in *Input) { in.Request.Path = "/v1/embeddings" }},
		{`request.host == "gw.example"`, func(in *Input) { in.Request.Host = "other" }},
		{`request.query["api-version"][0] == "2024-01"`, func(in *Input) { in.Request.Query["api-version"] = []string{"x"} }},
		{`"x-team" in request.headers && request.headers["x-team"] == "vision"`, func(in *Input) { in.Request.Headers = nil }},
		{`route.name == "openai" && route.profile == "openai"`, func(in *Input) { in.Route.Profile = "generic" }},
		{`has(body.model) && body.model == "warden-demo-small"`, func(in *Input) { in.Body = nil }},
		{`body.stream && body.n == 2 && body.max_tokens <= 100 && body.message_count == 2`, func(in *Input) { in.Body["stream"] = false }},
		{`body.has_tools && "search" in body.tools`, func(in *Input) { in.Body["tools"] = []string{"calc"} }},
		{`has_grant("finetune")`, func(in *Input) { in.Grants = in.Grants[1:] }},
		{`!has_grant("export")`, func(in *Input) { in.Grants[1].Expires = in.Now.Add(time.Minute) }},
		{`grants.exists(g, g.id == "g1" && g.expires > now)`, func(in *Input) { in.Grants[0].Expires = in.Now }},
		{`now >= timestamp("2026-11-26T12:00:00Z")`, func(in *Input) { in.Now = in.Now.Add(-time.Second) }},
		{`now.getHours() == 12`, func(in *Input) { in.Now = in.Now.Add(time.Hour) }},
		{`principal.in_group("ml-users")`, func(in *Input) { in.Principal.Groups = []string{"x"} }},
		{`in_group(principal, "ml-users")`, func(in *Input) { in.Principal.Groups = []string{"x"} }},
		{`any_group(principal, ["ml-admins", "staff"])`, func(in *Input) { in.Principal.Groups = []string{"ml-users"} }},
		{`principal.any_group(["nobody", "staff"])`, func(in *Input) { in.Principal.Groups = nil }},
		{`request.path.glob("/v1/*/completions")`, func(in *Input) { in.Request.Path = "/v1/a/b/completions" }},
		{`glob(request.path, "/v1/**")`, func(in *Input) { in.Request.Path = "/v2/chat" }},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			p := mustLoad(t, "version: 1\nrules:\n  - name: r\n    when: '"+strings.ReplaceAll(tt.expr, "'", "''")+"'\n    action: allow\n")
			if d := p.Decide(base()); d.Action != ActionAllow || d.EvalError != "" {
				t.Fatalf("base input: got %s by %q (%s), want allow", d.Action, d.Rule, d.EvalError)
			}
			in := base()
			tt.mutate(in)
			if d := p.Decide(in); d.Action != ActionDeny {
				t.Fatalf("mutated input: got %s by %q, want deny", d.Action, d.Rule)
			}
		})
	}
}

func TestEvalErrorFailsClosed(t *testing.T) {
	p := mustLoad(t, `
version: 1
rules:
  - name: block-model
    when: body.model == "bad"
    action: deny
  - name: everyone
    when: "true"
    action: allow
`)
	// No body: body.model is "no such key", so the deny rule cannot be
	// evaluated; the request must not fall through to the allow rule.
	d := p.Decide(&Input{Principal: alice()})
	if d.Action != ActionDeny || d.Rule != "block-model" || d.EvalError == "" {
		t.Fatalf("got %+v, want fail-closed deny by block-model", d)
	}
	if strings.Contains(d.Reason, "no such key") {
		t.Errorf("reason leaks internals: %q", d.Reason)
	}
}

func TestInputBoundsFailClosed(t *testing.T) {
	p := mustLoad(t, "version: 1\nrules:\n  - name: all\n    when: principal.groups.exists(g, g == \"x\") || true\n    action: allow\n")
	many := make([]string, estMaxListSize+1)
	for i := range many {
		many[i] = "g"
	}
	tests := []struct {
		name string
		in   *Input
	}{
		{"too many groups", &Input{Principal: &identity.Principal{Groups: many}}},
		{"long path", &Input{Request: Request{Path: "/" + strings.Repeat("a", estMaxLongString)}}},
		{"long group name", &Input{Principal: &identity.Principal{Groups: []string{strings.Repeat("g", estMaxShortString+1)}}}},
		{"long model", &Input{Body: map[string]any{"model": strings.Repeat("m", estMaxShortString+1)}}},
		{"too many query values", &Input{Request: Request{Query: map[string][]string{"q": many}}}},
		{"deep claims", &Input{Principal: &identity.Principal{Claims: map[string]any{"a": []any{[]any{[]any{[]any{[]any{"x"}}}}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := p.Decide(tt.in); d.Action != ActionDeny || d.EvalError == "" {
				t.Fatalf("got %+v, want deny with EvalError", d)
			}
		})
	}
	if d := p.Decide(&Input{Principal: alice()}); d.Action != ActionAllow {
		t.Fatalf("within bounds: got %+v", d)
	}
}

func TestApprovalDecision(t *testing.T) {
	p := mustLoad(t, `
version: 1
rules:
  - name: finetune
    when: request.path.glob("/v1/fine_tuning/**")
    action: require_approval
    approval: ft
approvals:
  ft:
    reviewers: [ml-approvers, security]
    min_approvals: 2
    one_per_group: true
    kind: grant
    mode: async
    grant_duration: 2h
    scope:
      paths: ["/v1/fine_tuning/**"]
`)
	d := p.Decide(&Input{Request: Request{Path: "/v1/fine_tuning/jobs"}})
	if d.Action != ActionRequireApproval || d.ApprovalName != "ft" || d.Approval == nil {
		t.Fatalf("got %+v", d)
	}
	a := d.Approval
	if a.Kind != ApprovalGrant || a.Mode != ApprovalAsync || a.MinApprovals != 2 || !a.OnePerGroup ||
		a.TTL != time.Hour || a.HoldTimeout != 10*time.Minute || a.GrantDuration != 2*time.Hour ||
		len(a.Scope.Paths) != 1 || len(a.Reviewers) != 2 {
		t.Fatalf("approval setting = %+v", a)
	}
	if d := p.Decide(&Input{Request: Request{Path: "/v1/fine_tuning"}}); d.Action != ActionRequireApproval {
		t.Fatalf("bare prefix: %+v", d)
	}
}

func TestExplain(t *testing.T) {
	p := mustLoad(t, `
version: 1
rules:
  - name: admins
    when: principal.in_group("ml-admins")
    action: allow
  - name: users
    when: principal.in_group("ml-users")
    action: allow
  - name: staff
    when: principal.in_group("staff")
    action: deny
  - name: broken
    when: body.model == "x"
    action: deny
`)
	tr := p.Explain(&Input{Principal: alice()})
	if len(tr) != 4 {
		t.Fatalf("%d traces, want 4", len(tr))
	}
	want := []struct {
		matched, decisive, err bool
	}{{false, false, false}, {true, true, false}, {true, false, false}, {false, false, true}}
	for i, w := range want {
		if tr[i].Matched != w.matched || tr[i].Decisive != w.decisive || (tr[i].Err != "") != w.err {
			t.Errorf("trace %d = %+v, want %+v", i, tr[i], w)
		}
	}

	// Conditions of a top-level && show which part failed.
	p = mustLoad(t, `
version: 1
rules:
  - name: chat
    when: principal.in_group("ml-users") && request.path.glob("/v1/**") && has_grant("x") && body.model == "m"
    action: allow
`)
	tr = p.Explain(&Input{Principal: alice(), Request: Request{Path: "/v2/x"}})
	got := tr[0].Conditions
	wantConds := []Condition{
		{Expr: `principal.in_group("ml-users")`, Value: "true"},
		{Expr: `request.path.glob("/v1/**")`, Value: "false"},
		{Expr: `has_grant("x")`, Value: "false"},
		{Expr: `body.model == "m"`},
	}
	if len(got) != len(wantConds) {
		t.Fatalf("conditions = %+v", got)
	}
	for i, w := range wantConds {
		if got[i].Expr != w.Expr || got[i].Value != w.Value || (i == 3) != (got[i].Err != "") {
			t.Errorf("condition %d = %+v, want %+v (error only for the absent body key)", i, got[i], w)
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"/v1/*", "/v1/models", true},
		{"/v1/*", "/v1/models/x", false},
		{"/v1/**", "/v1/models/x", true},
		{"/v1/**", "/v1", true},
		{"/v1/**", "/v1x", false},
		{"/v1/exports**", "/v1/exports", true},
		{"/v1/exports**", "/v1/exports/1/file", true},
		{"/v1/*/completions", "/v1/chat/completions", true},
		{"/v1/*/completions", "/v1/completions", false},
		{"/v1/?ile", "/v1/file", true},
		{"/v1/?ile", "/v1//ile", false},
		{"/admin/**", "/administrator", false},
		{"", "", true},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
	}
	for _, tt := range tests {
		if got := Glob(tt.pat, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

func TestBodyFacts(t *testing.T) {
	f := BodyFacts([]byte(`{"model":"m","stream":false,"n":3,"max_completion_tokens":50,"temperature":0.5,"messages":[{"role":"user","content":"secret 4111"}],"functions":[{"name":"f1"}],"user":"u1"}`))
	want := map[string]any{"model": "m", "stream": false, "n": int64(3), "max_tokens": int64(50), "temperature": 0.5, "message_count": int64(1), "has_tools": true, "user": "u1"}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %#v, want %#v", k, f[k], v)
		}
	}
	if tools, _ := f["tools"].([]string); len(tools) != 1 || tools[0] != "f1" {
		t.Errorf("tools = %#v", f["tools"])
	}
	for k, v := range f {
		if s, ok := v.(string); ok && strings.Contains(s, "secret") {
			t.Errorf("fact %s copies message content", k)
		}
	}
	e := BodyFacts([]byte(`{"model":"e","input":["a","b","c"]}`))
	if e["input_count"] != int64(3) || e["has_tools"] != false {
		t.Errorf("embeddings facts = %#v", e)
	}
	if _, ok := e["stream"]; ok {
		t.Error("absent stream reported")
	}
	for _, bad := range []string{``, `not json`, `[1,2]`, `"s"`, `null`} {
		if f := BodyFacts([]byte(bad)); f != nil {
			t.Errorf("BodyFacts(%q) = %#v, want nil", bad, f)
		}
	}
}

// TestNoStaleValuesAcrossDecisions guards the per-decision caches of the
// pooled activation: each decision must see only its own input.
func TestNoStaleValuesAcrossDecisions(t *testing.T) {
	p := mustLoad(t, `
version: 1
rules:
  - name: match
    when: >
      request.headers["x-k"] == "1" && body.model == "a" && principal.claims.c == "x" &&
      principal.subject == "s1" && request.query["q"][0] == "v" && "x-k" in request.headers
    action: allow
`)
	good := func() *Input {
		return &Input{
			Principal: &identity.Principal{Subject: "s1", Claims: map[string]any{"c": "x"}},
			Request:   Request{Headers: map[string]string{"x-k": "1"}, Query: map[string][]string{"q": {"v"}}},
			Body:      map[string]any{"model": "a"},
		}
	}
	variants := []func(*Input){
		func(in *Input) { in.Request.Headers["x-k"] = "2" },
		func(in *Input) { in.Body["model"] = "b" },
		func(in *Input) { in.Principal.Claims["c"] = "y" },
		func(in *Input) { in.Principal.Subject = "s2" },
		func(in *Input) { in.Request.Query["q"] = []string{"w"} },
	}
	for round := 0; round < 3; round++ {
		for i, mutate := range variants {
			if d := p.Decide(good()); d.Action != ActionAllow {
				t.Fatalf("round %d before variant %d: %+v", round, i, d)
			}
			in := good()
			mutate(in)
			if d := p.Decide(in); d.Action == ActionAllow {
				t.Fatalf("round %d variant %d allowed with a stale value", round, i)
			}
		}
	}
	// Absent then present keys.
	in := good()
	delete(in.Request.Headers, "x-k")
	if d := p.Decide(in); d.Action == ActionAllow {
		t.Fatal("absent header allowed")
	}
	if d := p.Decide(good()); d.Action != ActionAllow {
		t.Fatalf("present header after absent: %+v", d)
	}
}

func TestDecideConcurrent(t *testing.T) {
	p := mustLoad(t, `
version: 1
rules:
  - name: even
    when: principal.claims.n % 2 == 0 && request.headers["x-n"] == string(principal.claims.n)
    action: allow
  - name: odd
    when: principal.claims.n % 2 == 1 && request.headers["x-n"] == string(principal.claims.n)
    action: deny
`)
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 200; i++ {
				n := int64(g*1000 + i)
				in := &Input{
					Principal: &identity.Principal{Claims: map[string]any{"n": n}},
					Request:   Request{Headers: map[string]string{"x-n": fmt.Sprint(n)}},
				}
				want := "even"
				if n%2 == 1 {
					want = "odd"
				}
				if d := p.Decide(in); d.Rule != want {
					done <- fmt.Errorf("n=%d decided by %q (%s), want %q", n, d.Rule, d.EvalError, want)
					return
				}
			}
			done <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestGrantScopeCovers(t *testing.T) {
	s := GrantScope{Routes: []string{"openai"}, Paths: []string{"/v1/exports**"}}
	tests := []struct {
		route, model, path string
		want               bool
	}{
		{"openai", "any", "/v1/exports/1", true},
		{"openai", "", "/v1/exports", true},
		{"kserve", "", "/v1/exports", false},
		{"openai", "", "/v1/chat/completions", false},
	}
	for _, tt := range tests {
		if got := s.Covers(tt.route, tt.model, tt.path); got != tt.want {
			t.Errorf("Covers(%q, %q, %q) = %v, want %v", tt.route, tt.model, tt.path, got, tt.want)
		}
	}
	if !(GrantScope{}).Covers("x", "y", "/z") {
		t.Error("empty scope must cover everything")
	}
	if (GrantScope{Models: []string{"warden-demo-*"}}).Covers("openai", "gpt-4", "/v1/x") {
		t.Error("model glob ignored")
	}
}

// TestGlobRunes: "?" is one character (rune) wherever it stands, also
// after a "*" (which used to stop inside a multi-byte character, so "?"
// matched single bytes: "*??" matched the one-character "怀"). Checked
// exhaustively on short patterns and strings against a []rune matcher.
func TestGlobRunes(t *testing.T) {
	for _, tt := range []struct {
		pat, s string
		want   bool
	}{
		{"*??", "怀", false},
		{"*??", "怀a", true},
		{"**??", "a/怀", false},
		{"/v1/*?", "/v1/é", true},
		{"/v1/*??", "/v1/é", false},
		{"/v1/?", "/v1/é", true},
		{"/models/*-??", "/models/llama-é", false},
		{"/models/*-??", "/models/llama-éé", true},
	} {
		if got := Glob(tt.pat, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
	pats := [][]rune{{}}
	strs := [][]rune{{}}
	extend := func(set [][]rune, alphabet []rune, n int) [][]rune {
		out := set
		last := set
		for range n {
			var next [][]rune
			for _, x := range last {
				for _, c := range alphabet {
					next = append(next, append(append([]rune{}, x...), c))
				}
			}
			out, last = append(out, next...), next
		}
		return out
	}
	pats = extend(pats, []rune{'*', '?', 'a', 'é', '/', '怀'}, 4)
	strs = extend(strs, []rune{'a', 'é', '/', '怀'}, 3)
	for _, p := range pats {
		for _, s := range strs {
			if got, want := globMatch(string(p), string(s)), runeGlob(p, s); got != want {
				t.Fatalf("globMatch(%q, %q) = %v, want %v", string(p), string(s), got, want)
			}
		}
	}
}

// runeGlob is the reference: globMatch's rules over []rune.
func runeGlob(p, s []rune) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			double := len(p) > 1 && p[1] == '*'
			rest := p[1:]
			for len(rest) > 0 && rest[0] == '*' {
				rest = rest[1:]
			}
			if double && len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if runeGlob(rest, s[i:]) {
					return true
				}
				if i < len(s) && s[i] == '/' && !double {
					return false
				}
			}
			return false
		case '?':
			if len(s) == 0 || s[0] == '/' {
				return false
			}
		default:
			if len(s) == 0 || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return len(s) == 0
}

// TestGlobTrailingDoubleStarWithWildcards: a trailing "/**" matches the
// bare prefix also when the prefix has wildcards, as for a literal one.
func TestGlobTrailingDoubleStarWithWildcards(t *testing.T) {
	for _, tt := range []struct {
		pat, s string
		want   bool
	}{
		{"/v1/*/files/**", "/v1/org/files", true},
		{"/v1/*/files/**", "/v1/org/files/x/y", true},
		{"/v1/*/files/**", "/v1/org/filesx", false},
		{"/v1/?/**", "/v1/é", true},
		{"/**", "", true},
		{"/**", "/anything/at/all", true},
	} {
		if got := Glob(tt.pat, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}
