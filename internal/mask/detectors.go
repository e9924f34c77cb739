package mask

// Warden's own detectors for the default entity types. They run on a
// normalized window (ASCII letters, digits and separators; every space is
// ' ', every dash '-', letters outside ASCII are nbLetter) and report hits
// in its coordinates. What each accepts is measured, format by format, by
// TestDetectorQuality (docs/masking.md).

import (
	"regexp"
	"strings"
)

// detectCtx is what a detector sees of a window.
type detectCtx struct {
	n      string   // the normalized window
	s      string   // the original text
	start  int      // the window's start in s
	starts []int32  // offset in s (from start) of each byte of n
	pre    lookback // a copy: the window context must not keep the caller's alive
}

// before returns up to lookbackLen bytes of the original text before the
// normalized offset ns, continuing into what came before s.
func (c *detectCtx) before(ns int) string {
	return c.pre.before(c.s, c.start+int(c.starts[ns]))
}

// Scores of the built-in detectors, compared with an entity's min_score.
const (
	scoreChecksum  = 1.0  // cards (Luhn), IBANs (mod 97)
	scoreSSNDashed = 0.85 // 123-45-6789
	scoreSSNLabel  = 0.8  // "SSN: 123456789"
	scoreSSNSpaced = 0.7  // 123 45 6789
	scoreEmail     = 0.8
	scorePhone     = 0.6
)

// span is a byte range [s, e) of a normalized window.
type span struct{ s, e int }

// ---- payment cards ----

// detectCards finds Luhn-valid card numbers of every network and valid
// length (13-19 digits): one run of digits, or groups separated by single
// spaces, dashes or dots (line breaks count as spaces). A group touching a
// letter (a hash, a UUID part) is not a group. A run of groups that is as a
// whole a card-shaped number (known network, valid length) but fails the
// checksum is a checksum-invalid number, not a place to look for shorter
// cards; runs longer than 19 digits are searched for cards, longest first.
func detectCards(c *detectCtx, r *rule, hits []hit) []hit {
	if scoreChecksum < r.minScore {
		return hits
	}
	n := c.n
	var buf [24]span
	groups := buf[:0]
	i := 0
	for i < len(n) {
		if !isDigit(n[i]) {
			i++
			continue
		}
		j := i
		for j < len(n) && isDigit(n[j]) {
			j++
		}
		ok := (i == 0 || !isWordByte(n[i-1])) && (j == len(n) || !isWordByte(n[j]))
		if len(groups) > 0 {
			prev := groups[len(groups)-1]
			if !ok || prev.e+1 != i || !isCardSep(n[prev.e]) {
				hits = cardsIn(c, groups, r, hits)
				groups = groups[:0]
			}
		}
		if ok {
			groups = append(groups, span{i, j})
		}
		i = j
	}
	return cardsIn(c, groups, r, hits)
}

func isCardSep(b byte) bool { return b == ' ' || b == '-' || b == '.' }

// barcodeLabel matches the end of the text before a number labelled as a
// product code: 13-digit EAN codes starting with 4, 5 or 6 pass the Luhn
// check one time in ten, like 13-digit Visa and Maestro numbers.
var barcodeLabel = regexp.MustCompile(`(?i)(?:^|[^a-z0-9])(?:ean(?:-?13)?|gtin(?:-?13)?|upc|barcode|isbn(?:-?13)?|sku)[ \t.#:=|"'()\[\]-]*$`)

// cardsIn reports the cards in one run of digit groups.
func cardsIn(c *detectCtx, groups []span, r *rule, hits []hit) []hit {
	n := c.n
	total := 0
	for _, g := range groups {
		total += g.e - g.s
	}
	if total < 13 {
		return hits
	}
	if total == 13 && len(groups) == 1 && barcodeLabel.MatchString(c.before(groups[0].s)) {
		return hits
	}
	if total <= 19 {
		valid, shaped := cardCandidate(n, groups)
		if valid {
			return append(hits, hit{groups[0].s, groups[len(groups)-1].e, r})
		}
		if shaped {
			return hits
		}
	}
	// A longer run: cards written one after the other, or a card followed
	// by more digits (an expiry date). A card may start the run, follow a
	// card, or follow a group shorter than four digits ("Qty 2 4111 …");
	// not the middle of a longer number (tracking numbers).
	afterCard := false
	for a := 0; a < len(groups); {
		if a > 0 && !afterCard && groups[a-1].e-groups[a-1].s >= 4 {
			a++
			continue
		}
		d, b := 0, a
		for b < len(groups) && d+groups[b].e-groups[b].s <= 19 {
			d += groups[b].e - groups[b].s
			b++
		}
		afterCard = false
		for e := b; e > a && d >= 13; e-- {
			if valid, _ := cardCandidate(n, groups[a:e]); valid {
				hits = append(hits, hit{groups[a].s, groups[e-1].e, r})
				afterCard = true
				break
			}
			d -= groups[e-1].e - groups[e-1].s
		}
		if afterCard {
			for a < len(groups) && groups[a].s < hits[len(hits)-1].ne {
				a++
			}
			continue
		}
		a++
	}
	return hits
}

// cardCandidate checks groups (13-19 digits) as one card number: shaped
// means written like a card of a known network and length; valid adds the
// Luhn checksum.
func cardCandidate(n string, groups []span) (valid, shaped bool) {
	var d [19]byte
	k := 0
	for _, g := range groups {
		if k+g.e-g.s > len(d) {
			return false, false
		}
		k += copy(d[k:], n[g.s:g.e])
	}
	if k < 13 || !cardGroupsShaped(groups) || !cardNetwork(d[:k]) {
		return false, false
	}
	return luhn(d[:k]), true
}

// cardGroupsShaped: one run of digits, or a first group of 4-6 digits,
// middle groups of 3-6 and a last group of 1-7 (1-15 after a single first
// group: the 6-13 layout of 19-digit cards).
func cardGroupsShaped(groups []span) bool {
	k := len(groups)
	if k == 1 {
		return true
	}
	for i, g := range groups {
		l := g.e - g.s
		switch {
		case i == 0:
			if l < 4 || l > 6 {
				return false
			}
		case i == k-1:
			if l < 1 || (k > 2 && l > 7) {
				return false
			}
		default:
			if l < 3 || l > 6 {
				return false
			}
		}
	}
	return true
}

// cardNetwork reports whether the digits start with an issuer prefix of a
// card network and have a length that network issues.
func cardNetwork(d []byte) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	switch d[0] {
	case '2':
		switch {
		case p4 >= 2221 && p4 <= 2720: // Mastercard 2-series
			return n == 16
		case p4 >= 2200 && p4 <= 2204: // Mir
			return n >= 16
		}
	case '3':
		switch {
		case p2 == 34 || p2 == 37: // American Express
			return n == 15
		case p2 == 30 || p2 == 36 || p2 == 38 || p2 == 39: // Diners Club
			return n >= 14
		case p4 >= 3528 && p4 <= 3589: // JCB
			return n >= 16
		}
	case '4': // Visa
		return n == 13 || n == 16 || n == 19
	case '5':
		if p2 >= 51 && p2 <= 55 { // Mastercard
			return n == 16
		}
		return true // Maestro (50, 56-59): 12-19
	case '6': // Discover, UnionPay, RuPay, Maestro: 16-19 (Maestro from 12)
		return true
	}
	return false
}

// luhn checks the Luhn checksum of a digit string.
func luhn(d []byte) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// ---- email addresses ----

// emailRE matches an address in a normalized window: dot-atom local part,
// dotted domain whose top-level label is letters only (so package specs
// like openai@7.57.0 are not addresses) or an IDN A-label (xn--…). \x{FFFD}
// stands for letters outside ASCII (nbLetter), so internationalized
// addresses match.
var emailRE = regexp.MustCompile(`[A-Za-z0-9\x{FFFD}_%+-]+(?:\.[A-Za-z0-9\x{FFFD}_%+-]+)*@` +
	`(?:[A-Za-z0-9\x{FFFD}](?:[A-Za-z0-9\x{FFFD}-]{0,61}[A-Za-z0-9\x{FFFD}])?\.)+` +
	`(?:[A-Za-z\x{FFFD}]{2,63}|[Xx][Nn]--[A-Za-z0-9-]{1,59})`)

func detectEmails(c *detectCtx, r *rule, hits []hit) []hit {
	if scoreEmail < r.minScore {
		return hits
	}
	for _, loc := range emailRE.FindAllStringIndex(c.n, -1) {
		// The top-level label must end the domain: "a@b.com4" is not an
		// address ending in .com.
		if e := loc[1]; e < len(c.n) && (isWordByte(c.n[e]) || c.n[e] == '-' || c.n[e] == '_') {
			continue
		}
		hits = append(hits, hit{loc[0], loc[1], r})
	}
	return hits
}

// ---- phone numbers ----

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

// ---- IBANs ----

// ibanLengths is the IBAN length of each country that issues them (SWIFT
// IBAN registry).
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
	"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
	"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
	"GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
	"IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
	"LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
	"NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
	"RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
	"SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}

// detectIBANs finds IBANs in electronic form (DE89370400440532013000) or
// print form (DE89 3704 0044 0532 0130 00), in any letter case: a known
// country code, its exact length, and the ISO 7064 mod-97 checksum.
func detectIBANs(c *detectCtx, r *rule, hits []hit) []hit {
	if scoreChecksum < r.minScore {
		return hits
	}
	n := c.n
	for i := 0; i+4 <= len(n); i++ {
		if !isLetter(n[i]) || !isLetter(n[i+1]) || !isDigit(n[i+2]) || !isDigit(n[i+3]) || (i > 0 && isWordByte(n[i-1])) {
			continue
		}
		cc := [2]byte{n[i] &^ 0x20, n[i+1] &^ 0x20}
		want := ibanLengths[string(cc[:])]
		if want == 0 {
			continue
		}
		var v [34]byte
		k, group, j := 0, 0, i
		for j < len(n) && k < want {
			b := n[j]
			switch {
			case isAlnum(b):
				if isLower(b) {
					b -= 'a' - 'A'
				}
				v[k] = b
				k++
				group++
				j++
				continue
			case b == ' ' && group == 4 && j+1 < len(n) && isAlnum(n[j+1]):
				group = 0
				j++
				continue
			}
			break
		}
		if k != want || (j < len(n) && isWordByte(n[j])) || !mod97(v[:k]) {
			continue
		}
		hits = append(hits, hit{i, j, r})
		i = j - 1
	}
	return hits
}

// mod97 checks an upper-case IBAN: the country code and check digits moved
// to the end, letters as two digits (A=10), the number mod 97 must be 1.
func mod97(v []byte) bool {
	rem := 0
	push := func(b byte) {
		if isDigit(b) {
			rem = (rem*10 + int(b-'0')) % 97
			return
		}
		x := int(b-'A') + 10
		rem = (rem*100 + x) % 97
	}
	for _, b := range v[4:] {
		push(b)
	}
	for _, b := range v[:4] {
		push(b)
	}
	return rem == 1
}

// ---- US social security numbers ----

// ssnLabel matches the end of the text before a bare 9-digit number when it
// names the number as an SSN: "SSN: ", "ssn=", "social security number ",
// "Soc. Sec. No. ", `"ssn": "`, "| SSN | ".
var ssnLabel = regexp.MustCompile(`(?i)(?:^|[^a-z0-9])(?:ssn|ss#|social[ _.-]*security|soc\.?[ _-]*sec\.?)(?:[ _.-]*(?:number|num|no|nr|#))?` +
	`[ \t.#:=|"'()\[\]-]*(?:(?:is|was)[ \t]+)?["'(\[]?[ \t]*$`)

// detectSSNs finds US social security numbers written 123-45-6789 or
// 123 45 6789, and a bare 123456789 right after a label that names it. A
// number that was never issued (area 000, 666 or 9xx, group 00, serial
// 0000, or one of the numbers published in advertising) is not an SSN.
func detectSSNs(c *detectCtx, r *rule, hits []hit) []hit {
	n := c.n
	for i := 0; i < len(n); {
		if !isDigit(n[i]) {
			i++
			continue
		}
		j := i
		for j < len(n) && isDigit(n[j]) {
			j++
		}
		if i > 0 && isWordByte(n[i-1]) {
			i = j
			continue
		}
		end := func(e int) bool {
			return e == len(n) || !isWordByte(n[e]) && !(n[e] == '-' && e+1 < len(n) && isDigit(n[e+1]))
		}
		switch {
		case j-i == 3 && j+8 <= len(n) && (n[j] == '-' || n[j] == ' ') && isDigit(n[j+1]) && isDigit(n[j+2]) &&
			n[j+3] == n[j] && isDigit(n[j+4]) && isDigit(n[j+5]) && isDigit(n[j+6]) && isDigit(n[j+7]) && end(j+8):
			score := scoreSSNDashed
			if n[j] == ' ' {
				score = scoreSSNSpaced
			}
			if score >= r.minScore && ssnValid(n[i:j], n[j+1:j+3], n[j+4:j+8]) {
				hits = append(hits, hit{i, j + 8, r})
				i = j + 8
				continue
			}
		case j-i == 9 && end(j) && scoreSSNLabel >= r.minScore && ssnValid(n[i:i+3], n[i+3:i+5], n[i+5:j]):
			if ssnLabel.MatchString(c.before(i)) {
				hits = append(hits, hit{i, j, r})
			}
		}
		i = j
	}
	return hits
}

func ssnValid(area, group, serial string) bool {
	if area == "000" || area == "666" || area[0] == '9' || group == "00" || serial == "0000" {
		return false
	}
	switch area + group + serial {
	case "078051120", "219099999": // published in advertising, never valid
		return false
	}
	return true
}
