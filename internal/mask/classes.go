package mask

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Character classes seen by the window scanner.
const (
	cBreak  uint8 = iota // ends a window
	cSpace               // horizontal space: may join two tokens of a window
	cToken               // identifier character (normalized to one byte)
	cIgnore              // invisible (zero-width, soft hyphen, controls, marks): dropped by normalization
	cMore                // incomplete character at the end of a non-final buffer
	cEntity              // '&' in HTML text: a character reference to decode (never returned by classify)
)

// nbLetter is the normalized byte of a letter outside ASCII (é, ß, я …).
// It is not valid UTF-8 on purpose: regular expressions see it as U+FFFD,
// which no ASCII class matches, so only detectors that ask for it (email
// addresses with internationalized parts) accept it.
const nbLetter = 0x80

// asciiClass classifies ASCII bytes. Token bytes are the characters that can
// occur inside the entities we detect: letters and digits, the email
// specials, '/' (German phone numbers, URL paths), and the separators of
// phone and card numbers. Control characters other than tab, CR and LF
// render as nothing and are ignored, so "4\x00111…" (or UTF-16 text that
// was not declared as such) cannot hide a number.
var asciiClass = func() (t [128]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = cIgnore
	}
	t['\t'], t['\n'], t['\r'] = cBreak, cBreak, cBreak
	t[0x7f] = cIgnore
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cToken
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cToken
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = cToken
	}
	for _, c := range "@._%+-()/" {
		t[c] = cToken
	}
	t[' '] = cSpace
	return t
}()

// htmlClass is asciiClass for text/html bodies: '&' starts a character
// reference that is decoded before detection (&#52; is a '4').
var htmlClass = func() (t [128]uint8) {
	t = asciiClass
	t['&'] = cEntity
	return t
}()

// classTable returns the ASCII class table of a mode.
func classTable(htmlText bool) *[128]uint8 {
	if htmlText {
		return &htmlClass
	}
	return &asciiClass
}

// isInvisible reports runes that render as nothing (or only change how the
// previous character looks) and are dropped before detection, so
// "4\u200b111" or "4\u20e3111" cannot hide a card number: format characters
// (zero-width, bidi controls, soft hyphen, BOM), combining marks, C1
// controls and variation selectors.
func isInvisible(r rune) bool {
	switch {
	case r == 0x85: // NEL is a line break
		return false
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x034F || r == 0x180E || (r >= 0xFE00 && r <= 0xFE0F):
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Mn, unicode.Me)
}

// noSpaceScript reports letters of scripts written without spaces between
// words. They end windows: treating them as window characters would hold
// back whole clauses of streamed Chinese, Japanese or Thai text. The cost:
// email addresses with such letters are not detected (docs/masking.md).
func noSpaceScript(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Thai, unicode.Lao,
		unicode.Khmer, unicode.Myanmar, unicode.Tibetan, unicode.Javanese, unicode.Balinese, unicode.Yi)
}

// classify returns the class of the character at s[i], its normalized byte
// (for cToken and cSpace) and its length in bytes. At the end of a
// non-final buffer an incomplete UTF-8 sequence (or, in HTML text, an
// incomplete character reference) reports cMore.
func classify(s string, i int, final, htmlText bool) (cls uint8, nb byte, size int) {
	c := s[i]
	if c < utf8.RuneSelf {
		if cls := classTable(htmlText)[c]; cls == cEntity {
			return entity(s, i, final)
		} else {
			return cls, c, 1
		}
	}
	if !utf8.FullRuneInString(s[i:]) {
		if !final {
			return cMore, 0, 0
		}
		return cBreak, 0, 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	return classifyRune(r, s[i:i+size], size)
}

func classifyRune(r rune, enc string, size int) (uint8, byte, int) {
	if r < utf8.RuneSelf {
		return asciiClass[r], byte(r), size
	}
	switch {
	case r == utf8.RuneError:
		return cBreak, 0, size
	case isInvisible(r):
		return cIgnore, 0, size
	case r >= 0xFF01 && r <= 0xFF5E: // full-width ASCII
		b := byte(r - 0xFEE0)
		return asciiClass[b], b, size
	case unicode.Is(unicode.Zs, r):
		return cSpace, ' ', size
	case r == 0x2212 || unicode.Is(unicode.Pd, r):
		return cToken, '-', size
	}
	// NFKC folds compatibility forms (mathematical and circled digits,
	// superscripts, ...) to ASCII; only single-byte results are tokens.
	if d := norm.NFKC.PropertiesString(enc).Decomposition(); len(d) == 1 && d[0] < utf8.RuneSelf {
		if cl := asciiClass[d[0]]; cl == cToken || cl == cSpace {
			return cl, d[0], size
		}
		return cBreak, 0, size
	}
	if unicode.IsDigit(r) {
		return cToken, digitValue(r), size
	}
	if unicode.IsLetter(r) && !noSpaceScript(r) {
		return cToken, nbLetter, size
	}
	return cBreak, 0, size
}

// maxRef bounds an HTML character reference, leading zeros included.
const maxRef = 64

// entity decodes the HTML character reference at s[i] ('&'): numeric
// (&#52; &#x34;, the ';' optional, any number of leading zeros up to
// maxRef) or named (&commat; and the legacy names a browser accepts without
// ';', like &nbsp). Text that is not a reference leaves '&' a break.
func entity(s string, i int, final bool) (uint8, byte, int) {
	j := i + 1
	if j < len(s) && s[j] == '#' {
		j++
		hex := j < len(s) && (s[j] == 'x' || s[j] == 'X')
		if hex {
			j++
		}
		for j < len(s) && j-i < maxRef && (isDigit(s[j]) || (hex && isHexLetter(s[j]))) {
			j++
		}
	} else {
		for j < len(s) && j-i < maxRef && (isDigit(s[j]) || isLetter(s[j])) {
			j++
		}
	}
	if j == len(s) && !final {
		return cMore, 0, 0 // the reference may go on
	}
	if j-i >= maxRef {
		return cBreak, 0, 1
	}
	if j < len(s) && s[j] == ';' {
		j++
	}
	ref := s[i:j]
	dec := html.UnescapeString(ref)
	if dec == ref {
		return cBreak, 0, 1
	}
	r, rs := utf8.DecodeRuneInString(dec)
	rest := dec[rs:]
	if !strings.HasSuffix(ref, rest) {
		return cBreak, 0, 1
	}
	cls, nb, _ := classifyRune(r, dec[:rs], rs)
	if cls == cBreak || cls == cMore {
		return cBreak, 0, 1
	}
	return cls, nb, len(ref) - len(rest)
}

// digitValue maps a decimal digit rune (Unicode Nd) to its ASCII digit: Nd
// digits come in contiguous runs of ten starting at zero.
func digitValue(r rune) byte {
	v := 0
	for v < 9 && unicode.IsDigit(r-rune(v)-1) {
		v++
	}
	return byte('0' + v%10)
}

func isDigit(b byte) bool      { return b >= '0' && b <= '9' }
func isUpper(b byte) bool      { return b >= 'A' && b <= 'Z' }
func isLower(b byte) bool      { return b >= 'a' && b <= 'z' }
func isLetter(b byte) bool     { return isUpper(b) || isLower(b) }
func isHexLetter(b byte) bool  { return (b|0x20) >= 'a' && (b|0x20) <= 'f' }
func isAlnum(b byte) bool      { return isDigit(b) || isLetter(b) }
func isUpperAlnum(b byte) bool { return isDigit(b) || isUpper(b) }

// isWordByte reports bytes of a normalized window that belong to a word:
// ASCII letters and digits and letters outside ASCII.
func isWordByte(b byte) bool { return isAlnum(b) || b == nbLetter }

// joinsRight reports whether a token ending in b may continue across a space:
// digit groups and the punctuation of phone numbers.
func joinsRight(b byte) bool { return isDigit(b) || b == ')' || b == '-' || b == '+' || b == '(' }

// joinsLeft reports whether a token starting with b may continue a window.
func joinsLeft(b byte) bool { return isDigit(b) || b == '(' || b == '+' || b == '-' || b == ')' }

func isSpaceRune(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Zs, r) }
