package mask

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Character classes seen by the window scanner.
const (
	cBreak  uint8 = iota // ends a window
	cSpace               // horizontal space: may join two tokens of a window
	cToken               // identifier character (normalized to one ASCII byte)
	cIgnore              // invisible (zero-width, soft hyphen): dropped by normalization
	cMore                // incomplete UTF-8 sequence at the end of a non-final buffer
)

// asciiClass classifies ASCII bytes. Token bytes are the characters that can
// occur inside the entities we detect: letters and digits, the email
// specials, and the separators of phone and card numbers.
var asciiClass = func() (t [128]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = cToken
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = cToken
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = cToken
	}
	for _, c := range "@._%+-()" {
		t[c] = cToken
	}
	t[' '] = cSpace
	return t
}()

// isInvisible reports runes that render as nothing and are dropped before
// detection, so "4\u200b111" cannot hide a card number.
func isInvisible(r rune) bool {
	switch r {
	case 0x00AD, 0x034F, 0x180E, 0x200B, 0x200C, 0x200D, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF:
		return true
	}
	return false
}

// classify returns the class of the character at s[i], its normalized ASCII
// byte (for cToken and cSpace) and its length in bytes. At the end of a
// non-final buffer an incomplete UTF-8 sequence reports cMore.
func classify(s string, i int, final bool) (cls uint8, nb byte, size int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return asciiClass[c], c, 1
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
	return cBreak, 0, size
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
func isUpperAlnum(b byte) bool { return isDigit(b) || isUpper(b) }

// joinsRight reports whether a token ending in b may continue across a space:
// digit groups and the punctuation of phone numbers.
func joinsRight(b byte) bool { return isDigit(b) || b == ')' || b == '-' || b == '+' || b == '(' }

// joinsLeft reports whether a token starting with b may continue a window.
func joinsLeft(b byte) bool { return isDigit(b) || b == '(' || b == '+' || b == '-' || b == ')' }

func isSpaceRune(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Zs, r) }
