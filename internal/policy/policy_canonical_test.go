package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestCanonicalHashesToVersion: the canonical form is what the version
// is the hash of, so an auditor checks a logged policy source with
// sha256 alone.
func TestCanonicalHashesToVersion(t *testing.T) {
	for _, src := range []string{
		"version: 1\nrules:\n  - name: a\n    when: 'true'\n    action: allow\n",
		"version: 1\n# a comment\nrules:\n  - name: a\n    when: 'true'\n    action: deny\n    reason: \"<script>\"\n",
	} {
		p, err := Load("p.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(p.Canonical())
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != p.Version() {
			t.Errorf("sha256(Canonical) = %s, Version %s", got, p.Version())
		}
	}
}
