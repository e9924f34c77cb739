package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultActionOnlyDeny(t *testing.T) {
	_, err := Load("p.yaml", []byte("version: 1\ndefault_action: allow\nrules:\n  - name: a\n    when: 'false'\n    action: deny\n"))
	if err == nil || !strings.Contains(err.Error(), "default_action") {
		t.Fatalf("default_action allow accepted: %v", err)
	}
	mustLoad(t, "version: 1\ndefault_action: deny\nrules:\n  - name: a\n    when: 'false'\n    action: deny\n")
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // substrings of the error
	}{
		{
			name: "type error",
			src:  "version: 1\nrules:\n  - name: ok\n    when: 'true'\n    action: allow\n  - name: bad-type\n    when: request.path == 3\n    action: allow\n",
			want: []string{"p.yaml:7:", `rule[1] "bad-type"`, "when:", "no matching overload", "(expression 1:"},
		},
		{
			name: "unknown field is a type error",
			src:  "version: 1\nrules:\n  - name: typo\n    when: principal.grups.size() > 0\n    action: allow\n",
			want: []string{"p.yaml:4:20:", `rule[0] "typo"`, "undefined field 'grups'", "(expression 1:10)"},
		},
		{
			name: "undeclared variable",
			src:  "version: 1\nrules:\n  - name: u\n    when: user.name == \"x\"\n    action: allow\n",
			want: []string{"p.yaml:4:", "undeclared reference to 'user'"},
		},
		{
			name: "not bool",
			src:  "version: 1\nrules:\n  - name: s\n    when: request.path\n    action: allow\n",
			want: []string{`rule[0] "s"`, "must be of type bool"},
		},
		{
			name: "syntax error in block scalar",
			src:  "version: 1\nrules:\n  - name: syn\n    when: |\n      principal.subject == \"a\" &&\n        request.path == == \"x\"\n    action: allow\n",
			want: []string{"p.yaml:6:", `rule[0] "syn"`, "Syntax error"},
		},
		{
			name: "cost limit",
			src:  "version: 1\nrules:\n  - name: costly\n    when: principal.groups.all(a, principal.groups.all(b, principal.groups.all(c, a + b + c != \"\")))\n    action: allow\n",
			want: []string{"p.yaml:4:11:", `rule[0] "costly"`, "exceeds the limit 100000"},
		},
		{
			name: "missing approval",
			src:  "version: 1\nrules:\n  - name: a\n    when: 'true'\n    action: require_approval\n",
			want: []string{"p.yaml:3:", `rule[0] "a"`, "approval: is required"},
		},
		{
			name: "unknown approval",
			src:  "version: 1\nrules:\n  - name: a\n    when: 'true'\n    action: require_approval\n    approval: nope\n",
			want: []string{"p.yaml:6:15:", "names no entry of approvals"},
		},
		{
			name: "bad action and duplicate name",
			src:  "version: 1\nrules:\n  - name: a\n    when: 'true'\n    action: permit\n  - name: a\n    when: 'true'\n    action: allow\n",
			want: []string{"p.yaml:5:13:", "must be allow, deny or require_approval", "p.yaml:6:", "duplicates the name of rule 0"},
		},
		{
			name: "unknown key (strict)",
			src:  "version: 1\nrules:\n  - name: a\n    when: 'true'\n    action: allow\n    masks: default\n",
			want: []string{"p.yaml:6:", "masks"},
		},
		{
			name: "bad approval setting",
			src:  "version: 1\nrules:\n  - name: a\n    when: 'true'\n    action: require_approval\n    approval: x\napprovals:\n  x:\n    mode: wait\n    reviewers: []\n",
			want: []string{"approvals.x.mode", "must be hold or async", "reviewer group is required"},
		},
		{
			// goccy/go-yaml v1.19.2 panics on this (a tag with no value);
			// it once took the gateway down on hot reload.
			name: "empty tag",
			src:  "rules:  ! \n",
			want: []string{"p.yaml:1:9:", "tags are not supported"},
		},
		{
			name: "tag on a sequence",
			src:  "version: 1\nrules: !00\n  - {name: a, when: 'true', action: allow}\n",
			want: []string{"p.yaml:2:8:", "tags are not supported"},
		},
		{
			name: "bare number as duration",
			src:  "version: 1\nrules:\n  - {name: a, when: 'true', action: require_approval, approval: x}\napprovals:\n  x:\n    reviewers: [r]\n    ttl: 5\n",
			want: []string{"p.yaml:7:10:", "expected a duration with a unit (30s, 5m, 1h), got the number 5"},
		},
		{
			name: "string as version",
			src:  "version: one\nrules:\n  - {name: a, when: 'true', action: allow}\n",
			want: []string{"p.yaml:1:10:", `expected an integer, got the string "one"`},
		},
		{
			name: "wrong version",
			src:  "version: 2\nrules:\n  - name: a\n    when: 'true'\n    action: allow\n",
			want: []string{"p.yaml:1:10:", "version: must be 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load("p.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("loaded (version %s), want error", p.Version())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Errorf("error is not a *LoadError: %T", err)
			}
		})
	}
}

// TestCostLimitAcceptsReasonableRules: the load-time bound must not
// reject the rules people write, only pathological ones.
func TestCostLimitAcceptsReasonableRules(t *testing.T) {
	ok := []string{
		`request.path.matches("^/v1/[a-z_]+(/[a-z0-9-]+)*$")`,
		`principal.groups.exists(g, g.startsWith("ml-"))`,
		`principal.groups.exists(g, g.matches("^ml-[a-z]+$"))`,
		`request.headers.exists(k, k.startsWith("x-") && request.headers[k].contains("a"))`,
		`body.tools.all(t, t in ["search", "calculator"])`,
		`principal.claims.exists(k, k == "department")`,
		`grants.exists(g, g.scope == "x" && g.expires > now + duration("5m"))`,
		`any_group(principal, ["a", "b", "c"]) && request.path.glob("/v1/**") && has_grant("x")`,
	}
	for _, e := range ok {
		src := "version: 1\nrules:\n  - name: r\n    when: '" + strings.ReplaceAll(e, "'", "''") + "'\n    action: allow\n"
		if _, err := Load("ok.yaml", []byte(src)); err != nil {
			t.Errorf("rejected %s: %v", e, err)
		}
	}
}

func TestVersionCanonical(t *testing.T) {
	const a = `
version: 1
rules:
  - name: users
    when: principal.in_group("ml-users")
    action: allow
    mask: default
`
	// Same content: comments, quoting, flow style, key order, explicit
	// defaults.
	const b = `# the demo policy
rules: [{action: allow, mask: "default", log: redacted, name: 'users', when: 'principal.in_group("ml-users")'}]
default_action: deny
version: 1   # format
`
	// Changed content.
	const c = `
version: 1
rules:
  - name: users
    when: principal.in_group("ml-admins")
    action: allow
    mask: default
`
	pa, pb, pc := mustLoad(t, a), mustLoad(t, b), mustLoad(t, c)
	if pa.Version() != pb.Version() {
		t.Errorf("reformatting changed the version: %s vs %s", pa.Version(), pb.Version())
	}
	if pa.Version() == pc.Version() {
		t.Errorf("content change kept the version %s", pa.Version())
	}
	if !strings.HasPrefix(pa.Version(), "sha256:") || len(pa.Version()) != len("sha256:")+64 {
		t.Errorf("version %q is not sha256:<hex>", pa.Version())
	}
	const d = `
version: 1
rules:
  - name: users
    when: principal.in_group("ml-users")
    action: allow
    mask: other
`
	if mustLoad(t, d).Version() == pa.Version() {
		t.Error("changing the mask profile kept the version")
	}

	// Empty and absent lists are the same content.
	const e1 = "version: 1\nrules:\n  - {name: a, when: 'true', action: require_approval, approval: x}\napprovals:\n  x: {reviewers: [r], kind: grant}\n"
	const e2 = "version: 1\nrules:\n  - {name: a, when: 'true', action: require_approval, approval: x}\napprovals:\n  x: {reviewers: [r], kind: grant, scope: {routes: [], paths: []}}\n"
	if mustLoad(t, e1).Version() != mustLoad(t, e2).Version() {
		t.Error("an empty scope list changed the version")
	}
}
