package policy

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// globBacktrack is the recursive matcher globMatch replaced, kept as the
// reference its results are checked against: same results, but a pattern
// with many stars on a long path made it exponential.
func globBacktrack(pat, s string) bool {
	for len(pat) > 0 {
		switch pat[0] {
		case '*':
			if len(pat) > 1 && pat[1] == '*' {
				rest := strings.TrimLeft(pat, "*")
				if rest == "" {
					return true
				}
				for i := 0; ; i += runeLen(s[i:]) {
					if globBacktrack(rest, s[i:]) {
						return true
					}
					if i == len(s) {
						return false
					}
				}
			}
			rest := pat[1:]
			for i := 0; ; i += runeLen(s[i:]) {
				if globBacktrack(rest, s[i:]) {
					return true
				}
				if i == len(s) || s[i] == '/' {
					return false
				}
			}
		case '?':
			if len(s) == 0 || s[0] == '/' {
				return false
			}
			_, n := utf8.DecodeRuneInString(s)
			pat, s = pat[1:], s[n:]
			continue
		default:
			if len(s) == 0 || s[0] != pat[0] {
				return false
			}
		}
		pat, s = pat[1:], s[1:]
	}
	return len(s) == 0
}

// globAlphabet is what generated patterns and paths are made of: the
// wildcards, the separator, ASCII, multi-byte characters, a lone
// continuation byte and an invalid byte (patterns and paths are not
// always valid UTF-8).
var globAlphabet = []string{"*", "*", "?", "/", "/", "a", "b", "a", "é", "怀", "😀", "\x80", "\xff", "\xc3"}

func randGlobString(r *rand.Rand, alphabet []string, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// TestGlobDifferential: the automaton gives the backtracking matcher's
// result on generated patterns and paths (wildcards, runs of stars,
// separators, multi-byte and invalid UTF-8), both unanchored and through
// Glob's trailing "/**" rule; and on paths built to match, so the true
// answers are well represented.
func TestGlobDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	pathAlphabet := globAlphabet[2:] // no stars: paths hold "?" and "*" rarely
	pathAlphabet = append(pathAlphabet, "*")
	matches := 0
	const n = 200000
	for k := range n {
		pat := randGlobString(r, globAlphabet, r.IntN(9))
		var s string
		if k%2 == 0 {
			s = randGlobString(r, pathAlphabet, r.IntN(12))
		} else {
			s = instantiate(r, pat)
		}
		got, want := globMatch(pat, s), globBacktrack(pat, s)
		if got != want {
			t.Fatalf("globMatch(%q, %q) = %v, backtracking reference = %v", pat, s, got, want)
		}
		if got {
			matches++
		}
		for _, p := range []string{pat + "/**", "/" + pat} {
			ref := globBacktrack(p, s)
			if pre, ok := strings.CutSuffix(p, "/**"); ok && globBacktrack(pre, s) {
				ref = true
			}
			if g := Glob(p, s); g != ref {
				t.Fatalf("Glob(%q, %q) = %v, reference = %v", p, s, g, ref)
			}
		}
	}
	if matches < n/10 {
		t.Fatalf("only %d of %d generated cases matched: the generator does not exercise matches", matches, n)
	}
	// Long patterns (more than 63 positions take several state words),
	// with few stars so the reference stays fast.
	for range 2000 {
		pat := randGlobString(r, []string{"a", "b", "/", "?", "é"}, 60+r.IntN(80))
		for range r.IntN(4) {
			at := r.IntN(len(pat) + 1)
			pat = pat[:at] + []string{"*", "**"}[r.IntN(2)] + pat[at:]
		}
		s := instantiate(r, pat)
		if r.IntN(2) == 0 {
			s += randGlobString(r, []string{"a", "b", "/"}, r.IntN(4))
		}
		if got, want := globMatch(pat, s), globBacktrack(pat, s); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, backtracking reference = %v", pat, s, got, want)
		}
	}
}

// instantiate returns a string pat would match if its wildcards were
// filled with generated text (a literal invalid byte or "/" after a "?"
// may still make it not match; the reference decides).
func instantiate(r *rand.Rand, pat string) string {
	var b strings.Builder
	fill := []string{"a", "b", "é", "怀", "x"}
	for i := 0; i < len(pat); i++ {
		switch pat[i] {
		case '*':
			double := i+1 < len(pat) && pat[i+1] == '*'
			for i+1 < len(pat) && pat[i+1] == '*' {
				i++
			}
			for range r.IntN(4) {
				if double && r.IntN(3) == 0 {
					b.WriteString("/")
				}
				b.WriteString(fill[r.IntN(len(fill))])
			}
		case '?':
			b.WriteString(fill[r.IntN(len(fill))])
		default:
			b.WriteByte(pat[i])
		}
	}
	return b.String()
}

// TestGlobPathological: patterns that made the backtracking matcher
// exponential answer on a 10 KiB path (a decision would otherwise hang;
// BenchmarkGlobPathological has the figures).
func TestGlobPathological(t *testing.T) {
	long := strings.Repeat("a", 10<<10)
	for _, tt := range []struct {
		pat, s string
		want   bool
	}{
		{"*a*a*a*a*a*a*a*a*b", long, false},
		{"*a*a*a*a*a*a*a*a*a", long, true},
		{"**a**a**a**a**a**a**a**b", long, false},
		{"**a*a*a*a*a*a*a*a*b", strings.Repeat("a", 5<<10) + "/" + strings.Repeat("a", 5<<10), false},
		{"/v1/**/*a*a*a*a*a*a*b/**", "/v1/" + strings.Repeat("x/aaaaaaaaaaaaaaaaaaaa", 400), false},
	} {
		if got := Glob(tt.pat, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %d-byte path) = %v, want %v", tt.pat, len(tt.s), got, tt.want)
		}
	}
}

// BenchmarkGlobPathological: "*a*a*a*a*a*a*a*a*b" on a 10 KiB path of
// "a"s, which never matches. The automaton's cost grows with
// len(pattern)·len(path); the backtracking reference is exponential in
// the number of stars, so it is run on 24 bytes only, for comparison.
func BenchmarkGlobPathological(b *testing.B) {
	const pat = "*a*a*a*a*a*a*a*a*b"
	for _, bb := range []struct {
		name string
		f    func(string, string) bool
		n    int
	}{
		{"automaton/10KiB", globMatch, 10 << 10},
		{"automaton/24B", globMatch, 24},
		{"backtracking/24B", globBacktrack, 24},
	} {
		s := strings.Repeat("a", bb.n)
		b.Run(bb.name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				if bb.f(pat, s) {
					b.Fatal("matched")
				}
			}
		})
	}
}

// BenchmarkGlobTypical: the patterns policies use, on request paths.
func BenchmarkGlobTypical(b *testing.B) {
	for _, bb := range []struct {
		name string
		f    func(string, string) bool
	}{{"automaton", globMatch}, {"backtracking", globBacktrack}} {
		b.Run(bb.name, func(b *testing.B) {
			for b.Loop() {
				_ = bb.f("/v1/chat/**", "/v1/chat/completions")
				_ = bb.f("/v1/files/*/content", "/v1/files/file-abc123/content")
				_ = bb.f("warden-demo-*", "warden-demo-small")
			}
		})
	}
}
