package mask

import (
	"errors"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/config/field"
)

var testKey = []byte("test-deployment-key")

func newSet(t testing.TB, cfg Config) *Set {
	t.Helper()
	s, err := New(cfg, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func defaultMasker(t testing.TB) *Masker {
	t.Helper()
	m, ok := newSet(t, Config{}).Profile("default")
	if !ok {
		t.Fatal("no default profile")
	}
	return m
}

func TestMaskTextEntities(t *testing.T) {
	m := defaultMasker(t)
	tests := []struct {
		name, in, want string
		entity         string
	}{
		{"card spaces", "card 4111 1111 1111 1111 ok", "card [REDACTED:CREDIT_CARD] ok", "CREDIT_CARD"},
		{"card dashes", "4111-1111-1111-1111", "[REDACTED:CREDIT_CARD]", "CREDIT_CARD"},
		{"card plain", "pay with 5500005555555559.", "pay with [REDACTED:CREDIT_CARD].", "CREDIT_CARD"},
		{"email", "write to jane@example.com today", "write to [REDACTED:EMAIL_ADDRESS] today", "EMAIL_ADDRESS"},
		{"email upper plus tag", "mail John.Doe+News@Example.COM.", "mail [REDACTED:EMAIL_ADDRESS].", "EMAIL_ADDRESS"},
		{"phone us parens", "call (415) 555-2671 now", "call [REDACTED:PHONE_NUMBER] now", "PHONE_NUMBER"},
		{"phone us dots", "call 415.555.2671", "call [REDACTED:PHONE_NUMBER]", "PHONE_NUMBER"},
		{"phone intl", "ring +44 20 7946 0958!", "ring [REDACTED:PHONE_NUMBER]!", "PHONE_NUMBER"},
		{"iban", "IBAN DE89 3704 0044 0532 0130 00.", "IBAN [REDACTED:IBAN_CODE].", "IBAN_CODE"},
		{"iban letters group", "GB82 WEST 1234 5698 7654 32", "[REDACTED:IBAN_CODE]", "IBAN_CODE"},
		{"iban compact", "DE89370400440532013000", "[REDACTED:IBAN_CODE]", "IBAN_CODE"},
		{"ssn", "SSN: 123-45-6789", "SSN: [REDACTED:US_SSN]", "US_SSN"},
		// Evasion: the span replaced in the ORIGINAL text.
		{"full-width digits", "card ４１１１ １１１１ １１１１ １１１１ end", "card [REDACTED:CREDIT_CARD] end", "CREDIT_CARD"},
		{"zero-width inside", "4\u200b111 1111\u200d 1111 11\ufeff11", "[REDACTED:CREDIT_CARD]", "CREDIT_CARD"},
		{"nbsp and dashes", "4111\u00a01111\u20131111\u20141111", "[REDACTED:CREDIT_CARD]", "CREDIT_CARD"},
		{"mixed separators", "4111 1111-1111\u20071111", "[REDACTED:CREDIT_CARD]", "CREDIT_CARD"},
		{"narrow nbsp phone", "+44\u202f20\u202f7946\u202f0958", "[REDACTED:PHONE_NUMBER]", "PHONE_NUMBER"},
		{"arabic-indic digits", "٤١١١١١١١١١١١١١١١", "[REDACTED:CREDIT_CARD]", "CREDIT_CARD"},
		{"full-width at", "jane＠example.com", "[REDACTED:EMAIL_ADDRESS]", "EMAIL_ADDRESS"},
		{"card dots", "4111.1111.1111.1111", "[REDACTED:CREDIT_CARD]", "CREDIT_CARD"},
		{"card padded dashes", "4111 - 1111 - 1111 - 1111!", "[REDACTED:CREDIT_CARD]!", "CREDIT_CARD"},
		{"card double spaces", "x 4111  1111  1111  1111 y", "x [REDACTED:CREDIT_CARD] y", "CREDIT_CARD"},
		{"amex 4-6-5", "amex 3782 822463 10005", "amex [REDACTED:CREDIT_CARD]", "CREDIT_CARD"},
		{"mastercard 2-series", "2223 0031 2200 3222", "[REDACTED:CREDIT_CARD]", "CREDIT_CARD"},
		{"soft hyphen ssn", "123-4\u00ad5-6789", "[REDACTED:US_SSN]", "US_SSN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := NewRecorder()
			got := m.MaskText(tt.in, "test", rec)
			if got != tt.want {
				t.Fatalf("MaskText(%q) = %q, want %q", tt.in, got, tt.want)
			}
			acts := rec.Actions()
			if len(acts) != 1 || acts[0].Entity != tt.entity || acts[0].Location != "test" || len(acts[0].Fingerprint) != 16 {
				t.Fatalf("actions = %+v", acts)
			}
		})
	}
}

// TestFalsePositives: numbers that look like identifiers but are not PII.
func TestFalsePositives(t *testing.T) {
	m := defaultMasker(t)
	corpus := []string{
		"created 1700000000 and updated 1700000000008 (ms)", // 1700000000008 is Luhn-valid
		"ts=1712345678901 latency_ms=1234567",
		"request 123e4567-e89b-12d3-a456-426614174000 done",
		"uuid 550e8400-e29b-41d4-a716-446655440000",
		"order #12345678 shipped, order no. 2024-000123-77",
		"tokens: 128000 prompt_tokens=15234 completion_tokens=987",
		"token ids [50256, 198, 4111, 1111, 1111, 1111]",
		"chatcmpl-9pXyZ12345abcdef and call_AbC123xyz",
		"version 1.2.3.4 build 20240101",
		"sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"the year 2024, 3.14159, 1,000,000 users, +5 points",
		"ISO date 2024-05-17T10:20:30Z and 10:30:45",
		"1234567890",                  // bare 10 digits: not a phone without separators
		"123456789",                   // bare 9 digits: not an SSN without dashes
		"4111 1111 1111 1112",         // Luhn-invalid card-shaped
		"DE89 3704 0044 0532 0130 01", // IBAN with a bad checksum
	}
	for _, in := range corpus {
		rec := NewRecorder()
		if got := m.MaskText(in, "t", rec); got != in {
			t.Errorf("MaskText(%q) = %q, want unchanged (%+v)", in, got, rec.Actions())
		}
	}
}

func TestStylesAndRules(t *testing.T) {
	cfg := Config{Profiles: map[string]Profile{
		"p": {
			Style: StyleToken,
			Entities: []EntityRule{
				{Type: "CREDIT_CARD", Style: StylePartial},
				{Type: "EMAIL_ADDRESS"},
			},
			Regex:    []RegexRule{{Name: "mrn", Pattern: `MRN-\d{6}`}},
			Keywords: []KeywordRule{{Name: "projects", Words: []string{"Falcon", "Osprey"}, Entity: "PROJECT", Style: StyleLabel}},
			Allow:    []string{"noreply@example.com", `re:.*@internal\.example`},
		},
	}}
	m, _ := newSet(t, cfg).Profile("p")
	rec := NewRecorder()
	got := m.MaskText("card 4111 1111 1111 1111, a@b.io, A@B.io, MRN-123456, project falcon, noreply@example.com, ops@internal.example", "x", rec)
	tokA := replacement(StyleToken, "EMAIL_ADDRESS", "a@b.io", m.fingerprint("EMAIL_ADDRESS", "a@b.io"))
	want := "card [CREDIT_CARD:…1111], " + tokA + ", " + tokA + ", <MRN_" + m.fingerprint("MRN", "MRN123456")[:6] + ">, project [REDACTED:PROJECT], noreply@example.com, ops@internal.example"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if !strings.HasPrefix(tokA, "<EMAIL_") || len(tokA) != len("<EMAIL_3f9a1c>") {
		t.Fatalf("token %q", tokA)
	}
	// Same value, same location: one action with count 2 (case-insensitive email).
	var emails int
	for _, a := range rec.Actions() {
		if a.Entity == "EMAIL_ADDRESS" {
			emails++
			if a.Count != 2 {
				t.Errorf("email action count = %d, want 2", a.Count)
			}
		}
	}
	if emails != 1 || rec.Total() != 5 {
		t.Errorf("actions %+v total %d", rec.Actions(), rec.Total())
	}
	// Another key gives other tokens.
	s2, _ := New(cfg, []byte("other-key"))
	m2, _ := s2.Profile("p")
	if m2.MaskText("a@b.io", "", nil) == tokA {
		t.Error("token does not depend on the key")
	}
}

func TestNoValueInEvidence(t *testing.T) {
	m := defaultMasker(t)
	rec := NewRecorder()
	m.MaskText("4111 1111 1111 1111 jane@example.com", "loc", rec)
	for _, a := range rec.Actions() {
		for _, s := range []string{a.Rule, a.Entity, a.Location, a.Fingerprint} {
			if strings.Contains(s, "4111") || strings.Contains(s, "jane") {
				t.Fatalf("action leaks value: %+v", a)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := Config{Profiles: map[string]Profile{"p": {
		Style:        "stars",
		HoldBack:     8,
		Entities:     []EntityRule{{Type: "NOPE"}, {Type: "URL"}},
		Regex:        []RegexRule{{Name: "r", Pattern: "("}, {Name: "r", Pattern: "a*"}},
		Keywords:     []KeywordRule{{Name: "k", Words: []string{"two words"}}},
		JSONPaths:    []PathRule{{Name: "j", Path: "data.x"}},
		Allow:        []string{"re:("},
		ContentTypes: map[string]ContentAction{"image/png": "maybe"},
	}}}
	bad.SetDefaults()
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	wantPaths := []string{
		"profiles.p.style", "profiles.p.hold_back", "profiles.p.entities[0].type", "profiles.p.entities[1].type",
		"profiles.p.regex[0].pattern", "profiles.p.regex[1].name", "profiles.p.regex[1].pattern",
		"profiles.p.keywords[0].words[0]", "profiles.p.json_paths[0].path", "profiles.p.allow[0]",
		"profiles.p.content_types.image/png",
	}
	var paths []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		for _, e := range e.(interface{ Unwrap() []error }).Unwrap() {
			var fe *field.Error
			if !errors.As(e, &fe) {
				t.Fatalf("not a field error: %v", e)
			}
			paths = append(paths, fe.Path)
		}
	}
	for _, p := range wantPaths {
		found := false
		for _, q := range paths {
			found = found || q == p
		}
		if !found {
			t.Errorf("no error for %s; got %v", p, paths)
		}
	}

	good := Config{}
	good.SetDefaults()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Fatal("New without key accepted")
	}
}
