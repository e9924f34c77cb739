package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runPolicy(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newPolicyCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestPolicyCmdShippedSuitePasses(t *testing.T) {
	out, err := runPolicy(t, "test", "../../examples/policy_test.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "PASS:") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestPolicyCmdFailingSuite(t *testing.T) {
	dir := t.TempDir()
	abs, _ := filepath.Abs("../../examples/policy.yaml")
	suite := "policy: " + abs + "\nroute: {name: openai, profile: openai}\ntests:\n" +
		"  - name: bob chats\n    principal: {subject: bob, groups: [ml-approvers]}\n" +
		"    request: {method: POST, path: /v1/chat/completions}\n    body: {model: warden-demo-small}\n" +
		"    expect: {action: allow, rule: chat-approved-models}\n"
	path := filepath.Join(dir, "s_test.yaml")
	os.WriteFile(path, []byte(suite), 0o644)
	out, err := runPolicy(t, "test", path)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("failing suite: err %v\n%s", err, out)
	}
	want := `test "bob chats": expected allow by rule "chat-approved-models", got deny by rule "default-deny" (no policy rule allows this request)`
	if !strings.Contains(out, want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
}

func TestPolicyCmdExplainAndVersion(t *testing.T) {
	out, err := runPolicy(t, "explain", "--policy", "../../examples/policy.yaml",
		"--principal-json", `{"sub":"alice","kind":"user","groups":["ml-users"]}`,
		"--method", "POST", "--path", "/v1/chat/completions", "--body", `{"model":"warden-demo-small"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `=> [5] chat-approved-models`) || !strings.Contains(out, `decision: allow by rule "chat-approved-models"`) {
		t.Fatalf("explain output:\n%s", out)
	}
	v, err := runPolicy(t, "version", "../../examples/policy.yaml")
	if err != nil || !strings.HasPrefix(v, "sha256:") {
		t.Fatalf("version: %q %v", v, err)
	}
}

// TestPolicyExplainRefusesUnknownPrincipalKeys: a typo in
// --principal-json ("group" for "groups") is an error naming the key,
// not an explanation for a principal without groups.
func TestPolicyExplainRefusesUnknownPrincipalKeys(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"sub":"alice","group":["ml-users"]}`, `unknown key "group"`},
		{`{"sub":"alice","groups":"ml-users"}`, "cannot unmarshal"},
		{`{"sub":"alice"} {"sub":"bob"}`, "more than one JSON value"},
	} {
		_, err := runPolicy(t, "explain", "--policy", "../../examples/policy.yaml", "--principal-json", tc.json, "--path", "/v1/models")
		if err == nil || !strings.Contains(err.Error(), "--principal-json") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.json, err, tc.want)
		}
	}
}

// TestPolicyVersionMalformedYAML: `policy version` and `policy explain`
// on a file that crashes the YAML library (`rules:  ! `) report its line;
// they used to panic.
func TestPolicyVersionMalformedYAML(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(p, []byte("rules:  ! \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"version", p}, {"explain", "--policy", p}} {
		_, err := runPolicy(t, args...)
		if err == nil || !strings.Contains(err.Error(), p+":1:9:") || !strings.Contains(err.Error(), "tags are not supported") {
			t.Errorf("policy %v: %v", args, err)
		}
	}
}
