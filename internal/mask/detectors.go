package mask

// Warden's own detectors for the default entity types. They run on a
// normalized window (ASCII letters, digits and separators; every space is
// ' ', every dash '-', letters outside ASCII are nbLetter) and report hits
// in its coordinates. What each accepts is measured, format by format, by
// TestDetectorQuality (docs/masking.md). Cards are in detect_cards.go,
// phone numbers in detect_phones.go.

import (
	"regexp"
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

// digitRun returns the next run of digits at or after from: n[i:j], or
// i == len(n) when there is none.
func digitRun(n string, from int) (i, j int) {
	i = from
	for i < len(n) && !isDigit(n[i]) {
		i++
	}
	j = i
	for j < len(n) && isDigit(n[j]) {
		j++
	}
	return i, j
}

// span is a byte range [s, e) of a normalized window.
type span struct{ s, e int }

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
	for i, j := digitRun(n, 0); i < len(n); i, j = digitRun(n, j) {
		if i > 0 && isWordByte(n[i-1]) {
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
				j += 8 // go on after the number
			}
		case j-i == 9 && end(j) && scoreSSNLabel >= r.minScore && ssnValid(n[i:i+3], n[i+3:i+5], n[i+5:j]):
			if ssnLabel.MatchString(c.before(i)) {
				hits = append(hits, hit{i, j, r})
			}
		}
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
