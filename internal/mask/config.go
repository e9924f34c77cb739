package mask

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenhq/warden/internal/config/field"
)

// Config is the `masking:` section of the Warden configuration.
type Config struct {
	// Key is the HMAC key for fingerprints and stable tokens. When empty the
	// gateway passes a generated per-deployment key to New instead; a key
	// given to New always wins over this field.
	Key string `yaml:"key"`
	// Profiles maps a profile name (chosen per request by policy) to its
	// rules. A profile named "default" exists even when not configured.
	Profiles map[string]Profile `yaml:"profiles"`
}

// Style is how a matched value is replaced.
type Style string

// Replacement styles.
const (
	// StyleLabel replaces the value with [REDACTED:ENTITY].
	StyleLabel Style = "label"
	// StylePartial keeps the last four characters: [ENTITY:…1111].
	StylePartial Style = "partial"
	// StyleToken replaces the value with a stable keyed token <ENTITY_3f9a1c>:
	// the same value gives the same token within a deployment.
	StyleToken Style = "token"
)

// ContentAction says what to do with a response of a content type that is
// neither JSON nor an event stream.
type ContentAction string

// Content actions.
const (
	// ActionMask masks the body as streamed text.
	ActionMask ContentAction = "mask"
	// ActionPass passes the body through unchanged.
	ActionPass ContentAction = "pass"
	// ActionBlock refuses the response (the gateway answers 502).
	ActionBlock ContentAction = "block"
)

// Profile is one named set of masking rules.
type Profile struct {
	// Entities are the alcatraz entity types to detect. Nil (key absent)
	// means the default set (see DefaultEntities); an explicit empty list
	// means none.
	Entities []EntityRule `yaml:"entities"`
	// Style is the profile-wide replacement style; default "label".
	Style Style `yaml:"style"`
	// Regex are custom RE2 rules, matched inside candidate windows.
	Regex []RegexRule `yaml:"regex"`
	// Keywords are deny-lists matched case-insensitively as whole words
	// inside candidate windows (single tokens; no spaces).
	Keywords []KeywordRule `yaml:"keywords"`
	// JSONPaths mask a whole JSON field regardless of its content.
	JSONPaths []PathRule `yaml:"json_paths"`
	// Allow lists values never masked: a literal (compared with the
	// normalized match) or, prefixed with "re:", an RE2 regex that must match
	// the whole normalized value.
	Allow []string `yaml:"allow"`
	// ContentTypes maps a media type ("image/png") or wildcard ("image/*",
	// "*/*") to mask|pass|block for bodies that are not JSON, SSE or text/*.
	// Unlisted types are blocked: every byte the caller receives must have
	// passed the masking rules.
	ContentTypes map[string]ContentAction `yaml:"content_types"`
	// FailClosed refuses a stream or body that cannot be parsed; default
	// true. When false an unparseable SSE event is masked as generic text
	// and an unparseable JSON body as text.
	FailClosed *bool `yaml:"fail_closed"`
	// HoldBack bounds, in normalized characters, how much text a stream may
	// hold back per channel while an entity could still be being written;
	// default 96, allowed 16..1024. Values below 64 weaken detection of
	// long entities (IBAN, international phone numbers) inside long windows.
	HoldBack int `yaml:"hold_back"`
	// MaxBodyBytes bounds a JSON body read whole for masking; default 16 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxEventBytes bounds one SSE line or event; default 1 MiB.
	MaxEventBytes int `yaml:"max_event_bytes"`
}

// EntityRule selects one alcatraz entity type. In YAML it is either a bare
// string ("CREDIT_CARD") or a mapping {type, min_score, style}.
type EntityRule struct {
	// Type is the alcatraz entity type, e.g. CREDIT_CARD.
	Type string `yaml:"type"`
	// MinScore drops matches scoring below it; default 0.5. Checksum
	// validated matches score 1.
	MinScore float64 `yaml:"min_score"`
	// Style overrides the profile style for this entity.
	Style Style `yaml:"style"`
}

// UnmarshalYAML accepts a bare entity name as well as the mapping form.
func (e *EntityRule) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err == nil {
		*e = EntityRule{Type: s}
		return nil
	}
	type plain EntityRule
	var p plain
	if err := unmarshal(&p); err != nil {
		return err
	}
	*e = EntityRule(p)
	return nil
}

// RegexRule is a custom RE2 detector.
type RegexRule struct {
	// Name identifies the rule in evidence and metrics.
	Name string `yaml:"name"`
	// Pattern is an RE2 expression, matched against normalized window text.
	Pattern string `yaml:"pattern"`
	// Entity is the entity label used in replacements; default the upper-cased name.
	Entity string `yaml:"entity"`
	// Style overrides the profile style.
	Style Style `yaml:"style"`
}

// KeywordRule is a deny-list.
type KeywordRule struct {
	// Name identifies the rule in evidence and metrics.
	Name string `yaml:"name"`
	// Words are matched case-insensitively as whole words.
	Words []string `yaml:"words"`
	// Entity is the entity label; default "KEYWORD".
	Entity string `yaml:"entity"`
	// Style overrides the profile style.
	Style Style `yaml:"style"`
}

// PathRule masks a whole JSON field.
type PathRule struct {
	// Name identifies the rule in evidence and metrics.
	Name string `yaml:"name"`
	// Path is a JSONPath subset: $ then .name, ['name'], [N] or [*] steps,
	// e.g. $.data[*].patient.mrn.
	Path string `yaml:"path"`
	// Entity is the entity label; default "FIELD".
	Entity string `yaml:"entity"`
	// Style overrides the profile style.
	Style Style `yaml:"style"`
}

// DefaultEntities is the entity set of the built-in "default" profile and
// of profiles that do not list entities: types whose detectors are precise
// (checksums or unambiguous shape), so ordinary numbers are left alone.
var DefaultEntities = []string{"CREDIT_CARD", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "US_SSN"}

// Default values.
const (
	DefaultHoldBack      = 96
	MinHoldBack          = 16
	MaxHoldBack          = 1024
	DefaultMinScore      = 0.5
	DefaultMaxBodyBytes  = 16 << 20
	DefaultMaxEventBytes = 1 << 20
	// MinKeyBytes is the shortest accepted masking.key.
	MinKeyBytes = 16
)

// SetDefaults fills unset fields and adds the built-in "default" profile
// when none is configured.
func (c *Config) SetDefaults() {
	if c.Profiles == nil {
		c.Profiles = map[string]Profile{}
	}
	if _, ok := c.Profiles["default"]; !ok {
		c.Profiles["default"] = Profile{}
	}
	for name, p := range c.Profiles {
		p.setDefaults()
		c.Profiles[name] = p
	}
}

func (p *Profile) setDefaults() {
	if p.Entities == nil {
		for _, e := range DefaultEntities {
			p.Entities = append(p.Entities, EntityRule{Type: e})
		}
	}
	for i := range p.Entities {
		if p.Entities[i].MinScore == 0 {
			p.Entities[i].MinScore = DefaultMinScore
		}
	}
	if p.Style == "" {
		p.Style = StyleLabel
	}
	if p.FailClosed == nil {
		t := true
		p.FailClosed = &t
	}
	if p.HoldBack == 0 {
		p.HoldBack = DefaultHoldBack
	}
	if p.MaxBodyBytes == 0 {
		p.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if p.MaxEventBytes == 0 {
		p.MaxEventBytes = DefaultMaxEventBytes
	}
	for i := range p.Regex {
		if p.Regex[i].Entity == "" {
			p.Regex[i].Entity = strings.ToUpper(p.Regex[i].Name)
		}
	}
	for i := range p.Keywords {
		if p.Keywords[i].Entity == "" {
			p.Keywords[i].Entity = "KEYWORD"
		}
	}
	for i := range p.JSONPaths {
		if p.JSONPaths[i].Entity == "" {
			p.JSONPaths[i].Entity = "FIELD"
		}
	}
}

// Validate checks the configuration after SetDefaults.
func (c *Config) Validate() error {
	var errs []error
	if c.Key != "" && len(c.Key) < MinKeyBytes {
		errs = append(errs, field.Errorf("key", "must be at least %d bytes (use a random value; leave empty to use the generated deployment key)", MinKeyBytes))
	}
	names := make([]string, 0, len(c.Profiles))
	for n := range c.Profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		p := c.Profiles[n]
		if n == "none" {
			// In a policy rule, mask: none means "no masking".
			errs = append(errs, field.Errorf("profiles.none", "the name none is reserved (a policy rule's mask: none turns masking off)"))
		}
		if err := p.validate(); err != nil {
			errs = append(errs, field.Prefix("profiles."+n, err))
		}
	}
	return errors.Join(errs...)
}

func validStyle(s Style, allowEmpty bool) bool {
	switch s {
	case StyleLabel, StylePartial, StyleToken:
		return true
	case "":
		return allowEmpty
	}
	return false
}

var entityNameRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

func (p *Profile) validate() error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, field.Errorf(path, format, args...)) }
	if !validStyle(p.Style, false) {
		add("style", "must be label, partial or token, not %q", p.Style)
	}
	if p.HoldBack < MinHoldBack || p.HoldBack > MaxHoldBack {
		add("hold_back", "must be between %d and %d, not %d", MinHoldBack, MaxHoldBack, p.HoldBack)
	}
	if p.MaxBodyBytes < 0 {
		add("max_body_bytes", "must be positive")
	}
	if p.MaxEventBytes < 0 {
		add("max_event_bytes", "must be positive")
	}
	supported := supportedEntities()
	seen := map[string]bool{}
	for i, e := range p.Entities {
		path := fmt.Sprintf("entities[%d]", i)
		if !slices.Contains(supported, e.Type) {
			add(path+".type", "unknown entity type %q (supported: %s)", e.Type, strings.Join(supported, ", "))
		}
		if seen[e.Type] {
			add(path+".type", "entity %q listed twice", e.Type)
		}
		seen[e.Type] = true
		if e.MinScore < 0 || e.MinScore > 1 {
			add(path+".min_score", "must be between 0 and 1")
		}
		if !validStyle(e.Style, true) {
			add(path+".style", "must be label, partial or token, not %q", e.Style)
		}
	}
	ruleNames := map[string]bool{}
	checkName := func(path, name string) {
		if name == "" {
			add(path+".name", "is required")
			return
		}
		if ruleNames[name] {
			add(path+".name", "rule name %q used twice", name)
		}
		ruleNames[name] = true
	}
	checkEntity := func(path, entity string) {
		if !entityNameRE.MatchString(entity) {
			add(path+".entity", "must be upper-case letters, digits and _, not %q", entity)
		}
	}
	for i, r := range p.Regex {
		path := fmt.Sprintf("regex[%d]", i)
		checkName(path, r.Name)
		checkEntity(path, r.Entity)
		if r.Pattern == "" {
			add(path+".pattern", "is required")
		} else if re, err := regexp.Compile(r.Pattern); err != nil {
			add(path+".pattern", "invalid RE2: %v", err)
		} else if re.MatchString("") {
			add(path+".pattern", "must not match the empty string")
		}
		if !validStyle(r.Style, true) {
			add(path+".style", "must be label, partial or token, not %q", r.Style)
		}
	}
	for i, k := range p.Keywords {
		path := fmt.Sprintf("keywords[%d]", i)
		checkName(path, k.Name)
		checkEntity(path, k.Entity)
		if len(k.Words) == 0 {
			add(path+".words", "needs at least one word")
		}
		for j, w := range k.Words {
			if w == "" || strings.ContainsFunc(w, isSpaceRune) {
				add(fmt.Sprintf("%s.words[%d]", path, j), "must be one non-empty word without spaces")
			}
		}
		if !validStyle(k.Style, true) {
			add(path+".style", "must be label, partial or token, not %q", k.Style)
		}
	}
	for i, j := range p.JSONPaths {
		path := fmt.Sprintf("json_paths[%d]", i)
		checkName(path, j.Name)
		checkEntity(path, j.Entity)
		if _, err := parseJSONPath(j.Path); err != nil {
			add(path+".path", "%v", err)
		}
		if !validStyle(j.Style, true) {
			add(path+".style", "must be label, partial or token, not %q", j.Style)
		}
	}
	for i, a := range p.Allow {
		if re, ok := strings.CutPrefix(a, "re:"); ok {
			if _, err := regexp.Compile(re); err != nil {
				add(fmt.Sprintf("allow[%d]", i), "invalid RE2: %v", err)
			}
		} else if a == "" {
			add(fmt.Sprintf("allow[%d]", i), "must not be empty")
		}
	}
	for ct, act := range p.ContentTypes {
		switch act {
		case ActionMask, ActionPass, ActionBlock:
		default:
			add("content_types."+ct, "must be mask, pass or block, not %q", act)
		}
		if !strings.Contains(ct, "/") {
			add("content_types."+ct, "must be a media type like image/png or image/*")
		}
	}
	return errors.Join(errs...)
}
