package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/safeyaml"
)

// Suite is a YAML file of policy table tests, run by `warden policy
// test`:
//
//	policy: policy.yaml          # relative to the suite file
//	route: {name: openai, profile: openai}   # default for every test
//	now: 2026-01-01T12:00:00Z    # default decision time (optional)
//	tests:
//	  - name: alice may chat
//	    principal: {subject: alice, kind: user, groups: [ml-users]}
//	    request: {method: POST, path: /v1/chat/completions}
//	    body: {model: warden-demo-small, messages: [{role: user, content: hi}]}
//	    expect: {action: allow, rule: chat-approved-models, mask: default}
//
// A test's body is the JSON request body written as YAML; for
// openai-profile routes it is reduced with BodyFacts, as the gateway does.
type Suite struct {
	// Policy is the policy file, relative to the suite file.
	Policy string `yaml:"policy"`
	// Route is the default route of tests that name none.
	Route *Route `yaml:"route,omitempty"`
	// Now is the default decision time.
	Now *time.Time `yaml:"now,omitempty"`
	// Tests are the cases, run in order.
	Tests []SuiteTest `yaml:"tests"`
}

// SuiteTest is one case: an input and the expected decision.
type SuiteTest struct {
	// Name describes the case.
	Name string `yaml:"name"`
	// Principal is the caller.
	Principal *identity.Principal `yaml:"principal,omitempty"`
	// Request is the HTTP request.
	Request Request `yaml:"request"`
	// Route overrides the suite's default route.
	Route *Route `yaml:"route,omitempty"`
	// Body is the JSON request body (any YAML value).
	Body any `yaml:"body,omitempty"`
	// Grants are the caller's active grants.
	Grants []Grant `yaml:"grants,omitempty"`
	// Now overrides the suite's decision time.
	Now *time.Time `yaml:"now,omitempty"`
	// Expect is the expected decision.
	Expect SuiteExpect `yaml:"expect"`
}

// SuiteExpect is the expected decision; empty fields other than Action
// are not checked.
type SuiteExpect struct {
	Action   Action      `yaml:"action"`
	Rule     string      `yaml:"rule,omitempty"`
	Mask     *string     `yaml:"mask,omitempty"`
	Log      LogMode     `yaml:"log,omitempty"`
	Record   RecordLevel `yaml:"record,omitempty"`
	Approval string      `yaml:"approval,omitempty"`
}

// TestResult is the outcome of one suite case.
type TestResult struct {
	// Name is the case's name.
	Name string
	// Passed reports whether the decision matched.
	Passed bool
	// Failure explains a mismatch, e.g. `test "x": expected allow by
	// rule "a", got deny by rule "b" (reason)`.
	Failure string
	// Decision is what the policy decided.
	Decision Decision
}

// SuiteResult is the outcome of one suite file.
type SuiteResult struct {
	// File is the suite file.
	File string
	// Policy is the policy file tested.
	Policy string
	// Version is the tested policy's version.
	Version string
	// Results are per case, in order.
	Results []TestResult
}

// Failed returns the number of failed cases.
func (r *SuiteResult) Failed() int {
	n := 0
	for _, t := range r.Results {
		if !t.Passed {
			n++
		}
	}
	return n
}

// ParseSuite decodes and checks a suite; name is used in error messages.
func ParseSuite(name string, data []byte) (*Suite, error) {
	var s Suite
	if err := safeyaml.UnmarshalStrict(data, &s); err != nil {
		return nil, yamlError(name, err)
	}
	if s.Policy == "" {
		return nil, fmt.Errorf("policy test: %s: policy: is required", name)
	}
	if len(s.Tests) == 0 {
		return nil, fmt.Errorf("policy test: %s: tests: at least one test is required", name)
	}
	return &s, nil
}

// RunSuiteFile loads the suite at path and the policy it names, and runs
// every case. The error is for a suite or policy that cannot be loaded;
// failing cases are reported in the result.
func RunSuiteFile(path string) (*SuiteResult, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy test: %w", err)
	}
	s, err := ParseSuite(path, data)
	if err != nil {
		return nil, err
	}
	pp := s.Policy
	if !filepath.IsAbs(pp) {
		pp = filepath.Join(filepath.Dir(path), pp)
	}
	p, err := LoadFile(pp)
	if err != nil {
		return nil, err
	}
	res := &SuiteResult{File: path, Policy: pp, Version: p.Version()}
	for i := range s.Tests {
		res.Results = append(res.Results, s.run(p, &s.Tests[i]))
	}
	return res, nil
}

func (s *Suite) run(p *Policy, tc *SuiteTest) TestResult {
	r := TestResult{Name: tc.Name}
	in, err := s.input(tc)
	if err != nil {
		r.Failure = fmt.Sprintf("test %q: %v", tc.Name, err)
		return r
	}
	d := p.Decide(in)
	r.Decision = d
	var problems []string
	e := tc.Expect
	if e.Action != d.Action || (e.Rule != "" && e.Rule != d.Rule) {
		want := string(e.Action)
		if e.Rule != "" {
			want += fmt.Sprintf(" by rule %q", e.Rule)
		}
		got := fmt.Sprintf("%s by rule %q", d.Action, d.Rule)
		if d.Reason != "" {
			got += " (" + d.Reason + ")"
		}
		if d.EvalError != "" {
			got += " [evaluation error: " + d.EvalError + "]"
		}
		problems = append(problems, "expected "+want+", got "+got)
	}
	if e.Mask != nil && *e.Mask != d.Mask {
		problems = append(problems, fmt.Sprintf("expected mask %q, got %q", *e.Mask, d.Mask))
	}
	if e.Log != "" && e.Log != d.Log {
		problems = append(problems, fmt.Sprintf("expected log %q, got %q", e.Log, d.Log))
	}
	if e.Record != "" && e.Record != d.Record {
		problems = append(problems, fmt.Sprintf("expected record %q, got %q", e.Record, d.Record))
	}
	if e.Approval != "" && e.Approval != d.ApprovalName {
		problems = append(problems, fmt.Sprintf("expected approval %q, got %q", e.Approval, d.ApprovalName))
	}
	if len(problems) == 0 {
		r.Passed = true
		return r
	}
	r.Failure = fmt.Sprintf("test %q: %s", tc.Name, strings.Join(problems, "; "))
	return r
}

func (s *Suite) input(tc *SuiteTest) (*Input, error) {
	if tc.Expect.Action == "" {
		return nil, errors.New("expect.action is required")
	}
	in := &Input{Request: tc.Request, Grants: tc.Grants}
	if tc.Principal != nil {
		p := *tc.Principal
		if p.Kind == "" {
			p.Kind = identity.KindUser
		}
		in.Principal = &p
	}
	switch {
	case tc.Route != nil:
		in.Route = *tc.Route
	case s.Route != nil:
		in.Route = *s.Route
	}
	switch {
	case tc.Now != nil:
		in.Now = *tc.Now
	case s.Now != nil:
		in.Now = *s.Now
	}
	if tc.Body != nil && in.Route.Profile == "openai" {
		raw, err := json.Marshal(normalizeYAML(tc.Body))
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		in.Body = BodyFacts(raw)
	}
	return in, nil
}

// normalizeYAML turns map[any]any (which YAML may produce) into
// map[string]any so the value marshals as JSON.
func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalizeYAML(e)
		}
		return m
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeYAML(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeYAML(e)
		}
		return x
	}
	return v
}

// WriteSuiteResult prints one line per case ("ok" or "FAIL" with the
// reason) and a summary line.
func WriteSuiteResult(w io.Writer, r *SuiteResult) {
	fmt.Fprintf(w, "%s (policy %s, %s)\n", r.File, r.Policy, r.Version)
	for _, t := range r.Results {
		if t.Passed {
			fmt.Fprintf(w, "  ok    %s\n", t.Name)
		} else {
			fmt.Fprintf(w, "  FAIL  %s\n", t.Failure)
		}
	}
	if n := r.Failed(); n > 0 {
		fmt.Fprintf(w, "FAIL: %d of %d tests failed\n", n, len(r.Results))
	} else {
		fmt.Fprintf(w, "PASS: %d tests\n", len(r.Results))
	}
}

// WriteExplain prints, for one input, each rule with whether it matched
// (or its error), and the decision.
func WriteExplain(w io.Writer, p *Policy, in *Input) {
	fmt.Fprintf(w, "policy %s (%s)\n", p.Name(), p.Version())
	for _, t := range p.Explain(in) {
		mark := "  "
		if t.Decisive {
			mark = "=>"
		}
		switch {
		case t.Err != "":
			fmt.Fprintf(w, "%s [%d] %-24s %-16s error: %s\n", mark, t.Index, t.Rule, t.Action, t.Err)
		default:
			fmt.Fprintf(w, "%s [%d] %-24s %-16s %s\n", mark, t.Index, t.Rule, t.Action, t.Value)
		}
		for _, c := range t.Conditions {
			res := c.Value
			if c.Err != "" {
				res = "error: " + c.Err
			}
			fmt.Fprintf(w, "       %-6s %s\n", res, c.Expr)
		}
		if len(t.Conditions) == 0 && t.When != "" {
			fmt.Fprintf(w, "       when: %s\n", strings.Join(strings.Fields(t.When), " "))
		}
	}
	d := p.Decide(in)
	fmt.Fprintf(w, "decision: %s by rule %q", d.Action, d.Rule)
	if d.Reason != "" {
		fmt.Fprintf(w, " (%s)", d.Reason)
	}
	if d.Mask != "" {
		fmt.Fprintf(w, ", mask %s", d.Mask)
	}
	if d.ApprovalName != "" {
		fmt.Fprintf(w, ", approval %s", d.ApprovalName)
	}
	fmt.Fprintf(w, ", log %s\n", d.Log)
}
