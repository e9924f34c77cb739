package mask

// The labelled corpus TestDetectorQuality measures the detectors on: every
// common written format of each default entity type, embedded in prose,
// markdown tables, JSON strings, YAML, URLs and code blocks, and a negative
// corpus of identifiers that look like PII but are not. Values are made
// with the real rules (Luhn, ISO 7064 mod 97, issued SSN ranges, national
// numbering plans); filler text comes from gofakeit. Everything derives
// from a fixed seed, so the corpus (and the table in docs/masking.md) is
// the same on every run.

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/go-json-experiment/json/jsontext"
)

// corpusSeed fixes the corpus.
const corpusSeed = 12

// corpusItem is one labelled text.
type corpusItem struct {
	entity  string // the entity type of the value; "" for a negative item
	format  string // the written format (positives) or the class (negatives)
	variant string // cards: network and length
	context string // prose, markdown, json, yaml, url, code
	text    string
	vs, ve  int // the value's span in text (positives); in str for json
	// json context: text is a JSON document whose member jsonKey holds the
	// string str, which contains the value.
	jsonKey string
	str     string
	invalid bool // negatives that must never be masked: checksum-invalid or never-issued
}

type corpusGen struct {
	r *rand.Rand
	f *gofakeit.Faker
}

func newCorpusGen() *corpusGen {
	return &corpusGen{r: rand.New(rand.NewPCG(corpusSeed, corpusSeed)), f: gofakeit.New(corpusSeed)}
}

func (g *corpusGen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

func (g *corpusGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// ---- contexts ----

// embed puts value (whose text form is text; value is the part that must
// be masked) into a context. key names the field in structured contexts;
// lead introduces it in prose.
func (g *corpusGen) embed(it *corpusItem, context, key, lead, text, value string) {
	vOff := strings.Index(text, value)
	spaced := strings.ContainsAny(text, " \n\u00a0\u202f\u2007")
	if context == "url" && spaced {
		context = "prose"
	}
	it.context = context
	var pre, post string
	switch context {
	case "prose":
		pre = g.f.Sentence() + " " + lead + " "
		post = g.pick([]string{".", ",", "!", ";", "", " —", "?"}) + " " + g.f.Sentence()
	case "markdown":
		pre = "| Field | Value |\n|---|---|\n| " + strings.ToUpper(key[:1]) + key[1:] + " | "
		post = " |\n| Status | " + g.f.Adjective() + " |\n"
	case "json":
		str := text
		if lead != "" {
			str = lead + " " + text
		}
		q, _ := jsontext.AppendQuote(nil, str)
		it.jsonKey, it.str = key, str
		it.vs = len(str) - len(text) + vOff
		it.ve = it.vs + len(value)
		it.text = `{"id":` + strconv.Itoa(g.r.IntN(100000)) + `,"` + key + `":` + string(q) + `,"status":"` + g.f.Adjective() + `"}`
		return
	case "yaml":
		pre = "record:\n  name: " + g.f.Name() + "\n  " + key + ": "
		post = "\n  note: " + g.f.Sentence() + "\n"
	case "url":
		pre = "See https://portal.example.org/lookup?" + key + "="
		post = "&lang=en for details."
	case "code":
		pre = "```python\n" + key + " = \""
		post = "\"\nprint(" + key + ")\n```"
	}
	it.text = pre + text + post
	it.vs = len(pre) + vOff
	it.ve = it.vs + len(value)
}

var corpusContexts = []string{"prose", "markdown", "json", "yaml", "url", "code"}

// positives returns n items of every format of every default entity type.
func (g *corpusGen) positives(n int) []corpusItem {
	var items []corpusItem
	add := func(entity, format, variant, key, lead string, k int, render func() (text, value string)) {
		text, value := render()
		it := corpusItem{entity: entity, format: format, variant: variant}
		g.embed(&it, corpusContexts[k%len(corpusContexts)], key, lead, text, value)
		items = append(items, it)
	}
	// Cards: each format over every network and valid length in turn.
	var variants []struct {
		nw     corpusNetwork
		length int
	}
	for _, nw := range cardNetworks {
		for _, l := range nw.lengths {
			variants = append(variants, struct {
				nw     corpusNetwork
				length int
			}{nw, l})
		}
	}
	for _, f := range cardFormats {
		for k := range n {
			v := variants[k%len(variants)]
			name := fmt.Sprintf("%s %d", v.nw.name, v.length)
			add("CREDIT_CARD", f.name, name, "card", g.pick([]string{"Card", "paid with", "charged to", "card number"}), k, func() (string, string) {
				s := f.render(g, splitGroups(g.cardDigits(v.nw, v.length), cardGroups(v.nw.name, v.length)))
				return s, s
			})
		}
	}
	// IBANs: print and electronic form, upper and lower case, every country.
	for _, f := range []struct {
		name         string
		print, lower bool
	}{{"print, upper case", true, false}, {"print, lower case", true, true}, {"electronic, upper case", false, false}, {"electronic, lower case", false, true}} {
		for k := range n {
			c := ibanBBANs[k%len(ibanBBANs)]
			add("IBAN_CODE", f.name, c.cc, "iban", g.pick([]string{"IBAN", "account", "transfer to", "Konto"}), k, func() (string, string) {
				v := g.iban(c.cc, c.bban)
				if f.print {
					v = printIBAN(v)
				}
				if f.lower {
					v = strings.ToLower(v)
				}
				return v, v
			})
		}
	}
	// SSNs.
	for k := range n {
		add("US_SSN", "dashes", "", "ssn", g.pick([]string{"SSN", "social security number", "number", "id"}), k, func() (string, string) {
			a, gr, s := g.ssn()
			v := a + "-" + gr + "-" + s
			return v, v
		})
	}
	for k := range n {
		add("US_SSN", "spaces", "", "ssn", g.pick([]string{"SSN", "social security number", "number", "id"}), k, func() (string, string) {
			a, gr, s := g.ssn()
			v := a + " " + gr + " " + s
			return v, v
		})
	}
	for k := range n {
		a, gr, s := g.ssn()
		v := a + gr + s
		it := corpusItem{entity: "US_SSN", format: "labelled, no separator"}
		switch ctx := corpusContexts[k%len(corpusContexts)]; ctx {
		case "prose":
			// The label touches the value as written ("ssn=", "SSN#").
			pre := g.f.Sentence() + " " + g.pick(ssnLabels)
			it.context, it.text = ctx, pre+v+". "+g.f.Sentence()
			it.vs, it.ve = len(pre), len(pre)+len(v)
		default:
			g.embed(&it, ctx, g.pick([]string{"ssn", "SSN", "social_security_number", "ssn_number"}), "", v, v)
		}
		items = append(items, it)
	}
	// Emails.
	emailFormats := []struct {
		name   string
		render func() (string, string)
	}{
		{"plain", func() (string, string) { v := g.localPart() + "@" + g.domain(); return v, v }},
		{"plus tag", func() (string, string) {
			v := g.localPart() + "+" + g.pick([]string{"news", "billing", "x1", "dev"}) + "@" + g.domain()
			return v, v
		}},
		{"subdomain", func() (string, string) {
			v := g.localPart() + "@" + g.pick([]string{"mail.", "eu.corp.", "support.", "mx1.mail."}) + g.domain()
			return v, v
		}},
		{"IDN", func() (string, string) {
			local := g.pick(append(idnLocals, g.localPart()))
			dom := g.pick(idnDomains)
			if local != idnLocals[0] && !strings.ContainsFunc(local, func(r rune) bool { return r > 0x7f }) && g.r.IntN(2) == 0 {
				dom = g.domain()
				local = g.pick(idnLocals)
			}
			v := local + "@" + dom
			return v, v
		}},
		{"mailto link", func() (string, string) { v := g.localPart() + "@" + g.domain(); return "mailto:" + v, v }},
		{"angle brackets", func() (string, string) {
			v := g.localPart() + "@" + g.domain()
			return g.f.Name() + " <" + v + ">", v
		}},
		{"upper case", func() (string, string) { v := strings.ToUpper(g.localPart() + "@" + g.domain()); return v, v }},
	}
	for _, f := range emailFormats {
		for k := range n {
			add("EMAIL_ADDRESS", f.name, "", "email", g.pick([]string{"mail", "write to", "contact", "Email:"}), k, f.render)
		}
	}
	// Phones.
	for _, f := range phoneFormats {
		for k := range n {
			add("PHONE_NUMBER", f.name, "", "phone", g.pick([]string{"call", "phone", "Tel.", "reach me at"}), k, func() (string, string) { return f.render(g) })
		}
	}
	return items
}

// negatives returns n items of every class of identifiers that are not PII.
func (g *corpusGen) negatives(n int) []corpusItem {
	hex := func(k int) string {
		const h = "0123456789abcdef"
		b := make([]byte, k)
		for i := range b {
			b[i] = h[g.r.IntN(16)]
		}
		return string(b)
	}
	isbn10 := func() string {
		d := g.digits(9)
		sum := 0
		for i := range 9 {
			sum += (10 - i) * int(d[i]-'0')
		}
		c := (11 - sum%11) % 11
		check := strconv.Itoa(c)
		if c == 10 {
			check = "X"
		}
		return d + check
	}
	isbn13 := func() string { return withGTINCheck(g.pick([]string{"978", "979"}) + g.digits(9)) }
	validCard := func() string {
		nw := cardNetworks[g.r.IntN(len(cardNetworks))]
		l := g.pick(intStrings(nw.lengths))
		length, _ := strconv.Atoi(l)
		d := g.cardDigits(nw, length)
		return d
	}
	classes := []struct {
		name    string
		key     string
		invalid bool
		render  func() string
	}{
		{"UUID", "request_id", false, func() string { return g.f.UUID() }},
		{"git SHA", "commit", false, func() string { return g.pick([]string{hex(40), hex(7), hex(12)}) }},
		{"sha256 digest", "digest", false, func() string { return "sha256:" + hex(64) }},
		{"epoch seconds", "created", false, func() string { return strconv.Itoa(1_500_000_000 + g.r.IntN(500_000_000)) }},
		{"epoch milliseconds, Luhn-valid", "ts", false, func() string {
			for {
				v := strconv.FormatInt(1_500_000_000_000+g.r.Int64N(500_000_000_000), 10)
				if luhn([]byte(v)) {
					return v
				}
			}
		}},
		{"epoch microseconds", "ts_us", false, func() string {
			return strconv.FormatInt(1_500_000_000_000_000+g.r.Int64N(500_000_000_000_000), 10)
		}},
		{"order number", "order", false, func() string {
			return g.pick([]string{"ORD-" + strconv.Itoa(2020+g.r.IntN(6)) + "-" + g.digits(6), "#" + strings.ToUpper(hex(8)),
				"PO " + "45" + g.digits(8), "SO" + g.digits(8), "order no. " + g.digits(5) + "-" + g.digits(2)})
		}},
		{"invoice number", "invoice", false, func() string {
			return g.pick([]string{"INV-" + strconv.Itoa(2020+g.r.IntN(6)) + "-" + g.digits(5), "RE-" + g.digits(7), "2024/" + g.digits(6), "F" + g.digits(9)})
		}},
		{"tracking number", "tracking", false, func() string {
			return g.pick([]string{
				"1Z" + strings.ToUpper(hex(6)) + g.digits(10),
				g.digits(4) + " " + g.digits(4) + " " + g.digits(4),
				"9400 " + g.digits(4) + " " + g.digits(4) + " " + g.digits(4) + " " + g.digits(4) + " " + g.digits(2),
				"92" + g.digits(20), "JD" + g.digits(18), g.digits(10),
			})
		}},
		{"ISBN", "isbn", false, func() string {
			a, b := isbn13(), isbn10()
			return g.pick([]string{a, b, a[:3] + "-" + a[3:4] + "-" + a[4:6] + "-" + a[6:12] + "-" + a[12:], b[:1] + "-" + b[1:4] + "-" + b[4:9] + "-" + b[9:]})
		}},
		{"EAN-13 / UPC-A barcode", "gtin", false, func() string {
			v := withGTINCheck(g.pick([]string{"0", "4", "5", "7", "8", "9", "3", "6"}) + g.digits(11))
			if g.r.IntN(4) == 0 {
				return v[1:] // UPC-A
			}
			return v
		}},
		{"IMEI, Luhn-valid", "imei", false, func() string {
			v := completeLuhn(g.pick([]string{"35", "86", "01", "99", "49"}) + g.digits(12))
			return g.pick([]string{v, v[:2] + "-" + v[2:8] + "-" + v[8:14] + "-" + v[14:]})
		}},
		{"list of small numbers", "numbers", false, func() string {
			var parts []string
			for range 3 + g.r.IntN(5) {
				parts = append(parts, fmt.Sprintf(g.pick([]string{"%d", "%02d"}), g.r.IntN(60)))
			}
			return strings.Join(parts, g.pick([]string{" ", " ", "-", " - "}))
		}},
		{"IPv4 address", "ip", false, func() string { return g.f.IPv4Address() }},
		{"IPv6 address", "ip", false, func() string { return g.f.IPv6Address() }},
		{"version", "version", false, func() string {
			return g.pick([]string{g.f.AppVersion(), "v" + g.f.AppVersion(), fmt.Sprintf("%d.%d.%d-rc.%d", g.r.IntN(20), g.r.IntN(40), g.r.IntN(100), g.r.IntN(9)),
				fmt.Sprintf("10.0.%d.%d", 10000+g.r.IntN(20000), g.r.IntN(9999))})
		}},
		{"package spec", "package", false, func() string {
			return g.pick([]string{"openai@" + g.f.AppVersion(), "@scope/" + strings.ToLower(g.f.Noun()) + "@" + g.f.AppVersion(),
				"github.com/" + strings.ToLower(g.f.LastName()) + "/tool@v" + g.f.AppVersion(), "numpy==" + g.f.AppVersion(), "lodash@^4.17." + strconv.Itoa(g.r.IntN(30))})
		}},
		{"money", "amount", false, func() string {
			v := g.r.IntN(10_000_000)
			return g.pick([]string{
				fmt.Sprintf("$%d,%03d.%02d", v/1000, v%1000, g.r.IntN(100)),
				fmt.Sprintf("%d %03d,%02d €", v/1000, v%1000, g.r.IntN(100)),
				fmt.Sprintf("EUR %d.%03d,%02d", v/1000, v%1000, g.r.IntN(100)),
				fmt.Sprintf("¥%d", v), fmt.Sprintf("CHF %d.%02d", v%1000, g.r.IntN(100)),
				fmt.Sprintf("%d %03d %03d", 1+g.r.IntN(99), g.r.IntN(1000), g.r.IntN(1000)),
			})
		}},
		{"date", "date", false, func() string {
			t := g.f.Date()
			return g.pick([]string{t.Format("2006-01-02"), t.Format("02.01.2006"), t.Format("01/02/2006"), t.Format("2006-01-02T15:04:05Z"), t.Format("2 January 2006"), t.Format("20060102")})
		}},
		{"Luhn-invalid card-like number", "card", true, func() string {
			d := []byte(validCard())
			d[len(d)-1] = byte('0' + (int(d[len(d)-1]-'0')+1+g.r.IntN(9))%10)
			nw := "Visa"
			if d[0] == '3' && (d[1] == '4' || d[1] == '7') {
				nw = "American Express"
			}
			gs := splitGroups(string(d), cardGroups(nw, len(d)))
			return cardFormats[g.r.IntN(len(cardFormats))].render(g, gs)
		}},
		{"IBAN with a bad checksum", "iban", true, func() string {
			c := ibanBBANs[g.r.IntN(len(ibanBBANs))]
			v := []byte(g.iban(c.cc, c.bban))
			for {
				i := 4 + g.r.IntN(len(v)-4)
				if isDigit(v[i]) {
					v[i] = byte('0' + (int(v[i]-'0')+1+g.r.IntN(9))%10)
					break
				}
			}
			s := string(v)
			if g.r.IntN(2) == 0 {
				s = printIBAN(s)
			}
			if g.r.IntN(2) == 0 {
				s = strings.ToLower(s)
			}
			return s
		}},
		{"never-issued SSN", "ssn", true, func() string {
			a, gr, s := g.ssn()
			switch g.r.IntN(5) {
			case 0:
				a = "000"
			case 1:
				a = "666"
			case 2:
				a = "9" + g.digits(2)
			case 3:
				gr = "00"
			default:
				s = "0000"
			}
			if g.r.IntN(8) == 0 {
				a, gr, s = "078", "05", "1120"
			}
			return g.pick([]string{a + "-" + gr + "-" + s, a + " " + gr + " " + s, "SSN: " + a + gr + s})
		}},
	}
	var items []corpusItem
	for _, c := range classes {
		for k := range n {
			v := c.render()
			it := corpusItem{format: c.name, invalid: c.invalid}
			g.embed(&it, corpusContexts[k%len(corpusContexts)], c.key, g.pick([]string{"ref", "see", "value", strings.ReplaceAll(c.key, "_", " ")}), v, v)
			items = append(items, it)
		}
	}
	return items
}

// withGTINCheck appends the check digit of a 13-digit EAN/ISBN (weights 1
// and 3) to its first 12 digits.
func withGTINCheck(d string) string {
	sum := 0
	for i := range 12 {
		w := 1
		if i%2 == 1 {
			w = 3
		}
		sum += w * int(d[i]-'0')
	}
	return d + strconv.Itoa((10-sum%10)%10)
}

func intStrings(v []int) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = strconv.Itoa(x)
	}
	return out
}
