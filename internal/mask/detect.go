package mask

import (
	"regexp"
	"slices"
	"sync"

	"github.com/hoophq/alcatraz/analyzer"
	"github.com/hoophq/alcatraz/entities"
	"github.com/hoophq/alcatraz/recognizers"
)

// Entity types whose shape crosses characters that end a candidate window
// (':' or free text), so they cannot be detected window by window.
var unsupportedEntities = []string{entities.URL, entities.Person, entities.Location, entities.NRP, entities.DateTime}

// builtin are the detectors Warden runs itself for the default entity
// types (detectors.go): stricter and measured (TestDetectorQuality), and
// able to look at the text before a window (labels like "SSN:"). Every
// other entity type is detected by alcatraz's recognizers.
var builtin = map[string]bool{
	entities.CreditCard:   true,
	entities.EmailAddress: true,
	entities.PhoneNumber:  true,
	entities.IBANCode:     true,
	entities.USSSN:        true,
}

// detectBuiltin runs the built-in detector of r's entity type. The calls
// are static so that the window context stays on the stack.
func detectBuiltin(c *detectCtx, r *rule, hits []hit) []hit {
	switch r.entity {
	case entities.CreditCard:
		return detectCards(c, r, hits)
	case entities.EmailAddress:
		return detectEmails(c, r, hits)
	case entities.PhoneNumber:
		return detectPhones(c, r, hits)
	case entities.IBANCode:
		return detectIBANs(c, r, hits)
	case entities.USSSN:
		return detectSSNs(c, r, hits)
	}
	return hits
}

// engineOnce builds the shared alcatraz engine with every built-in
// recognizer except those for the entity types Warden detects itself.
// Context scoring is off so a window's result depends on the window alone.
var engineOnce = sync.OnceValue(func() *analyzer.Engine {
	reg := analyzer.NewRegistry("en")
	for _, r := range recognizers.All() {
		mine := false
		for _, e := range r.SupportedEntities() {
			if builtin[e] {
				mine = true
			}
		}
		if !mine {
			reg.Add("en", r)
		}
	}
	eng := analyzer.NewEngine(reg, []string{"en"})
	eng.SetContextEnhancer(nil)
	return eng
})

func supportedEntities() []string {
	var out []string
	for _, e := range engineOnce().SupportedEntities("en") {
		if !slices.Contains(unsupportedEntities, e) {
			out = append(out, e)
		}
	}
	for e := range builtin {
		out = append(out, e)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// need says whether a window's statistics allow an entity type at all: the
// cheap test that keeps the recognizers off ordinary words and small numbers.
func need(entity string, w window) bool {
	switch entity {
	case entities.CreditCard:
		return w.digits >= 13
	case entities.EmailAddress:
		return w.at
	case entities.PhoneNumber:
		// Our phone patterns need a separator, '(' or '+'.
		return w.digits >= 8 && w.sep
	case entities.IBANCode:
		return w.digits >= 2 && w.upper+w.lower >= 2 && w.normLen >= 15
	case entities.USSSN:
		return w.digits >= 9
	case entities.IPAddress:
		return w.digits >= 4
	}
	return w.digits > 0 || w.upper > 0
}

type rule struct {
	name     string // rule id in evidence, e.g. "entities.CREDIT_CARD"
	entity   string
	style    Style
	minScore float64
	re       *regexp.Regexp
}

// hit is a detection in normalized window coordinates.
type hit struct {
	ns, ne int
	r      *rule
}

// scratch holds per-window buffers; pooled so analysis does not allocate
// in steady state.
type scratch struct {
	norm   []byte
	starts []int32 // original start offset (relative to window) per normalized byte
	ends   []int32 // original end offset per normalized byte
	hits   []hit
	ents   []string
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// analyze runs the detectors over window w of s, appends edits for the
// committed part and returns the position where scanning resumes.
func (m *Masker) analyze(s string, w window, edits []edit, o scanOpts) ([]edit, int) {
	needed := len(m.textRules) > 0
	for _, r := range m.entityRules {
		needed = needed || need(r.entity, w)
	}
	if !needed {
		return edits, w.end
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	// Normalize the window, remembering where each byte came from.
	sc.norm, sc.starts, sc.ends = sc.norm[:0], sc.starts[:0], sc.ends[:0]
	for j := w.start; j < w.end; {
		cls, nb, size := classify(s, j, true, o.html)
		if c := s[j]; c == '\n' || c == '\r' {
			// Only a wrapped digit group puts a line break inside a
			// window: it separates like a space.
			cls, nb = cSpace, ' '
		}
		if cls == cSpace || nb == '-' {
			// A run of separators ("4111 - 1111", "4111  1111") reads as
			// one, so padding the groups of a number does not hide it.
			if k := len(sc.norm); k > 0 && (sc.norm[k-1] == ' ' || sc.norm[k-1] == '-') {
				if nb == '-' {
					sc.norm[k-1] = '-'
				}
				sc.ends[k-1] = int32(j + size - w.start)
				j += size
				continue
			}
		}
		if cls == cToken || cls == cSpace {
			sc.norm = append(sc.norm, nb)
			sc.starts = append(sc.starts, int32(j-w.start))
			sc.ends = append(sc.ends, int32(j+size-w.start))
		}
		j += size
	}
	n := string(sc.norm)
	sc.hits = sc.hits[:0]
	sc.ents = sc.ents[:0]
	var ctx detectCtx
	for _, r := range m.entityRules {
		if !need(r.entity, w) {
			continue
		}
		if builtin[r.entity] {
			if w.head && r.entity != entities.IBANCode {
				// A window that began with an IBAN head holds short
				// alphanumeric groups: a checksum-invalid IBAN is not a
				// place to look for card or phone numbers.
				continue
			}
			if ctx.n == "" {
				ctx = detectCtx{n: n, s: s, start: w.start, starts: sc.starts}
				if o.pre != nil {
					ctx.pre = *o.pre
				}
			}
			sc.hits = detectBuiltin(&ctx, r, sc.hits)
			continue
		}
		sc.ents = append(sc.ents, r.entity)
	}
	if len(sc.ents) > 0 {
		for _, res := range engineOnce().Analyze(n, analyzer.Options{Entities: sc.ents}) {
			r := m.byEntity[res.EntityType]
			if r == nil || res.Score < r.minScore {
				continue
			}
			sc.hits = append(sc.hits, hit{res.Start, res.End, r})
		}
	}
	for _, r := range m.textRules {
		for _, loc := range r.re.FindAllStringIndex(n, -1) {
			if loc[1] > loc[0] {
				sc.hits = append(sc.hits, hit{loc[0], loc[1], r})
			}
		}
	}
	if len(m.allowExact) > 0 || len(m.allowRE) > 0 {
		sc.hits = slices.DeleteFunc(sc.hits, func(h hit) bool { return m.allowed(n[h.ns:h.ne]) })
	}
	hits := mergeHits(sc.hits)

	next := w.end
	if w.long {
		// Commit only up to limit-overlap (or the end of a match crossing
		// it); the rest is scanned again as the start of a new window, so an
		// entity up to `overlap` characters long straddling the cut is
		// still seen whole.
		c := len(n) - m.overlap
		if c <= 0 {
			c = len(n)
		}
		kept := hits[:0]
		for _, h := range hits {
			if h.ns < c {
				kept = append(kept, h)
				c = max(c, h.ne)
			}
		}
		hits = kept
		if c < len(n) {
			next = w.start + int(sc.starts[c])
		}
	}
	for _, h := range hits {
		start := w.start + int(sc.starts[h.ns])
		end := w.start + int(sc.ends[h.ne-1])
		canon := canonical(h.r.entity, n[h.ns:h.ne], s[start:end], o.html)
		fp := m.fingerprint(h.r.entity, canon)
		edits = append(edits, edit{
			start: start,
			end:   end,
			repl:  replacement(h.r.style, h.r.entity, canon, fp),
			r:     h.r,
			fp:    fp,
		})
	}
	return edits, next
}

// mergeHits sorts hits by position and merges overlapping ones; the longest
// hit of a merged group names the entity.
func mergeHits(hits []hit) []hit {
	if len(hits) < 2 {
		return hits
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if a.ns != b.ns {
			return a.ns - b.ns
		}
		return b.ne - a.ne
	})
	out := hits[:1]
	for _, h := range hits[1:] {
		last := &out[len(out)-1]
		if h.ns < last.ne {
			if h.ne > last.ne {
				if h.ne-h.ns > last.ne-last.ns {
					last.r = h.r
				}
				last.ne = h.ne
			}
			continue
		}
		out = append(out, h)
	}
	return out
}

func (m *Masker) allowed(v string) bool {
	if _, ok := m.allowExact[v]; ok {
		return true
	}
	for _, re := range m.allowRE {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}
