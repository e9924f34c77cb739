package report

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/store/sqlite"
)

// figure returns a figure of a report section, failing the test if absent.
func figure(t testing.TB, r *Report, control, id string) Figure {
	t.Helper()
	for _, s := range r.Sections {
		if s.Control != control {
			continue
		}
		for _, f := range s.Figures {
			if f.ID == id {
				return f
			}
		}
	}
	t.Fatalf("no figure %s %s", control, id)
	return Figure{}
}

func section(t testing.TB, r *Report, control string) Section {
	t.Helper()
	for _, s := range r.Sections {
		if s.Control == control {
			return s
		}
	}
	t.Fatalf("no section %s", control)
	return Section{}
}

// generateScenario closes the log (its final checkpoint covers
// everything) and generates the report of the day from a read-only store.
func generateScenario(t testing.TB, tl *testLog, p Period) *Result {
	t.Helper()
	tl.close(t)
	st, err := sqlite.OpenReadOnly(context.Background(), tl.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	res, err := Generate(context.Background(), Options{Store: st, Verifier: tl.v, SingleWriter: true, Period: p, Seed: 42,
		GeneratedBy: "test", Now: func() time.Time { return t0.Add(48 * time.Hour) }, Upstreams: map[string]string{"openai": "http://model"}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var day = Period{From: t0, To: t0.Add(24 * time.Hour)}

func TestComputeScenario(t *testing.T) {
	tl := newTestLog(t)
	tl.fillScenario(t)
	res := generateScenario(t, tl, day)
	r := res.Report
	if !r.Cover.Verification.OK {
		t.Fatalf("verification: %+v", r.Cover.Verification)
	}
	want := []struct {
		control, id string
		value       int64
		by          map[string]int64
	}{
		{"A.5.15", "decisions", 10, map[string]int64{"allow": 7, "deny": 1, "require_approval": 2}},
		{"A.5.15", "denied", 1, nil},
		{"A.5.16", "admitted", 8, nil},
		{"A.5.16", "identities", 2, map[string]int64{"user": 1, "service": 1}},
		{"A.5.16", "by_auth_method", 8, map[string]int64{"oidc": 7, "api_key": 1}},
		{"A.5.17", "key_uses", 1, map[string]int64{"key-1": 1}},
		{"A.5.17", "keys_revoked", 1, nil},
		{"A.5.17", "key_refusals", 1, map[string]int64{"api key revoked": 1}},
		{"A.5.18", "grants_issued", 1, nil},
		{"A.5.34", "masked_responses", 3, nil},
		{"A.5.34", "masked_values", 9, map[string]int64{"EMAIL": 6, "CREDIT_CARD": 3}},
		{"A.8.2", "approvals_requested", 2, map[string]int64{"finetune": 1, "export": 1}},
		{"A.8.2", "approvals_approved", 1, nil},
		{"A.8.2", "approvals_denied", 1, nil},
		{"A.8.2", "reviews_refused", 1, map[string]int64{"self-approval": 1}},
		{"A.8.2", "decision_time_median", 60000, nil}, // lower median of 1 and 3 minutes
		{"A.8.2", "decision_time_max", 180000, nil},
		{"A.8.3", "denials_by_rule", 1, map[string]int64{"chat-unapproved-model": 1}},
		{"A.8.5", "refused", 2, map[string]int64{"unauthenticated": 1, "invalid_token": 1}},
		{"A.8.5", "refused_credentials", 2, map[string]int64{"no credential": 1, "api key revoked": 1}},
		{"A.8.11", "masking_by_rule", 9, map[string]int64{"pii": 9}},
		{"A.8.12", "withheld", 1, nil},
		{"A.8.12", "truncated", 1, nil},
		{"A.8.15", "admissions", 8, nil},
		{"A.8.15", "terminal", 7, nil},
		{"A.8.15", "open", 1, nil},
		{"A.8.16", "starts", 1, map[string]int64{"gw-1": 1}},
		{"A.8.32", "policy_changes", 1, nil},
	}
	for _, w := range want {
		f := figure(t, r, w.control, w.id)
		if f.Value != w.value {
			t.Errorf("%s %s = %d, want %d", w.control, w.id, f.Value, w.value)
		}
		for k, v := range w.by {
			if f.By[k] != v {
				t.Errorf("%s %s by %q = %d, want %d (%v)", w.control, w.id, k, f.By[k], v, f.By)
			}
		}
		if f.Query == "" {
			t.Errorf("%s %s has no query", w.control, w.id)
		}
	}
	if ex := section(t, r, "A.8.15").Exceptions; len(ex) != 1 || ex[0].RequestID != "open" {
		t.Errorf("A.8.15 exceptions: %+v", ex)
	}
	if ex := section(t, r, "A.8.2").Exceptions; len(ex) != 2 {
		t.Errorf("A.8.2 exceptions (self-approval, denial): %+v", ex)
	}
	if ex := section(t, r, "A.5.33").Exceptions; len(ex) != 0 {
		t.Errorf("A.5.33 exceptions: %+v", ex)
	}
	// Samples carry inclusion proofs against the segment's last checkpoint.
	s := section(t, r, "A.5.28")
	if len(s.Sample) != SampleSize || s.SampleOf != r.Cover.PeriodEntries {
		t.Fatalf("A.5.28 sample: %d of %d", len(s.Sample), s.SampleOf)
	}
	for _, smp := range s.Sample {
		if smp.ProofSize != r.Cover.Segment.To || smp.Summary == "" {
			t.Errorf("sample %+v", smp)
		}
	}
	// v1 decided the 10 admissions, denials and pending requests; v2 was
	// installed (no decision yet).
	pv := r.Cover.Scope.PolicyVersions
	if r.Cover.Scope.Routes[0].Upstream != "http://model" || len(pv) != 2 || pv[0].Version != "sha256:v1" || pv[0].Decisions != 10 || pv[1].Decisions != 0 {
		t.Errorf("scope: %+v", r.Cover.Scope)
	}
	b, _ := json.MarshalIndent(r, "", " ")
	t.Logf("%d bytes of JSON", len(b))
}

func TestPeriodOutside(t *testing.T) {
	tl := newTestLog(t)
	tl.fillScenario(t)
	res := generateScenario(t, tl, Period{From: t0.Add(-48 * time.Hour), To: t0.Add(-24 * time.Hour)})
	r := res.Report
	if r.Cover.PeriodEntries != 0 || figure(t, r, "A.8.15", "admissions").Value != 0 {
		t.Fatalf("empty period counted: %+v", r.Cover)
	}
	for _, s := range r.Sections {
		if len(s.Exceptions) != 0 || len(s.Sample) != 0 {
			t.Errorf("%s: %+v", s.Control, s)
		}
	}
}

func TestEntryTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{`{"details":{"time":"2020-01-01T00:00:00Z"},"kind":"x","time":"2026-11-02T09:00:00.5Z","v":1}`, "2026-11-02T09:00:00.5Z"},
		{`{"details":{"x":"\"time\":\"2020-01-01T00:00:00Z"},"kind":"x","time":"2026-11-02T09:00:00Z","upstream_ns":5,"v":1}`, "2026-11-02T09:00:00Z"},
	} {
		got, err := EntryTime([]byte(c.in))
		if err != nil || got.Format(time.RFC3339Nano) != c.want {
			t.Errorf("%s: %v %v", c.in, got, err)
		}
	}
	if _, err := EntryTime([]byte(`{"kind":"x"}`)); err == nil {
		t.Error("no time accepted")
	}
}

// TestSamplesReproducible: the same seed and entries give the same
// samples, another seed others (the seed is in the cover).
func TestSamplesReproducible(t *testing.T) {
	tl := newTestLog(t)
	tl.fillScenario(t)
	tl.close(t)
	st, err := sqlite.OpenReadOnly(context.Background(), tl.path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seqs := func(seed uint64) string {
		res, err := Generate(context.Background(), Options{Store: st, Verifier: tl.v, Period: day, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, s := range res.Report.Sections {
			for _, smp := range s.Sample {
				fmt.Fprintf(&b, "%d ", smp.Seq)
			}
		}
		return b.String()
	}
	a, b, c := seqs(42), seqs(42), seqs(43)
	if a != b || a == c {
		t.Fatalf("seed 42: %s / %s; seed 43: %s", a, b, c)
	}
}
