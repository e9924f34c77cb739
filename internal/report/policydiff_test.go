package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

const basePolicy = `{"version":1,"default_action":"deny","rules":[` +
	`{"name":"chat","when":"true","action":"allow","mask":"default","log":"redacted"},` +
	`{"name":"admin","when":"false","action":"deny","mask":"","log":"redacted"},` +
	`{"name":"ft","when":"true","action":"require_approval","mask":"default","log":"redacted","approval":"finetune"}],` +
	`"approvals":{"finetune":{"reviewers":["ml-approvers"]}}}`

func TestDiffPolicies(t *testing.T) {
	cases := []struct {
		name, new string
		want      string // PolicyDiff.String()
	}{
		{"same", basePolicy, "no difference"},
		{"rule added and removed", strings.Replace(basePolicy, `"name":"admin"`, `"name":"admin-v2"`, 1), "rules +admin-v2 -admin"},
		{"rule changed", strings.Replace(basePolicy, `"when":"false"`, `"when":"request.path == \"/admin\""`, 1), "rules ~admin"},
		{"masking profile changed", strings.Replace(basePolicy, `"action":"allow","mask":"default"`, `"action":"allow","mask":"strict"`, 1), "rules ~chat; masking chat: default -> strict"},
		{"reordered", `{"version":1,"default_action":"deny","rules":[` +
			`{"name":"admin","when":"false","action":"deny","mask":"","log":"redacted"},` +
			`{"name":"chat","when":"true","action":"allow","mask":"default","log":"redacted"},` +
			`{"name":"ft","when":"true","action":"require_approval","mask":"default","log":"redacted","approval":"finetune"}],` +
			`"approvals":{"finetune":{"reviewers":["ml-approvers"]}}}`, "rules reordered"},
		{"approval setting changed", strings.Replace(basePolicy, `["ml-approvers"]`, `["ml-approvers","leads"]`, 1), "approvals ~finetune"},
		{"approval setting added", strings.Replace(basePolicy, `}}}`, `},"export":{"reviewers":["x"]}}}`, 1), "approvals +export"},
		{"default changed", strings.Replace(basePolicy, `"version":1`, `"version":2`, 1), "other settings"},
		{"hostile rule name stays text", strings.Replace(basePolicy, `"name":"admin"`, `"name":"<script>alert(1)</script>"`, 1), "rules +<script>alert(1)</script> -admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := DiffPolicies([]byte(basePolicy), []byte(c.new))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.String(); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if d.Empty() != (c.want == "no difference") {
				t.Errorf("Empty() = %v", d.Empty())
			}
		})
	}
	if _, err := DiffPolicies([]byte(basePolicy), []byte("not json")); err == nil {
		t.Error("malformed policy text accepted")
	}
}

// policyChangeLog writes three applied policy changes: one with both
// sources (a rule added, a masking profile changed), one without
// sources, one whose source does not hash to its version.
func policyChangeLog(t *testing.T) *testLog {
	tl := newTestLog(t)
	v2 := strings.Replace(strings.Replace(basePolicy, `"action":"allow","mask":"default"`, `"action":"allow","mask":"strict"`, 1), `]`+`,"approvals"`, `,{"name":"embed","when":"true","action":"allow","mask":"default","log":"redacted"}],"approvals"`, 1)
	tl.add(t, &audit.Entry{Kind: audit.KindConfigChanged, Details: map[string]any{"what": "policy", "applied": true, "actor": "admin:carol",
		"old_version": sha256Digest([]byte(basePolicy)), "new_version": sha256Digest([]byte(v2)), "old_policy_source": basePolicy, "policy_source": v2}})
	tl.add(t, &audit.Entry{Kind: audit.KindConfigChanged, Details: map[string]any{"what": "policy", "applied": true, "actor": "sighup",
		"old_version": sha256Digest([]byte(v2)), "new_version": "sha256:v3"}})
	tl.add(t, &audit.Entry{Kind: audit.KindConfigChanged, Details: map[string]any{"what": "policy", "applied": true, "actor": "file-watch",
		"old_version": "sha256:v3", "new_version": "sha256:v4", "old_policy_source": basePolicy, "policy_source": v2}})
	return tl
}

func TestReportPolicyChanges(t *testing.T) {
	tl := policyChangeLog(t)
	res := generateScenario(t, tl, day)
	var sec Section
	for _, s := range res.Report.Sections {
		if s.Control == "A.8.32" {
			sec = s
		}
	}
	if len(sec.Changes) != 3 {
		t.Fatalf("changes: %+v", sec.Changes)
	}
	c := sec.Changes[0]
	if c.Sources != SourcesVerified || c.Actor != "admin:carol" || c.PolicyDiff.String() != "rules +embed ~chat; masking chat: default -> strict" {
		t.Errorf("verified change: %+v (%s)", c, c.PolicyDiff)
	}
	if sec.Changes[1].Sources != SourcesAbsent || sec.Changes[2].Sources != SourcesMismatch {
		t.Errorf("sources: %s %s", sec.Changes[1].Sources, sec.Changes[2].Sources)
	}
	figs := map[string]Figure{}
	for _, f := range sec.Figures {
		figs[f.ID] = f
	}
	if f := figs["rule_changes"]; f.Value != 3 || f.By["added"] != 1 || f.By["changed"] != 1 || f.By["masking profile"] != 1 {
		t.Errorf("rule_changes: %+v", f)
	}
	if f := figs["policy_sources"]; f.Value != 3 || f.By["verified"] != 1 || f.By["absent"] != 1 || f.By["mismatch"] != 1 {
		t.Errorf("policy_sources: %+v", f)
	}
	if sec.ExceptionsTotal != 1 || !strings.Contains(sec.Exceptions[0].What, "does not hash to its version") {
		t.Errorf("exceptions: %+v", sec.Exceptions)
	}
	// The HTML shows the summary, escaped.
	var h bytes.Buffer
	if err := WriteHTML(&h, res.Report); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.String(), "rules &#43;embed ~chat; masking chat: default -&gt; strict") {
		t.Error("HTML has no diff summary")
	}

	// verify --bundle recomputes the summaries: an edited one is refused.
	var b bytes.Buffer
	if err := WriteBundle(context.Background(), &b, res, BundleOptions{VerifierKey: verifierKey(t, tl)}); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyBundle(context.Background(), bytes.NewReader(b.Bytes()), BundleVerifyOptions{Verifier: tl.v}); err != nil {
		t.Fatal(err)
	}
	tampered := repack(t, b.Bytes(), true, func(f map[string][]byte) {
		var r Report
		json.Unmarshal(f[fileReportJSON], &r)
		for i := range r.Sections {
			if r.Sections[i].Control == "A.8.32" {
				r.Sections[i].Changes[0].RulesAdded = nil
			}
		}
		f[fileReportJSON] = mustJSON(&r)
	})
	_, err := VerifyBundle(context.Background(), bytes.NewReader(tampered), BundleVerifyOptions{Verifier: tl.v})
	var be *BundleError
	if !errors.As(err, &be) || !strings.Contains(be.Msg, "A.8.32: the report's policy versions and diff summaries differ") {
		t.Fatalf("edited diff summary: %v", err)
	}
}
