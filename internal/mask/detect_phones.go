package mask

// Phone numbers (see detectors.go).

import (
	"regexp"
	"strings"
)

// The phone patterns capture the number in group 1 after a boundary (start
// of window or a character that cannot precede a number). An extension
// written against the number (x123, ext.123) is part of the match.
const (
	phonePre = `(?:^|[^0-9A-Za-z+\x{FFFD}])(`
	phoneExt = `(?:(?:x|ext\.?)\d{1,6})?)`
)

type phonePlan int

const (
	planNANP     phonePlan = iota // validated as a North American number
	planIntl                      // '+' and 8-15 digits
	planNational                  // trunk prefix 0 (UK, DE, FR, IN landlines): 10-12 digits
	planIndiaMobile
)

// phoneREs are the phone patterns with the first digits of the runs of
// digit groups they can match (0: they need a '+').
var phoneREs = []struct {
	re     *regexp.Regexp
	plan   phonePlan
	firsts uint16
}{
	// (415) 555-2671, 415-555-2671, 415.555.2671, 415 555 2671, +1 415 555 2671, 1-415-555-2671
	{regexp.MustCompile(phonePre + `(?:\+?1[-. ]?)?(?:\(\d{3}\)[-. ]?|\d{3}[-. ])\d{3}[-. ]\d{4}` + phoneExt), planNANP, 0x3fe},
	{regexp.MustCompile(phonePre + `\+1\d{10}` + phoneExt), planNANP, 0},
	// E.164 style: '+', then 8-15 digits with at most two separators between digits.
	{regexp.MustCompile(phonePre + `\+(?:[-. ()]{0,2}\d){8,15}` + phoneExt), planIntl, 0},
	// National numbers with a trunk 0: 020 7946 0958, 030/12345678, (030) 1234567, 01 23 45 67 89.
	{regexp.MustCompile(phonePre + `(?:\(0[1-9]\d{0,3}\) ?|0[1-9]\d{0,3}[-./ ])\d{2,8}(?:[-./ ]\d{1,8}){0,4}` + phoneExt), planNational, 1},
	// Indian mobile numbers: 98765 43210, 098765-43210.
	{regexp.MustCompile(phonePre + `0?[6-9]\d{4}[- ]\d{5}` + phoneExt), planIndiaMobile, 1 | 0x3c0},
}

func detectPhones(c *detectCtx, r *rule, hits []hit) []hit {
	if scorePhone < r.minScore {
		return hits
	}
	n := c.n
	// Numbers without '+' must stand alone (see below), so they are whole
	// runs of digit groups with 10-12 digits: a card number or an SSN is
	// not searched with the phone patterns.
	plus, firsts := phoneCandidates(n)
	for _, p := range phoneREs {
		if p.firsts == 0 && !plus || p.firsts != 0 && firsts&p.firsts == 0 {
			continue
		}
		for _, loc := range p.re.FindAllStringSubmatchIndex(n, -1) {
			s, e := loc[2], loc[3]
			if e < len(n) && (isWordByte(n[e]) || (isDigit(n[e-1]) && n[e] == '-' && e+1 < len(n) && isDigit(n[e+1]))) {
				continue // the number goes on: not this shape
			}
			if p.plan != planIntl && s >= 2 && isDigit(n[s-2]) && strings.IndexByte(" -./", n[s-1]) >= 0 {
				continue // the middle of a run of digit groups
			}
			if p.plan != planIntl && e+1 < len(n) && strings.IndexByte(" -./", n[e]) >= 0 && isDigit(n[e+1]) {
				continue // more digit groups follow: a list or a longer number
			}
			if phoneValid(n[s:e], p.plan) {
				hits = append(hits, hit{s, e, r})
			}
		}
	}
	return hits
}

// phoneCandidates reports whether a window has a '+' (international
// numbers), and, as a bit set of first digits (bit d for digit d), the runs
// of digit groups (digits joined by single separators or parentheses) with
// 10 to 12 digits: numbers without '+' must stand alone (see
// detectPhones), so only such a run can hold one.
func phoneCandidates(n string) (plus bool, firsts uint16) {
	digits := 0
	var first byte
	end := func() {
		if digits >= 10 && digits <= 12 {
			firsts |= 1 << (first - '0')
		}
		digits = 0
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case isDigit(c):
			if digits == 0 {
				first = c
			}
			digits++
		case c == '(' || c == ')':
		case (c == ' ' || c == '-' || c == '.' || c == '/') && i > 0 && i+1 < len(n) &&
			(isDigit(n[i-1]) || n[i-1] == ')') && (isDigit(n[i+1]) || n[i+1] == '('):
		default:
			if c == '+' {
				plus = true
			}
			end()
		}
	}
	end()
	return plus, firsts
}

// phoneValid checks the digits of a candidate against its numbering plan.
func phoneValid(v string, plan phonePlan) bool {
	var d [24]byte
	var groups [8]int // digits per group
	var seps [8]byte  // the separator before each group after the first
	k, ng := 0, 0
	var sep byte
	inGroup := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == 'x' || c == 'e' {
			break // the extension
		}
		if !isDigit(c) {
			inGroup = false
			if c != '(' && c != '+' && c != ')' {
				sep = c
			}
			continue
		}
		if k == len(d) {
			return false
		}
		d[k] = c
		k++
		if !inGroup {
			if ng == len(groups) {
				return false
			}
			seps[ng] = sep
			ng++
			sep = 0
		}
		groups[ng-1]++
		inGroup = true
	}
	num := d[:k]
	switch plan {
	case planNANP:
		if k == 11 && num[0] == '1' {
			num = num[1:]
		}
		return len(num) == 10 && num[0] >= '2' && num[3] >= '2' && !(num[1] == '1' && num[2] == '1')
	case planIntl:
		return k >= 8 && k <= 15 && num[0] != '0'
	case planNational:
		return k >= 10 && k <= 12 && nationalShape(groups[:ng], seps[:ng])
	case planIndiaMobile:
		return k == 10 || (k == 11 && num[0] == '0')
	}
	return false
}

// nationalShape accepts the ways national numbers with a trunk 0 are
// grouped: area code and subscriber number (030 12345678, 07700 900123,
// 011-23456789), with a German extension (030 12345-67), 3-4-4 (020 7946
// 0958, 011 2345 6789), 4-3-4 (0161 496 0000), and French pairs. Other
// groupings of the same digits are tracking, order or account numbers.
func nationalShape(g []int, seps []byte) bool {
	dots := 0
	for _, s := range seps {
		if s == '.' {
			dots++
		}
	}
	pairs := len(g) == 5 && g[0] == 2 && g[1] == 2 && g[2] == 2 && g[3] == 2 && g[4] == 2
	if dots > 0 {
		return pairs && dots == 4
	}
	switch {
	case pairs:
		return true
	case len(g) == 2:
		return g[0] >= 3 && g[0] <= 5 && g[1] >= 5
	case len(g) == 3 && seps[2] == '-' && g[2] <= 5:
		return g[0] >= 3 && g[0] <= 5 && g[1] >= 3
	case len(g) == 3:
		return (g[0] == 3 && g[1] == 4 && g[2] == 4) || (g[0] == 4 && g[1] == 3 && g[2] == 4)
	}
	return false
}
