package mask

// window is one candidate window found by scanWindow: s[start:end] in the
// original text.
type window struct {
	start, end int
	normLen    int  // normalized characters (invisibles dropped)
	digits     int  // digit count
	upper      int  // upper-case ASCII letter count
	at         bool // contains '@'
	dash       bool // contains a dash
	sep        bool // contains a number separator: space, dash, '.', '(' or '+'
	// open: the window may still grow with more input, nothing is decided.
	open bool
	// long: the window reached the length limit; only a prefix of the
	// analysis is committed and scanning resumes inside it.
	long bool
}

// scanWindow reads the window starting at s[i] (a token character).
//
// The decision where a window ends depends only on the text, never on where
// the buffer ends: whenever it would need a character past the end of a
// non-final buffer, the window is reported open. This is what makes the
// streaming masker equal to the whole-text masker.
func scanWindow(s string, i int, final bool, limit, capBytes int) window {
	w := window{start: i}
	j := i
	for {
		// One token: a run of token (and invisible) characters.
		var last byte
		tokLen, tokDigit, tokUpperAlnum := 0, false, true
		cls := cBreak
		for j < len(s) {
			var nb byte
			var size int
			if c := s[j]; c < 0x80 {
				cls, nb, size = asciiClass[c], c, 1
			} else {
				cls, nb, size = classify(s, j, final)
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
			tokLen++
			w.normLen++
			switch {
			case isDigit(nb):
				w.digits++
				tokDigit = true
			case isUpper(nb):
				w.upper++
			case nb == '@':
				w.at = true
				tokUpperAlnum = false
			case nb == '-':
				w.dash = true
				w.sep = true
				tokUpperAlnum = false
			case nb == '.' || nb == '(' || nb == '+':
				w.sep = true
				tokUpperAlnum = false
			default:
				tokUpperAlnum = false
			}
			j += size
			if w.normLen > limit || j-w.start > capBytes {
				w.end, w.long = j, true
				return w
			}
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
		if cls != cSpace {
			w.end = tokEnd
			return w
		}
		// A gap of one or two spaces (invisibles ignored).
		g, spaces := j, 0
		for g < len(s) && spaces <= 2 {
			cl, _, size := classify(s, g, final)
			if cl == cMore {
				w.open = true
				return w
			}
			if cl == cIgnore {
				g += size
				if g-w.start > capBytes {
					break
				}
				continue
			}
			if cl != cSpace {
				break
			}
			spaces++
			g += size
		}
		if spaces > 2 || g-w.start > capBytes {
			w.end = tokEnd
			return w
		}
		if g == len(s) {
			if !final {
				w.open = true
				return w
			}
			w.end = tokEnd
			return w
		}
		cl, bFirst, _ := classify(s, g, final)
		if cl == cMore {
			w.open = true
			return w
		}
		if cl != cToken {
			w.end = tokEnd
			return w
		}
		join := joinsRight(last) && joinsLeft(bFirst)
		if !join && tokUpperAlnum && tokLen <= 4 && isUpperAlnum(bFirst) {
			// IBAN groups ("GB82 WEST 1234"): both tokens short upper-case
			// alphanumerics, one of them with a digit. Needs all of the next
			// token to decide.
			bLen, bDigit, bOK := 0, false, true
			k := g
			for k < len(s) {
				cl, nb, size := classify(s, k, final)
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
				if !isUpperAlnum(nb) {
					bOK = false
					break
				}
				bDigit = bDigit || isDigit(nb)
				bLen++
				k += size
				if bLen > 4 {
					break
				}
			}
			if k == len(s) && !final && bOK && bLen <= 4 {
				w.open = true
				return w
			}
			join = bOK && bLen <= 4 && (tokDigit || bDigit)
		}
		if !join {
			w.end = tokEnd
			return w
		}
		w.normLen += spaces
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
func (m *Masker) scan(s string, final bool, edits []edit) ([]edit, int) {
	i := 0
	for i < len(s) {
		c := s[i]
		var cls uint8
		size := 1
		if c < 0x80 {
			cls = asciiClass[c]
			if cls != cToken {
				i++
				continue
			}
			if m.fastWords && (c|0x20) >= 'a' && (c|0x20) <= 'z' {
				// Fast path for ordinary words: a run of letters with a
				// lower-case one (or a trailing '.') followed by a space or
				// punctuation can neither join a neighbour nor hold an
				// entity of this profile, so it is a closed window without
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
				if lower && j < len(s) && s[j] < 0x80 && asciiClass[s[j]] != cToken {
					i = j
					continue
				}
			}
		} else {
			cls, _, size = classify(s, i, final)
			if cls == cMore {
				return edits, i
			}
			if cls != cToken {
				i += size
				continue
			}
		}
		w := scanWindow(s, i, final, m.p.HoldBack, m.capBytes)
		if w.open {
			return edits, i
		}
		var next int
		edits, next = m.analyze(s, w, edits)
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
