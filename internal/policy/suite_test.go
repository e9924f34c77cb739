package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSuite(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSuiteReadableFailures(t *testing.T) {
	dir := t.TempDir()
	writeSuite(t, dir, "p.yaml", `
version: 1
rules:
  - name: block-large
    when: has(body.model) && body.model == "large"
    action: deny
    reason: large model is closed
  - name: users
    when: principal.in_group("ml-users")
    action: allow
    mask: default
`)
	suite := writeSuite(t, dir, "p_test.yaml", `
policy: p.yaml
route: {name: openai, profile: openai}
tests:
  - name: passes
    principal: {subject: alice, groups: [ml-users]}
    request: {method: POST, path: /v1/chat/completions}
    body: {model: small}
    expect: {action: allow, rule: users, mask: default}
  - name: wrong rule and action
    principal: {subject: alice, groups: [ml-users]}
    request: {method: POST, path: /v1/chat/completions}
    body: {model: large}
    expect: {action: allow, rule: users}
  - name: wrong mask
    principal: {subject: alice, groups: [ml-users]}
    request: {method: POST, path: /v1/chat/completions}
    expect: {action: allow, mask: strict}
  - name: generic route ignores body
    route: {name: kserve, profile: generic}
    principal: {subject: alice, groups: [ml-users]}
    request: {method: POST, path: /v2/models/x/infer}
    body: {model: large}
    expect: {action: allow, rule: users}
`)
	res, err := RunSuiteFile(suite)
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed() != 2 || len(res.Results) != 4 {
		t.Fatalf("failed %d of %d, want 2 of 4: %+v", res.Failed(), len(res.Results), res.Results)
	}
	wants := map[string]string{
		"wrong rule and action": `test "wrong rule and action": expected allow by rule "users", got deny by rule "block-large" (large model is closed)`,
		"wrong mask":            `test "wrong mask": expected mask "strict", got "default"`,
	}
	for _, r := range res.Results {
		if w, ok := wants[r.Name]; ok {
			if r.Passed || r.Failure != w {
				t.Errorf("failure = %q, want %q", r.Failure, w)
			}
		} else if !r.Passed {
			t.Errorf("%s failed: %s", r.Name, r.Failure)
		}
	}
	var out bytes.Buffer
	WriteSuiteResult(&out, res)
	if !strings.Contains(out.String(), "FAIL: 2 of 4 tests failed") || !strings.Contains(out.String(), "ok    passes") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestSuiteErrors(t *testing.T) {
	dir := t.TempDir()
	writeSuite(t, dir, "bad.yaml", "version: 1\nrules:\n  - name: x\n    when: nope\n    action: allow\n")
	tests := []struct {
		name, suite, want string
	}{
		{"missing policy key", "tests: [{name: a, expect: {action: deny}}]\n", "policy: is required"},
		{"policy file missing", "policy: none.yaml\ntests: [{name: a, expect: {action: deny}}]\n", "none.yaml"},
		{"policy does not load", "policy: bad.yaml\ntests: [{name: a, expect: {action: deny}}]\n", `rule[0] "x"`},
		{"unknown key", "policy: bad.yaml\ntestz: []\n", "testz"},
		{"no tests", "policy: bad.yaml\n", "at least one test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeSuite(t, dir, "s_test.yaml", tt.suite)
			if _, err := RunSuiteFile(p); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
