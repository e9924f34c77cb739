package mask

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Set holds the compiled masking profiles of one configuration. It is
// immutable and safe for concurrent use.
type Set struct {
	profiles map[string]*Masker
}

// Masker applies one profile. It is immutable and safe for concurrent use;
// per-response state lives in the readers it creates.
type Masker struct {
	name        string
	p           Profile
	key         []byte
	entityRules []*rule
	byEntity    map[string]*rule
	textRules   []*rule // regex and keyword rules, run on every window
	pathRules   []pathRule
	allowExact  map[string]struct{}
	allowRE     []*regexp.Regexp
	overlap     int
	capBytes    int
	failClosed  bool
	// fastWords: windows made only of letters never need analysis (no
	// regex or keyword rules, and no entity of the profile can be letters
	// only), enabling the scanner's fast path for ordinary words.
	fastWords bool
	macs      sync.Pool // of keyed HMAC-SHA256 hash.Hash
}

// New compiles cfg (SetDefaults is applied to a copy) with key as the HMAC
// key for fingerprints and tokens; an empty key falls back to cfg.Key. It
// fails when the configuration is invalid or no key is available.
func New(cfg Config, key []byte) (*Set, error) {
	if len(key) == 0 {
		key = []byte(cfg.Key)
	}
	if len(key) == 0 {
		return nil, errors.New("mask: no HMAC key: set masking.key or pass a generated key")
	}
	profiles := make(map[string]Profile, len(cfg.Profiles)+1)
	for n, p := range cfg.Profiles {
		profiles[n] = p
	}
	cfg.Profiles = profiles
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mask: %w", err)
	}
	set := &Set{profiles: map[string]*Masker{}}
	for name, p := range cfg.Profiles {
		m, err := compile(name, p, slices.Clone(key))
		if err != nil {
			return nil, fmt.Errorf("mask: profile %s: %w", name, err)
		}
		set.profiles[name] = m
	}
	return set, nil
}

// Profile returns the masker of the named profile.
func (s *Set) Profile(name string) (*Masker, bool) {
	m, ok := s.profiles[name]
	return m, ok
}

// Names returns the profile names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.profiles))
	for n := range s.profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func styleOr(s, def Style) Style {
	if s == "" {
		return def
	}
	return s
}

func compile(name string, p Profile, key []byte) (*Masker, error) {
	m := &Masker{
		name:       name,
		p:          p,
		key:        key,
		byEntity:   map[string]*rule{},
		allowExact: map[string]struct{}{},
		overlap:    p.HoldBack / 2,
		capBytes:   8*p.HoldBack + 64,
		failClosed: p.FailClosed == nil || *p.FailClosed,
	}
	for _, e := range p.Entities {
		r := &rule{name: "entities." + e.Type, entity: e.Type, style: styleOr(e.Style, p.Style), minScore: e.MinScore}
		m.entityRules = append(m.entityRules, r)
		m.byEntity[e.Type] = r
	}
	for _, x := range p.Regex {
		re, err := regexp.Compile(x.Pattern)
		if err != nil {
			return nil, err
		}
		m.textRules = append(m.textRules, &rule{name: "regex." + x.Name, entity: x.Entity, style: styleOr(x.Style, p.Style), re: re})
	}
	for _, k := range p.Keywords {
		quoted := make([]string, len(k.Words))
		for i, w := range k.Words {
			quoted[i] = regexp.QuoteMeta(w)
		}
		re, err := regexp.Compile(`(?i)\b(?:` + strings.Join(quoted, "|") + `)\b`)
		if err != nil {
			return nil, err
		}
		m.textRules = append(m.textRules, &rule{name: "keywords." + k.Name, entity: k.Entity, style: styleOr(k.Style, p.Style), re: re})
	}
	for _, j := range p.JSONPaths {
		segs, err := parseJSONPath(j.Path)
		if err != nil {
			return nil, err
		}
		m.pathRules = append(m.pathRules, pathRule{
			segs: segs,
			rule: &rule{name: "json_paths." + j.Name, entity: j.Entity, style: styleOr(j.Style, p.Style)},
		})
	}
	m.fastWords = len(m.textRules) == 0
	for _, r := range m.entityRules {
		if need(r.entity, window{upper: 1 << 20, normLen: 1 << 20}) {
			m.fastWords = false
		}
	}
	for _, a := range p.Allow {
		if re, ok := strings.CutPrefix(a, "re:"); ok {
			c, err := regexp.Compile(`^(?:` + re + `)$`)
			if err != nil {
				return nil, err
			}
			m.allowRE = append(m.allowRE, c)
		} else {
			m.allowExact[a] = struct{}{}
		}
	}
	return m, nil
}

// Name returns the profile name.
func (m *Masker) Name() string { return m.name }

// HoldBack returns the profile's hold-back bound in normalized characters.
func (m *Masker) HoldBack() int { return m.p.HoldBack }

// MaskText masks s as one whole text and records each masked value under
// location in rec (which may be nil).
func (m *Masker) MaskText(s, location string, rec *Recorder) string {
	return m.maskText(s, location, rec, scanOpts{})
}

// MaskHTML masks s as one whole text/html text: character references
// (&#52; &commat; &nbsp;) are decoded for detection, and a match is replaced
// together with the references it is written with.
func (m *Masker) MaskHTML(s, location string, rec *Recorder) string {
	return m.maskText(s, location, rec, scanOpts{html: true})
}

func (m *Masker) maskText(s, location string, rec *Recorder, o scanOpts) string {
	edits, _ := m.scan(s, true, nil, o)
	if len(edits) == 0 {
		return s
	}
	record(rec, location, edits)
	return applyString(s, edits)
}

func applyString(s string, edits []edit) string {
	var b strings.Builder
	b.Grow(len(s) + 32*len(edits))
	last := 0
	for _, e := range edits {
		b.WriteString(s[last:e.start])
		b.WriteString(e.repl)
		last = e.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// TextStream masks one logical channel of text that arrives in pieces. The
// concatenation of everything Write and Flush return equals MaskText of the
// concatenated input, whatever the pieces. Not safe for concurrent use.
type TextStream struct {
	m       *Masker
	loc     string
	rec     *Recorder
	pending string
	edits   []edit
	html    bool
	// pre is the tail of the text already committed, where labels such as
	// "SSN:" before a window are found, exactly as MaskText would see them.
	pre lookback
}

// NewTextStream starts a text stream recorded under location.
func (m *Masker) NewTextStream(location string, rec *Recorder) *TextStream {
	return &TextStream{m: m, loc: location, rec: rec}
}

// newHTMLStream starts a text stream of text/html (see MaskHTML).
func (m *Masker) newHTMLStream(location string, rec *Recorder) *TextStream {
	return &TextStream{m: m, loc: location, rec: rec, html: true}
}

// Write adds p to the stream and appends the masked text that is now final
// to dst.
func (t *TextStream) Write(dst []byte, p string) []byte {
	if t.pending == "" {
		t.pending = p
	} else {
		t.pending += p
	}
	return t.emit(dst, false)
}

// Flush ends the stream: it appends all remaining masked text to dst.
func (t *TextStream) Flush(dst []byte) []byte { return t.emit(dst, true) }

// Drop ends the stream abnormally: the text held back (it could still be
// the start of a value) is discarded, never emitted, and the number of
// dropped bytes is returned.
func (t *TextStream) Drop() int {
	n := len(t.pending)
	t.pending = ""
	return n
}

// Pending reports how many bytes are held back.
func (t *TextStream) Pending() int { return len(t.pending) }

func (t *TextStream) emit(dst []byte, final bool) []byte {
	var cut int
	t.edits, cut = t.m.scan(t.pending, final, t.edits[:0], scanOpts{pre: &t.pre, html: t.html})
	record(t.rec, t.loc, t.edits)
	dst = apply(dst, t.pending[:cut], t.edits)
	t.pre.push(t.pending[:cut])
	t.pending = t.pending[cut:]
	if t.pending == "" {
		t.pending = "" // drop the reference to the old buffer
	}
	return dst
}
