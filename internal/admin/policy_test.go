package admin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

// TestPolicyAPI: the policy in force for auditors, a reload by an admin
// (with the actor the audit entry names), a failed reload that keeps the
// old version, and the history from the audit log.
func TestPolicyAPI(t *testing.T) {
	e := newEnv(t)
	var actors []string
	e.policy.OnChange(func(c policyChange) { actors = append(actors, c.Actor) })
	a := e.do("GET", "/v1/policy", "dan", "")
	m := a.json(t)
	v1, _ := m["version"].(string)
	if a.status != 200 || !strings.HasPrefix(v1, "sha256:") || m["file"] != e.polFile || len(m["rules"].([]any)) != 1 {
		t.Fatalf("policy: %d %s", a.status, a.body)
	}
	if err := writePolicy(e.polFile, strings.Replace(testPolicy, "fine-tune\n", "fine-tuning\n", 1)); err != nil {
		t.Fatal(err)
	}
	a = e.do("POST", "/v1/policy/reload", "erin", "")
	m = a.json(t)
	if a.status != 200 || m["old"] != v1 || m["new"] == v1 || m["changed"] != true {
		t.Fatalf("reload: %d %s", a.status, a.body)
	}
	if len(actors) != 1 || actors[0] != "admin:erin" {
		t.Fatalf("actors %v", actors)
	}
	v2 := m["new"].(string)
	if err := writePolicy(e.polFile, "version: 1\nrules: [{name: x, when: 'nope(', action: allow}]\n"); err != nil {
		t.Fatal(err)
	}
	a = e.do("POST", "/v1/policy/reload", "erin", "")
	if a.status != 422 || a.errorType(t) != "invalid_policy" || !strings.Contains(string(a.body), v2+" stays in force") ||
		e.policy.Current().Version() != v2 {
		t.Fatalf("broken reload: %d %s", a.status, a.body)
	}

	// The history reads config.changed entries about the policy (the
	// gateway writes them on every reload; here they are written
	// directly), skipping other configuration changes.
	for _, d := range []map[string]any{
		{"what": "policy", "actor": "sighup", "old_version": "sha256:a", "new_version": "sha256:b", "applied": true},
		{"what": "api_key", "action": "created", "key_id": "k"},
		{"what": "policy", "actor": "admin:erin", "old_version": "sha256:b", "new_version": "sha256:b", "applied": false, "error": "bad"},
	} {
		if _, err := e.audit.Append(context.Background(), &audit.Entry{Kind: audit.KindConfigChanged, Details: d}); err != nil {
			t.Fatal(err)
		}
	}
	a = e.do("GET", "/v1/policy/versions?limit=5", "dan", "")
	vs := a.json(t)["versions"].([]any)
	if a.status != 200 || len(vs) != 2 || vs[0].(map[string]any)["applied"] != false || vs[1].(map[string]any)["actor"] != "sighup" {
		t.Fatalf("versions: %d %s", a.status, a.body)
	}
}
