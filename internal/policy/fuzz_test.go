package policy

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wardenhq/warden/internal/identity"
)

// FuzzLoad: no input makes Load panic, and a policy that loads decides
// without panicking.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(policyV1))
	f.Add([]byte("version: 1\nrules:\n  - name: a\n    when: body.model in ['x'] || has_grant('g')\n    action: require_approval\n    approval: z\napprovals:\n  z: {reviewers: [r], kind: grant}\n"))
	f.Add([]byte("rules: [{name: a, when: '1 +', action: allow}]"))
	f.Add([]byte("{version: 1, rules: [{name: a, when: 'request.path.glob(\"/**\")', action: allow}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load("fuzz.yaml", data)
		if err != nil {
			return
		}
		p.Decide(&Input{Principal: &identity.Principal{Groups: []string{"ml-users"}}, Request: Request{Path: "/v1/x"}})
	})
}

// FuzzGlob compares globMatch with globBacktrack (the matcher it
// replaced) and with runeGlob, the same rules over []rune, on valid UTF-8; and Glob with path.Match on the patterns both support
// (no "**", classes or escapes) where path.Match's byte-wise "*" cannot
// stop inside a character (it lets "*??" match one 4-byte character).
func FuzzGlob(f *testing.F) {
	f.Add("/v1/*", "/v1/models")
	f.Add("/v1/?/x*", "/v1/a/xyz")
	f.Add("*/*", "a/b")
	f.Add("*??", "怀")
	f.Add("**a*?\xc3", "x/a\xc3\xa9\xc3")
	f.Fuzz(func(t *testing.T, pat, s string) {
		got := Glob(pat, s)
		// The bounds keep the backtracking references fast.
		if len(pat) <= 16 && len(s) <= 64 && strings.Count(pat, "*") <= 4 {
			if g, w := globMatch(pat, s), globBacktrack(pat, s); g != w {
				t.Fatalf("globMatch(%q, %q) = %v, backtracking reference = %v", pat, s, g, w)
			}
		}
		if utf8.ValidString(pat) && utf8.ValidString(s) && len(pat) <= 16 && len(s) <= 64 && strings.Count(pat, "*") <= 4 {
			if g, w := globMatch(pat, s), runeGlob([]rune(pat), []rune(s)); g != w {
				t.Fatalf("globMatch(%q, %q) = %v, []rune reference = %v", pat, s, g, w)
			}
		}
		if strings.Contains(pat, "**") || strings.ContainsAny(pat, `[]\`) || len(pat) > 64 || len(s) > 256 ||
			(strings.Contains(pat, "*") && !isASCII(s)) {
			return
		}
		want, err := path.Match(pat, s)
		if err == nil && got != want {
			t.Fatalf("Glob(%q, %q) = %v, path.Match = %v", pat, s, got, want)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// FuzzSuite: no suite file makes ParseSuite panic, and a suite that parses
// runs against a policy without panicking.
func FuzzSuite(f *testing.F) {
	f.Add([]byte("policy: p.yaml\ntests:\n  - name: a\n    principal: {sub: alice, groups: [ml-users]}\n    request: {method: POST, path: /v1/chat/completions}\n    body: {model: m}\n    expect: {action: allow, rule: users}\n"))
	f.Add([]byte("policy: p.yaml\ntests:  ! \n"))
	f.Add([]byte("policy: p.yaml\ntests: [{name: x, expect: {action: deny}, now: '2026-01-01T00:00:00Z'}]\n"))
	p, err := Load("p.yaml", []byte(policyV1))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSuite("fuzz.yaml", data)
		if err != nil {
			return
		}
		for i := range s.Tests {
			s.run(p, &s.Tests[i])
		}
	})
}
