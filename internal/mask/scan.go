package mask

// window is one candidate window found by scanWindow: s[start:end] in the
// original text.
type window struct {
	start, end int
	normLen    int  // normalized characters (invisibles dropped)
	digits     int  // digit count
	upper      int  // upper-case ASCII letter count
	lower      int  // lower-case ASCII letter count
	at         bool // contains '@'
	dash       bool // contains a dash
	sep        bool // contains a number separator: space, dash, '.', '/', '(' or '+'
	// head: the window is short alphanumeric groups, one of them an IBAN
	// head (two letters, two digits), so more such groups may follow it
	// across a space, in any letter case.
	head bool
	// open: the window may still grow with more input, nothing is decided.
	open bool
	// long: the window reached the length limit; only a prefix of the
	// analysis is committed and scanning resumes inside it.
	long bool
}

// scanOpts are what a scan needs besides the text.
type scanOpts struct {
	// pre holds the text that came before the scanned text (the tail of a
	// stream's committed input, or a JSON member name): labels such as
	// "SSN:" are looked up in it. nil means nothing came before.
	pre *lookback
	// html: the text is HTML; character references are decoded.
	html bool
}

// scanWindow reads the window starting at s[i] (a token character).
//
// The decision where a window ends depends only on the text, never on where
// the buffer ends: whenever it would need a character past the end of a
// non-final buffer, the window is reported open. This is what makes the
// streaming masker equal to the whole-text masker.
//
// Tokens join into one window across one or two spaces when both sides look
// like parts of a number (digits and phone punctuation), when both are short
// upper-case alphanumeric groups one of which has a digit, or when the
// window began with an IBAN head and both are short alphanumeric groups (so
// "de89 3704 0044 …" is one window); digit groups also join across one line
// break (a card number wrapped between two lines).
func scanWindow(s string, i int, final, htmlText bool, limit, capBytes int) window {
	tab := classTable(htmlText)
	w := window{start: i}
	j := i
	allShort := true // every token so far is a short alphanumeric group
	for {
		// One token: a run of token (and invisible) characters.
		var last byte
		var tokHead [4]byte
		tokLen, tokDigit, tokUpperAlnum, tokAlnum := 0, false, true, true
		cls := cBreak
		for j < len(s) {
			var nb byte
			var size int
			if c := s[j]; c < 0x80 {
				cls, nb, size = tab[c], c, 1
				if cls == cEntity {
					cls, nb, size = entity(s, j, final)
				}
			} else {
				cls, nb, size = classify(s, j, final, htmlText)
			}
			if cls == cMore {
				w.open = true
				return w
			}
			if cls == cIgnore {
				j += size
				if j-w.start > capBytes {
					w.end, w.long = j, true
					return w
				}
				continue
			}
			if cls != cToken {
				break
			}
			last = nb
			if tokLen < len(tokHead) {
				tokHead[tokLen] = nb
			}
			tokLen++
			w.normLen++
			switch {
			case isDigit(nb):
				w.digits++
				tokDigit = true
			case isUpper(nb):
				w.upper++
			case isLower(nb):
				w.lower++
				tokUpperAlnum = false
			case nb == '@':
				w.at = true
				tokUpperAlnum, tokAlnum = false, false
			case nb == '-':
				w.dash = true
				w.sep = true
				tokUpperAlnum, tokAlnum = false, false
			case nb == '.' || nb == '(' || nb == '+' || nb == '/':
				w.sep = true
				tokUpperAlnum, tokAlnum = false, false
			default:
				tokUpperAlnum, tokAlnum = false, false
			}
			j += size
			if w.normLen > limit || j-w.start > capBytes {
				w.end, w.long = j, true
				return w
			}
		}
		// An IBAN head may follow other short groups ("IBAN GB82 WEST …").
		allShort = allShort && tokAlnum && tokLen <= 4
		if allShort && tokLen == 4 && isLetter(tokHead[0]) && isLetter(tokHead[1]) && isDigit(tokHead[2]) && isDigit(tokHead[3]) {
			w.head = true
		}
		tokEnd := j
		if j == len(s) {
			if !final {
				w.open = true
				return w
			}
			w.end = tokEnd
			return w
		}
		if cls != cSpace && !(isDigit(last) && (s[j] == '\n' || s[j] == '\r')) {
			w.end = tokEnd
			return w
		}
		// A gap of spaces (invisibles ignored) and at most one line break.
		// The window is open while the buffer ends inside a gap that could
		// still join: the decision must not depend on where it ends.
		g, spaces, breaks, stop := j, 0, 0, false
		for g < len(s) && !stop {
			if c := s[g]; c == '\n' || c == '\r' {
				breaks++
				g++
				if c == '\r' && g < len(s) && s[g] == '\n' {
					g++
				}
			} else {
				cl, _, size := classify(s, g, final, htmlText)
				if cl == cMore {
					w.open = true
					return w
				}
				if cl != cIgnore && cl != cSpace {
					break
				}
				if cl == cSpace {
					spaces++
				}
				g += size
			}
			stop = spaces > 4 || breaks > 1 || g-w.start > capBytes
		}
		if !stop && g == len(s) {
			if !final {
				w.open = true
				return w
			}
			w.end = tokEnd
			return w
		}
		if stop || (breaks == 0 && spaces > 2) {
			w.end = tokEnd
			return w
		}
		cl, bFirst, _ := classify(s, g, final, htmlText)
		if cl == cMore {
			w.open = true
			return w
		}
		if cl != cToken {
			w.end = tokEnd
			return w
		}
		var join bool
		if breaks == 1 {
			// A wrapped line joins digit groups only.
			join = isDigit(last) && isDigit(bFirst)
		} else {
			join = joinsRight(last) && joinsLeft(bFirst)
			upperRule := tokUpperAlnum && tokLen <= 4 && isUpperAlnum(bFirst)
			headRule := w.head && tokAlnum && tokLen <= 4 && isAlnum(bFirst)
			if !join && (upperRule || headRule) {
				// IBAN groups ("GB82 WEST 1234", "de89 3704 0044"): needs all
				// of the next token to decide.
				bLen, bDigit, bUpper, bAlnum := 0, false, true, true
				k := g
				for k < len(s) {
					cl, nb, size := classify(s, k, final, htmlText)
					if cl == cMore {
						w.open = true
						return w
					}
					if cl == cIgnore {
						k += size
						continue
					}
					if cl != cToken {
						break
					}
					if !isAlnum(nb) {
						// The group ends here ("32." at the end of a
						// sentence); its alphanumeric run decides.
						break
					}
					bUpper = bUpper && isUpperAlnum(nb)
					bDigit = bDigit || isDigit(nb)
					bLen++
					k += size
					if bLen > 4 {
						break
					}
				}
				if k == len(s) && !final && bAlnum && bLen <= 4 {
					w.open = true
					return w
				}
				join = bLen > 0 && ((upperRule && bUpper && bLen <= 4 && (tokDigit || bDigit)) ||
					(headRule && bAlnum && bLen <= 4))
			}
		}
		if !join {
			w.end = tokEnd
			return w
		}
		w.normLen += spaces + breaks
		w.sep = true
		j = g
		if w.normLen > limit {
			w.end, w.long = j, true
			return w
		}
	}
}

// edit replaces s[start:end] with repl.
type edit struct {
	start, end int
	repl       string
	r          *rule  // the rule that matched
	fp         string // fingerprint of the value
}

// record adds the evidence for edits to rec.
func record(rec *Recorder, loc string, edits []edit) {
	for _, e := range edits {
		rec.add(Action{Rule: e.r.name, Entity: e.r.entity, Location: loc, Count: 1, Fingerprint: e.fp})
	}
}

// scan masks s from its beginning. It returns the edits for s[:cut] and cut,
// the length of the prefix whose masking is final: text from cut on must be
// scanned again together with more input (unless final, then cut == len(s)).
// cut is always a position where the whole-text scan would also resume, so
// restarting at cut reproduces the whole-text result.
func (m *Masker) scan(s string, final bool, edits []edit, o scanOpts) ([]edit, int) {
	tab := classTable(o.html)
	i := 0
	for i < len(s) {
		c := s[i]
		var cls uint8
		size := 1
		if c < 0x80 {
			cls = tab[c]
			if cls == cEntity {
				cls, _, size = entity(s, i, final)
				if cls == cMore {
					return edits, i
				}
			}
			if cls != cToken {
				i += size
				continue
			}
			if m.fastWords && (c|0x20) >= 'a' && (c|0x20) <= 'z' {
				// Fast path for ordinary words: a run of letters with a
				// lower-case one (or a trailing '.') followed by a space or
				// a break can neither join a neighbour nor hold an entity
				// of this profile, so it is a closed window without
				// analysis — exactly what scanWindow and analyze would
				// conclude, only cheaper.
				j, lower := i, false
				for j < len(s) {
					b := s[j]
					if b >= 'a' && b <= 'z' {
						lower = true
					} else if b < 'A' || b > 'Z' {
						break
					}
					j++
				}
				if j < len(s) && s[j] == '.' {
					j++
					lower = true
				}
				if lower && j < len(s) && s[j] < 0x80 {
					if cl := tab[s[j]]; cl == cBreak || cl == cSpace {
						i = j
						continue
					}
				}
			}
		} else {
			cls, _, size = classify(s, i, final, o.html)
			if cls == cMore {
				return edits, i
			}
			if cls != cToken {
				i += size
				continue
			}
		}
		w := scanWindow(s, i, final, o.html, m.p.HoldBack, m.capBytes)
		if w.open {
			return edits, i
		}
		var next int
		edits, next = m.analyze(s, w, edits, o)
		i = next
	}
	return edits, i
}

// apply appends s with edits applied to dst.
func apply(dst []byte, s string, edits []edit) []byte {
	last := 0
	for _, e := range edits {
		dst = append(dst, s[last:e.start]...)
		dst = append(dst, e.repl...)
		last = e.end
	}
	return append(dst, s[last:]...)
}

// lookbackLen is how much text before a window a label may occupy.
const lookbackLen = 48

// lookback keeps the last lookbackLen bytes of text that came before, in a
// fixed buffer, so streams carry their context without allocating.
type lookback struct {
	b [lookbackLen]byte
	n int
}

// push appends s to the context, keeping only its tail.
func (l *lookback) push(s string) {
	if len(s) >= lookbackLen {
		l.n = copy(l.b[:], s[len(s)-lookbackLen:])
		return
	}
	if keep := lookbackLen - len(s); l.n > keep {
		copy(l.b[:], l.b[l.n-keep:l.n])
		l.n = keep
	}
	l.n += copy(l.b[l.n:], s)
}

// set replaces the context with s.
func (l *lookback) set(s string) {
	l.n = 0
	l.push(s)
}

// before returns up to lookbackLen bytes of text before offset p of s,
// continuing into the context l.
func (l *lookback) before(s string, p int) string {
	if p >= lookbackLen || l.n == 0 {
		return s[max(0, p-lookbackLen):p]
	}
	need := lookbackLen - p
	ctx := l.b[max(0, l.n-need):l.n]
	return string(ctx) + s[:p]
}
