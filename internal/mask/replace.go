package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"unicode"
	"unicode/utf8"
)

// canonical is the form of a value that fingerprints and tokens are computed
// from, so that formatting does not change them: emails lower-cased, other
// values without separators and upper-cased ("4111-1111…" and "4111 1111…"
// give the same token). norm is the normalized match; letters outside ASCII
// are taken from orig, the original text of the match.
func canonical(entity, norm, orig string, htmlText bool) string {
	email := entity == "EMAIL_ADDRESS"
	if strings.IndexByte(norm, nbLetter) < 0 {
		if email {
			return strings.ToLower(norm)
		}
		var b strings.Builder
		b.Grow(len(norm))
		for i := 0; i < len(norm); i++ {
			if c := canonByte(norm[i]); c != 0 {
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	var b strings.Builder
	for i := 0; i < len(orig); {
		cls, nb, size := classify(orig, i, true, htmlText)
		switch {
		case cls == cToken && nb == nbLetter:
			r, _ := utf8.DecodeRuneInString(orig[i:])
			if email {
				b.WriteRune(unicode.ToLower(r))
			} else {
				b.WriteRune(unicode.ToUpper(r))
			}
		case cls == cToken && email:
			b.WriteByte(byte(unicode.ToLower(rune(nb))))
		case cls == cToken:
			if c := canonByte(nb); c != 0 {
				b.WriteByte(c)
			}
		}
		i += size
	}
	return b.String()
}

// canonByte maps a normalized byte of a non-email value to its canonical
// form: separators dropped (0), letters upper-cased.
func canonByte(c byte) byte {
	switch c {
	case ' ', '-', '.', '(', ')', '/':
		return 0
	}
	if isLower(c) {
		c -= 'a' - 'A'
	}
	return c
}

// fingerprint is the keyed fingerprint of a canonical value: HMAC-SHA256
// over entity and value, 16 hex characters. It lets analysts correlate
// occurrences without being able to recover or brute-force the value
// without the deployment key.
func (m *Masker) fingerprint(entity, canon string) string {
	mac, ok := m.macs.Get().(hash.Hash)
	if !ok {
		mac = hmac.New(sha256.New, m.key)
	}
	defer m.macs.Put(mac)
	mac.Reset()
	mac.Write([]byte(entity))
	mac.Write([]byte{0})
	mac.Write([]byte(canon))
	var sum [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(sum[:0]))[:16]
}

var tokenNames = map[string]string{
	"EMAIL_ADDRESS": "EMAIL",
	"PHONE_NUMBER":  "PHONE",
	"IBAN_CODE":     "IBAN",
}

// replacement renders a masked value in the given style. The token style
// uses the first 6 hex digits of the fingerprint.
func replacement(style Style, entity, canon, fp string) string {
	switch style {
	case StyleToken:
		name := entity
		if short, ok := tokenNames[entity]; ok {
			name = short
		}
		return "<" + name + "_" + fp[:6] + ">"
	case StylePartial:
		// Keep the last four characters only when the value is long enough
		// that they do not give most of it away.
		if len(canon) >= 8 {
			return "[" + entity + ":…" + canon[len(canon)-4:] + "]"
		}
	}
	return "[REDACTED:" + entity + "]"
}
