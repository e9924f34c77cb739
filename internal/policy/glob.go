package policy

import (
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Glob reports whether s matches pattern: "*" matches any run of
// characters except "/", "?" one character (rune) except "/", "**" any run
// including "/"; a trailing "/**" also matches the bare prefix, so
// "/v1/files/**" matches "/v1/files". Other characters match themselves.
//
// It runs in time proportional to len(pattern)·len(s), whatever the
// pattern: an operator's "*a*a*a*a*b" on a long path cannot make a
// decision exponential (docs/policy.md, glob).
func Glob(pattern, s string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/**"); ok && globMatch(prefix, s) {
		return true
	}
	return globMatch(pattern, s)
}

// runeLen is the length in bytes of the first rune of s (1 for an
// invalid byte).
func runeLen(s string) int {
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// globSlots is how many positions of s are live at once: a step consumes
// one byte or one rune (at most utf8.UTFMax bytes).
const globSlots = utf8.UTFMax + 1

// globMatch simulates the pattern as a nondeterministic automaton over s
// instead of backtracking: after each position of s it keeps the set of
// pattern positions that can be reached there, so every (pattern
// position, string position) pair is visited once. The transitions are
// those of the recursive matcher it replaced (kept in the tests as the
// reference): a literal byte consumes the same byte; "?" one rune other
// than "/"; "*" any number of runes other than "/", "**" (a run of two or
// more stars) any number of runes. Wildcards consume whole runes counted
// from where they start, so "?" after a "*" never matches half of a
// multi-byte character.
//
// States are bit sets of pattern positions; slot i%globSlots holds the
// set for position i of s, as steps reach up to utf8.UTFMax bytes ahead.
func globMatch(pat, s string) bool {
	// A literal prefix matches byte for byte, deterministically.
	j := strings.IndexAny(pat, "*?")
	if j < 0 {
		return pat == s
	}
	if !strings.HasPrefix(s, pat[:j]) {
		return false
	}
	pat, s = pat[j:], s[j:]
	switch strings.TrimLeft(pat, "*") {
	case "": // only stars are left
		return len(pat) > 1 || strings.IndexByte(s, '/') < 0
	}
	if len(pat) < 64 {
		return globMatch64(pat, s)
	}
	m := len(pat)
	words := (m + 1 + 63) / 64
	var small [globSlots]uint64
	var sets []uint64
	if words == 1 {
		sets = small[:]
	} else {
		sets = make([]uint64, globSlots*words)
	}
	set := func(i int) []uint64 { k := i % globSlots * words; return sets[k : k+words] }
	add := func(b []uint64, p int) { b[p>>6] |= 1 << (p & 63) }
	has := func(b []uint64, p int) bool { return b[p>>6]&(1<<(p&63)) != 0 }
	// starEnd(p) for a "*" at p: where its run of stars ends, and whether
	// the run is a "**". Only the first star of a run is ever reached.
	starEnd := func(p int) (int, bool) {
		q := p + 1
		for q < m && pat[q] == '*' {
			q++
		}
		return q, q-p > 1
	}
	add(set(0), 0)
	for i := 0; ; i++ {
		cur := set(i)
		// Epsilon moves: a star may match nothing. Stars only move
		// forward in the pattern, so one ascending pass closes the set.
		live := false
		for w := range cur {
			for x := cur[w]; x != 0; x &= x - 1 {
				live = true
				p := w<<6 | bits.TrailingZeros64(x)
				if p < m && pat[p] == '*' {
					q, _ := starEnd(p)
					add(cur, q)
					if q>>6 == w {
						x |= 1 << (q & 63) // visit q in this pass
					}
				}
			}
		}
		if i == len(s) {
			return has(cur, m)
		}
		if !live {
			// No pattern position reached here; later positions may still
			// be reached by a rune step that started earlier.
			if !anyLive(sets, words, i, len(s)) {
				return false
			}
			continue
		}
		c := s[i]
		n := runeLen(s[i:])
		for w := range cur {
			for x := cur[w]; x != 0; x &= x - 1 {
				p := w<<6 | bits.TrailingZeros64(x)
				if p == m {
					continue
				}
				switch pat[p] {
				case '*':
					if _, double := starEnd(p); double || c != '/' {
						add(set(i+n), p)
					}
				case '?':
					if c != '/' {
						add(set(i+n), p+1)
					}
				default:
					if pat[p] == c {
						add(set(i+1), p+1)
					}
				}
			}
			cur[w] = 0 // the slot is reused for position i+globSlots
		}
	}
}

// anyLive reports whether a set of the positions after i (up to the end
// of s) holds a state.
func anyLive(sets []uint64, words, i, n int) bool {
	for j := i + 1; j <= n && j < i+globSlots; j++ {
		k := j % globSlots * words
		for _, x := range sets[k : k+words] {
			if x != 0 {
				return true
			}
		}
	}
	return false
}

// globMatch64 is globMatch for a pattern shorter than 64 bytes (every
// pattern policies use): the state set is one word, the wildcard moves
// are masks computed once, and only the live literal positions are
// visited per byte of s.
func globMatch64(pat, s string) bool {
	m := len(pat)
	var starNext [64]uint8 // for the first star of a run: where it ends
	var single, double, quest uint64
	for p := 0; p < m; {
		switch pat[p] {
		case '*':
			q := p + 1
			for q < m && pat[q] == '*' {
				q++
			}
			starNext[p] = uint8(q)
			if q-p > 1 {
				double |= 1 << p
			} else {
				single |= 1 << p
			}
			p = q
		case '?':
			quest |= 1 << p
			p++
		default:
			p++
		}
	}
	stars := single | double
	literal := ^(stars | quest | 1<<m)
	var slots [globSlots]uint64
	slots[0] = 1
	for i, k := 0, 0; ; i, k = i+1, k+1 {
		if k == globSlots {
			k = 0
		}
		cur := slots[k]
		// A star may match nothing. The position after a run of stars
		// is never a star, so one pass closes the set.
		for x := cur & stars; x != 0; x &= x - 1 {
			cur |= 1 << starNext[bits.TrailingZeros64(x)]
		}
		if i == len(s) {
			return cur&(1<<m) != 0
		}
		slots[k] = 0
		if cur == 0 {
			if slots == ([globSlots]uint64{}) {
				return false
			}
			continue
		}
		c := s[i]
		var lit uint64
		for x := cur & literal; x != 0; x &= x - 1 {
			if p := bits.TrailingZeros64(x); pat[p] == c {
				lit |= 1 << (p + 1)
			}
		}
		slots[(k+1)%globSlots] |= lit
		wild := cur & double
		if c != '/' {
			wild |= cur&single | (cur&quest)<<1
		}
		if wild != 0 {
			slots[(k+runeLen(s[i:]))%globSlots] |= wild
		}
	}
}
