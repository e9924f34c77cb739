package mask

// Payment card numbers (see detectors.go).

import (
	"regexp"
)

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
	for i, j := digitRun(n, 0); i < len(n); i, j = digitRun(n, j) {
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
