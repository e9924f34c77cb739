package policy

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMaskOnByDefault: an allow or require_approval rule without `mask:`
// masks with the default profile; only an explicit `mask: none` turns
// masking off, and the engine warns about it at load.
func TestMaskOnByDefault(t *testing.T) {
	const src = `version: 1
rules:
  - name: plain-allow
    when: request.path == "/a"
    action: allow
  - name: named
    when: request.path == "/b"
    action: allow
    mask: strict
  - name: unmasked
    when: request.path == "/c"
    action: allow
    mask: none
  - name: needs-approval
    when: request.path == "/d"
    action: require_approval
    approval: ok
  - name: refuse
    when: request.path == "/e"
    action: deny
approvals:
  ok: {reviewers: [ml-approvers]}
`
	p, err := Load("mask.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/a": MaskDefault, "/b": "strict", "/c": "", "/d": MaskDefault, "/e": ""} {
		d := p.Decide(&Input{Request: Request{Method: "POST", Path: path}})
		if d.Mask != want {
			t.Errorf("%s: rule %s mask %q, want %q", path, d.Rule, d.Mask, want)
		}
	}
	if got := p.MaskProfiles(); !slices.Equal(got, []string{MaskDefault, "strict"}) {
		t.Errorf("MaskProfiles %q: must list default and never none", got)
	}
	if w := p.Warnings(); len(w) != 1 || !strings.Contains(w[0], `"unmasked"`) || !strings.Contains(w[0], "mask: none") {
		t.Errorf("warnings %q", w)
	}

	// The engine logs the warning (a slog warning) at load.
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, src)
	if _, err := NewEngine(path, WithLogger(log)); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, `"level":"WARN"`) || !strings.Contains(out, "mask: none") {
		t.Fatalf("no warning logged for mask: none: %s", out)
	}

	// Stating the default explicitly is the same policy (same version).
	explicit := strings.Replace(src, "    action: allow\n  - name: named", "    action: allow\n    mask: default\n  - name: named", 1)
	q, err := Load("mask.yaml", []byte(explicit))
	if err != nil {
		t.Fatal(err)
	}
	if p.Version() != q.Version() {
		t.Fatal("omitting mask and writing mask: default give different versions")
	}
}
