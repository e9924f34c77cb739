package mask

// Value generators of the labelled corpus (corpus_test.go): each value is
// made with the real rules of its kind.

import (
	"fmt"
	"strconv"
	"strings"
)

// ---- cards ----

type corpusNetwork struct {
	name     string
	prefixes []string
	lengths  []int
}

var cardNetworks = []corpusNetwork{
	{"Visa", []string{"4"}, []int{13, 16, 19}},
	{"Mastercard", []string{"51", "52", "53", "54", "55"}, []int{16}},
	{"Mastercard 2-series", []string{"2221", "2300", "2500", "2720"}, []int{16}},
	{"American Express", []string{"34", "37"}, []int{15}},
	{"Discover", []string{"6011", "644", "649", "65"}, []int{16, 17, 18, 19}},
	{"Diners Club", []string{"36", "38", "300", "305"}, []int{14, 16, 19}},
	{"JCB", []string{"3528", "3550", "3589"}, []int{16, 17, 18, 19}},
	{"UnionPay", []string{"62"}, []int{16, 17, 18, 19}},
	{"Maestro", []string{"5018", "5020", "5038", "6304", "6759", "6761"}, []int{13, 15, 16, 19}},
	{"Mir", []string{"2200", "2204"}, []int{16, 19}},
}

// cardDigits makes a Luhn-valid number of the network and length.
func (g *corpusGen) cardDigits(nw corpusNetwork, length int) string {
	p := g.pick(nw.prefixes)
	return completeLuhn(p + g.digits(length-1-len(p)))
}

// cardGroups is how a card of a network and length is printed.
func cardGroups(network string, length int) []int {
	switch {
	case length == 15 && network == "American Express":
		return []int{4, 6, 5}
	case length == 14:
		return []int{4, 6, 4}
	}
	var gs []int
	for n := length; n > 0; n -= 4 {
		gs = append(gs, min(4, n))
	}
	return gs
}

func splitGroups(d string, sizes []int) []string {
	var out []string
	for _, n := range sizes {
		out = append(out, d[:n])
		d = d[n:]
	}
	return out
}

// cardFormats render a card's digits in each written format.
var cardFormats = []struct {
	name   string
	render func(g *corpusGen, groups []string) string
}{
	{"no separator", func(_ *corpusGen, gs []string) string { return strings.Join(gs, "") }},
	{"spaces", func(_ *corpusGen, gs []string) string { return strings.Join(gs, " ") }},
	{"dashes", func(_ *corpusGen, gs []string) string { return strings.Join(gs, "-") }},
	{"dots", func(_ *corpusGen, gs []string) string { return strings.Join(gs, ".") }},
	{"line-wrapped groups", func(g *corpusGen, gs []string) string {
		k := 1 + g.r.IntN(len(gs)-1)
		return strings.Join(gs[:k], " ") + g.pick([]string{"\n", "\r\n", " \n", "\n  "}) + strings.Join(gs[k:], " ")
	}},
	{"full-width digits", func(_ *corpusGen, gs []string) string { return toFullWidth(strings.Join(gs, " ")) }},
	{"NBSP separators", func(g *corpusGen, gs []string) string {
		return strings.Join(gs, g.pick([]string{"\u00a0", "\u202f", "\u2007"}))
	}},
	{"zero-width separators", func(g *corpusGen, gs []string) string {
		return strings.Join(gs, g.pick([]string{"\u200b", "\u200c", "\u2060", "\u00ad"}))
	}},
}

// ---- IBANs ----

// ibanBBANs is the BBAN layout of each IBAN country (SWIFT registry): n
// digits, a upper-case letters, c letters or digits.
var ibanBBANs = []struct{ cc, bban string }{
	{"AD", "8n12c"}, {"AE", "19n"}, {"AL", "8n16c"}, {"AT", "16n"}, {"AZ", "4a20c"}, {"BA", "16n"},
	{"BE", "12n"}, {"BG", "4a6n8c"}, {"BH", "4a14c"}, {"BR", "23n1a1c"}, {"CH", "5n12c"}, {"CR", "18n"},
	{"CY", "8n16c"}, {"CZ", "20n"}, {"DE", "18n"}, {"DK", "14n"}, {"DO", "4a20n"}, {"EE", "16n"},
	{"ES", "20n"}, {"FI", "14n"}, {"FO", "14n"}, {"FR", "10n11c2n"}, {"GB", "4a14n"}, {"GE", "2a16n"},
	{"GI", "4a15c"}, {"GL", "14n"}, {"GR", "7n16c"}, {"GT", "24c"}, {"HR", "17n"}, {"HU", "24n"},
	{"IE", "4a14n"}, {"IL", "19n"}, {"IS", "22n"}, {"IT", "1a10n12c"}, {"JO", "4a4n18c"}, {"KW", "4a22c"},
	{"KZ", "3n13c"}, {"LB", "4n20c"}, {"LI", "5n12c"}, {"LT", "16n"}, {"LU", "3n13c"}, {"LV", "4a13c"},
	{"MC", "10n11c2n"}, {"MD", "20c"}, {"ME", "18n"}, {"MK", "3n10c2n"}, {"MT", "4a5n18c"}, {"MU", "4a19n3a"},
	{"NL", "4a10n"}, {"NO", "11n"}, {"PK", "4a16c"}, {"PL", "24n"}, {"PS", "4a21c"}, {"PT", "21n"},
	{"QA", "4a21c"}, {"RO", "4a16c"}, {"RS", "18n"}, {"SA", "2n18c"}, {"SE", "20n"}, {"SI", "15n"},
	{"SK", "20n"}, {"SM", "1a10n12c"}, {"TN", "20n"}, {"TR", "6n16c"}, {"UA", "6n19c"}, {"VG", "4a16n"},
	{"XK", "16n"},
}

const upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// iban makes a valid IBAN (electronic form, upper case) of a country.
func (g *corpusGen) iban(cc, layout string) string {
	var bban strings.Builder
	for layout != "" {
		i := strings.IndexAny(layout, "nac")
		n, _ := strconv.Atoi(layout[:i])
		for range n {
			switch layout[i] {
			case 'n':
				bban.WriteByte(byte('0' + g.r.IntN(10)))
			case 'a':
				bban.WriteByte(byte('A' + g.r.IntN(26)))
			default:
				bban.WriteByte(upperAlnum[g.r.IntN(len(upperAlnum))])
			}
		}
		layout = layout[i+1:]
	}
	v := []byte(bban.String() + cc + "00")
	rem := 0
	for _, b := range v {
		if isDigit(b) {
			rem = (rem*10 + int(b-'0')) % 97
		} else {
			rem = (rem*100 + int(b-'A') + 10) % 97
		}
	}
	return fmt.Sprintf("%s%02d%s", cc, 98-rem, bban.String())
}

// printIBAN writes an IBAN in groups of four.
func printIBAN(v string) string {
	var parts []string
	for len(v) > 4 {
		parts = append(parts, v[:4])
		v = v[4:]
	}
	return strings.Join(append(parts, v), " ")
}

// ---- SSNs ----

func (g *corpusGen) ssn() (area, group, serial string) {
	a := 1 + g.r.IntN(899)
	if a == 666 {
		a = 665
	}
	return fmt.Sprintf("%03d", a), fmt.Sprintf("%02d", 1+g.r.IntN(99)), fmt.Sprintf("%04d", 1+g.r.IntN(9999))
}

var ssnLabels = []string{"SSN: ", "ssn=", "SSN ", "Social Security Number: ", "social security number ", "SSN#", "Soc. Sec. No. ", "SSN is ", "(SSN) ", "social_security_number: "}

// ---- emails ----

var idnLocals = []string{"jürgen", "josé", "françois", "zoë", "łukasz", "søren", "ñandú", "иван", "мария", "δημήτρης", "ελένη", "ömer", "çağla", "đorđe", "ingrið"}
var idnDomains = []string{"bücher.de", "müller-gmbh.ch", "café.fr", "почта.рф", "пример.бг", "παράδειγμα.ελ", "xn--bcher-kva.de", "xn--80ak6aa92e.com", "straße.at", "żółw.pl"}

func (g *corpusGen) localPart() string {
	first := strings.ToLower(g.f.FirstName())
	last := strings.ToLower(g.f.LastName())
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
				return r
			}
			return -1
		}, s)
	}
	first, last = clean(first), clean(last)
	switch g.r.IntN(4) {
	case 0:
		return first + "." + last
	case 1:
		return first + "_" + last + g.digits(2)
	case 2:
		return first[:1] + last
	}
	return first + "-" + last
}

func (g *corpusGen) domain() string {
	d := strings.ToLower(g.f.DomainName())
	if !strings.Contains(d, ".") {
		d += ".com"
	}
	return d
}

// ---- phones ----

func (g *corpusGen) nanp() (area, exch, line string) {
	for {
		area = strconv.Itoa(2+g.r.IntN(8)) + g.digits(2)
		if area[1:] != "11" {
			break
		}
	}
	return area, strconv.Itoa(2+g.r.IntN(8)) + g.digits(2), g.digits(4)
}

var deAreas = []string{"30", "40", "89", "69", "221", "211", "711", "351", "341", "511", "911", "151", "152", "157", "160", "170", "171", "176"}

func (g *corpusGen) deNumber() (area, sub string) {
	area = g.pick(deAreas)
	return area, strconv.Itoa(1+g.r.IntN(9)) + g.digits(10-len(area)-1)
}

// phoneFormats render phone numbers; value is the span that must be
// masked (a separated extension is not part of it).
var phoneFormats = []struct {
	name   string
	render func(g *corpusGen) (text, value string)
}{
	{"US (NXX) NXX-XXXX", func(g *corpusGen) (string, string) {
		a, e, l := g.nanp()
		v := g.pick([]string{"(" + a + ") " + e + "-" + l, "(" + a + ")" + e + "-" + l})
		return v, v
	}},
	{"US NXX-NXX-XXXX", func(g *corpusGen) (string, string) { a, e, l := g.nanp(); v := a + "-" + e + "-" + l; return v, v }},
	{"US NXX.NXX.XXXX", func(g *corpusGen) (string, string) { a, e, l := g.nanp(); v := a + "." + e + "." + l; return v, v }},
	{"US NXX NXX XXXX", func(g *corpusGen) (string, string) { a, e, l := g.nanp(); v := a + " " + e + " " + l; return v, v }},
	{"US 1-NXX-NXX-XXXX, +1", func(g *corpusGen) (string, string) {
		a, e, l := g.nanp()
		v := g.pick([]string{"1-" + a + "-" + e + "-" + l, "+1 " + a + " " + e + " " + l, "+1 (" + a + ") " + e + "-" + l, "+1-" + a + "-" + e + "-" + l})
		return v, v
	}},
	{"E.164 compact", func(g *corpusGen) (string, string) {
		a, e, l := g.nanp()
		da, ds := g.deNumber()
		v := g.pick([]string{
			"+1" + a + e + l, "+4420" + g.digits(8), "+447700" + g.digits(6), "+49" + da + ds,
			"+33" + strconv.Itoa(1+g.r.IntN(9)) + g.digits(8), "+91" + strconv.Itoa(6+g.r.IntN(4)) + g.digits(9),
		})
		return v, v
	}},
	{"E.164 spaced", func(g *corpusGen) (string, string) {
		a, e, l := g.nanp()
		da, ds := g.deNumber()
		d := g.digits(8)
		v := g.pick([]string{
			"+1 " + a + " " + e + " " + l, "+44 20 " + d[:4] + " " + d[4:], "+44 7700 " + g.digits(6), "+49 " + da + " " + ds,
			"+33 " + strconv.Itoa(1+g.r.IntN(9)) + " " + d[:2] + " " + d[2:4] + " " + d[4:6] + " " + d[6:],
			"+91 " + strconv.Itoa(6+g.r.IntN(4)) + g.digits(4) + " " + g.digits(5), "+49 (0)" + da + " " + ds,
		})
		return v, v
	}},
	{"UK national", func(g *corpusGen) (string, string) {
		d := g.digits(8)
		v := g.pick([]string{
			"020 " + strconv.Itoa(3+g.r.IntN(6)) + d[1:4] + " " + d[4:],
			"0" + g.pick([]string{"161", "113", "121", "131", "141"}) + " " + strconv.Itoa(2+g.r.IntN(8)) + d[:2] + " " + d[2:6],
			"07" + g.digits(3) + " " + g.digits(6), "01632 " + g.digits(6), "(020) " + strconv.Itoa(3+g.r.IntN(6)) + d[1:4] + " " + d[4:],
		})
		return v, v
	}},
	{"DE national", func(g *corpusGen) (string, string) {
		a, s := g.deNumber()
		v := g.pick([]string{"0" + a + " " + s, "0" + a + "/" + s, "(0" + a + ") " + s, "0" + a + "-" + s, "0" + a + " " + s[:len(s)-2] + "-" + s[len(s)-2:]})
		return v, v
	}},
	{"FR national", func(g *corpusGen) (string, string) {
		d := g.digits(8)
		sep := g.pick([]string{" ", ".", "-"})
		v := "0" + strconv.Itoa(1+g.r.IntN(9)) + sep + d[:2] + sep + d[2:4] + sep + d[4:6] + sep + d[6:]
		return v, v
	}},
	{"IN national", func(g *corpusGen) (string, string) {
		m := strconv.Itoa(6+g.r.IntN(4)) + g.digits(4)
		v := g.pick([]string{m + " " + g.digits(5), "0" + m + " " + g.digits(5), m + "-" + g.digits(5),
			g.pick([]string{"011", "022", "033", "044", "080"}) + " " + g.digits(4) + " " + g.digits(4),
			g.pick([]string{"011", "022", "080"}) + "-" + strconv.Itoa(2+g.r.IntN(8)) + g.digits(7)})
		return v, v
	}},
	{"with extension", func(g *corpusGen) (string, string) {
		a, e, l := g.nanp()
		ext := g.digits(1 + g.r.IntN(4))
		switch g.r.IntN(4) {
		case 0:
			v := "(" + a + ") " + e + "-" + l
			return v + " ext. " + ext, v
		case 1:
			v := a + "-" + e + "-" + l + "x" + ext
			return v, v
		case 2:
			v := "+44 20 " + g.digits(4) + " " + g.digits(4)
			return v + " ext " + ext, v
		}
		v := "+1 " + a + " " + e + " " + l
		return v + " ext." + ext, v
	}},
}
