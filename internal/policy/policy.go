package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/wardenhq/warden/internal/safeyaml"
)

// DefaultCostLimit bounds the worst-case cost of one rule expression, as
// estimated at load over the size bounds below (which Decide enforces on
// every input, so run-time cost tracking is unnecessary). The unit is
// CEL's abstract cost (roughly one per operation or element visited).
const DefaultCostLimit = 100_000

// Size bounds assumed by the load-time cost estimate and enforced on
// every input by checkBounds (beyond them the request is denied).
const (
	// estMaxListSize bounds every list and map.
	estMaxListSize = 256
	// estMaxLongString bounds strings the client sends in the request
	// line and headers, and claim values.
	estMaxLongString = 8192
	// estMaxShortString bounds identity strings (subject, groups, …),
	// route and grant fields and body facts.
	estMaxShortString = 1024
)

// Policy is a loaded, compiled policy. It is immutable and safe for
// concurrent use.
type Policy struct {
	name    string
	file    File
	rules   []compiled
	version string
	pos     *positions // to locate problems found by callers (RuleError)
}

type compiled struct {
	spec     *Rule
	index    int
	ast      *cel.Ast
	prg      cel.Program
	approval *ApprovalSetting
}

// Decision is the outcome of evaluating a policy for one request.
type Decision struct {
	// Action is allow, deny or require_approval.
	Action Action
	// Rule is the name of the deciding rule, or DefaultRuleName.
	Rule string
	// Reason is the human-readable reason (set on deny and
	// require_approval). It reveals no internals.
	Reason string
	// Mask is the masking profile to apply ("" for none: a deny, or a
	// rule with mask: none).
	Mask string
	// Log is the request logging mode.
	Log LogMode
	// Record is the deciding rule's recording level ("" for the config
	// default).
	Record RecordLevel
	// RecordRaw records the request body as forwarded (record_request:
	// raw) instead of redacted.
	RecordRaw bool
	// Approval is the approval setting for require_approval, else nil.
	// It points into the immutable policy; do not modify it.
	Approval *ApprovalSetting
	// ApprovalName is the key of Approval in the policy's approvals.
	ApprovalName string
	// Version is the version of the policy that decided.
	Version string
	// EvalError is set when the deciding rule failed to evaluate and the
	// request was denied for that reason (fail closed). It names the
	// rule's problem, not request data; log it, do not show it to callers.
	EvalError string
}

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
)

func sharedEnv() (*cel.Env, error) {
	envOnce.Do(func() { envVal, envErr = newEnv() })
	return envVal, envErr
}

// LoadFile reads and loads the policy at path.
func LoadFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Load(path, data)
}

// Load parses, validates and compiles a policy. name is used in error
// messages (usually the file path). Any problem fails the whole load;
// the error is a *LoadError or several joined.
func Load(name string, data []byte) (*Policy, error) {
	var f File
	if err := safeyaml.UnmarshalStrict(data, &f); err != nil {
		return nil, yamlError(name, err)
	}
	f.setDefaults()
	pos := newPositions(data)

	var errs []error
	for _, pr := range f.validate() {
		le := &LoadError{File: name, RuleIndex: pr.rule, Field: pr.field, Msg: pr.msg}
		if pr.rule >= 0 {
			le.Rule = f.Rules[pr.rule].Name
		}
		le.Line, le.Column = pos.at(pr.path)
		errs = append(errs, le)
	}

	env, err := sharedEnv()
	if err != nil {
		return nil, fmt.Errorf("policy: cel environment: %w", err)
	}
	p := &Policy{name: name, file: f, pos: pos}
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.When == "" {
			continue // reported by validate
		}
		checked, prg, err := compileRule(env, r.When)
		if err != nil {
			errs = append(errs, ruleError(name, pos, i, r.Name, err)...)
			continue
		}
		c := compiled{spec: r, index: i, ast: checked, prg: prg}
		if r.Action == ActionRequireApproval {
			c.approval = f.Approvals[r.Approval]
		}
		p.rules = append(p.rules, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	v, err := versionOf(&f)
	if err != nil {
		return nil, fmt.Errorf("policy: %s: version: %w", name, err)
	}
	p.version = v
	return p, nil
}

// exprError is a CEL problem at a position inside an expression.
type exprError struct {
	line, col int // 1-based line, 0-based column; line 0: no position
	msg       string
}

type exprErrors []exprError

func (e exprErrors) Error() string {
	if len(e) == 0 {
		return "invalid expression"
	}
	return e[0].msg
}

func issuesErr(iss *cel.Issues) error {
	var out exprErrors
	for _, e := range iss.Errors() {
		out = append(out, exprError{line: e.Location.Line(), col: e.Location.Column(), msg: e.Message})
	}
	return out
}

// compileRule parses, type-checks and cost-checks one expression.
func compileRule(env *cel.Env, expr string) (*cel.Ast, cel.Program, error) {
	parsed, iss := env.Parse(expr)
	if iss != nil && iss.Err() != nil {
		return nil, nil, issuesErr(iss)
	}
	checked, iss := env.Check(parsed)
	if iss != nil && iss.Err() != nil {
		return nil, nil, issuesErr(iss)
	}
	if !checked.OutputType().IsExactType(types.BoolType) {
		return nil, nil, exprErrors{{line: 1, col: 0, msg: fmt.Sprintf("must be of type bool, is %s", checked.OutputType())}}
	}
	est, err := env.EstimateCost(checked, sizeEstimator{})
	if err != nil {
		return nil, nil, exprErrors{{msg: "cost estimate: " + err.Error()}}
	}
	if est.Max > DefaultCostLimit {
		return nil, nil, exprErrors{{line: 1, col: 0, msg: fmt.Sprintf("estimated cost up to %d exceeds the limit %d (bound list sizes or avoid nested comprehensions)", est.Max, DefaultCostLimit)}}
	}
	// No run-time cost tracking: it costs ~4 allocations per rule and
	// evaluation. The estimate above is an upper bound as long as the
	// input respects the size bounds, which Decide enforces (checkBounds).
	prg, err := env.Program(checked, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, nil, exprErrors{{msg: err.Error()}}
	}
	return checked, prg, nil
}

func ruleError(name string, pos *positions, i int, rule string, err error) []error {
	path := fmt.Sprintf("$.rules[%d].when", i)
	var ee exprErrors
	if !errors.As(err, &ee) || len(ee) == 0 {
		le := &LoadError{File: name, RuleIndex: i, Rule: rule, Field: "when", Msg: err.Error()}
		le.Line, le.Column = pos.at(path)
		return []error{le}
	}
	var out []error
	for _, e := range ee {
		le := &LoadError{File: name, RuleIndex: i, Rule: rule, Field: "when", Msg: e.msg}
		if e.line > 0 {
			le.ExprLine, le.ExprColumn = e.line, e.col+1
			le.Line, le.Column = pos.exprAt(path, e.line, e.col)
		} else {
			le.Line, le.Column = pos.at(path)
		}
		out = append(out, le)
	}
	return out
}

// versionOf hashes the canonical JSON encoding of the defaulted file:
// struct fields in declaration order, map keys sorted, durations as
// nanoseconds. Formatting, comments and key order in the YAML do not
// matter; any change of content does.
func versionOf(f *File) (string, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Version returns "sha256:<hex>" of the canonical policy.
func (p *Policy) Version() string { return p.version }

// Canonical returns the canonical form of the policy: the JSON whose
// SHA-256 is Version. It is what the audit log keeps of a policy
// (config.changed details.policy_source, decision 021): comments and
// formatting of the YAML file are not part of it, defaults are.
func (p *Policy) Canonical() []byte {
	b, err := json.Marshal(&p.file)
	if err != nil {
		panic("policy: canonical form: " + err.Error()) // marshalled once already by versionOf
	}
	return b
}

// Name returns the name the policy was loaded under.
func (p *Policy) Name() string { return p.name }

// Rules returns a copy of the rules in evaluation order.
func (p *Policy) Rules() []Rule { return append([]Rule(nil), p.file.Rules...) }

// RuleError reports a problem a caller found with rule i (0-based) at the
// line of the rule's key field ("mask", "approval" …), or of the rule
// when the key is absent, e.g. a masking profile the gateway does not
// define.
func (p *Policy) RuleError(i int, field, msg string) *LoadError {
	le := &LoadError{File: p.name, RuleIndex: i, Field: field, Msg: msg}
	if i >= 0 && i < len(p.file.Rules) {
		le.Rule = p.file.Rules[i].Name
	}
	if p.pos != nil {
		le.Line, le.Column = p.pos.at(fmt.Sprintf("$.rules[%d].%s", i, field))
	}
	return le
}

// Approvals returns the named approval settings. The settings are shared
// with the policy; do not modify them.
func (p *Policy) Approvals() map[string]*ApprovalSetting {
	out := make(map[string]*ApprovalSetting, len(p.file.Approvals))
	for k, v := range p.file.Approvals {
		out[k] = v
	}
	return out
}

// MaskProfiles returns the distinct masking profile names the rules use,
// so the caller can check that each exists.
func (p *Policy) MaskProfiles() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range p.file.Rules {
		if r.Mask != "" && r.Mask != MaskNone && !seen[r.Mask] {
			seen[r.Mask] = true
			out = append(out, r.Mask)
		}
	}
	return out
}

// Warnings returns what is allowed but unsafe in the policy, one line
// per finding: today every rule that forwards responses unmasked
// (mask: none). The engine logs them at every load.
func (p *Policy) Warnings() []string {
	var out []string
	for _, r := range p.file.Rules {
		if r.Mask == MaskNone && r.Action != ActionDeny {
			out = append(out, fmt.Sprintf("rule %q has mask: none: its responses reach the caller unmasked", r.Name))
		}
	}
	return out
}

// Decide evaluates the rules in order and returns the first match's
// decision, or a default deny. A rule that fails to evaluate denies the
// request (fail closed) with EvalError set.
func (p *Policy) Decide(in *Input) Decision {
	a := newActivation(in)
	defer a.release()
	if err := checkBounds(in); err != nil {
		return Decision{Action: ActionDeny, Rule: DefaultRuleName, Reason: "the request exceeds policy input limits", Log: LogRedacted, Version: p.version, EvalError: err.Error()}
	}
	frame, err := interpreter.NewExecutionFrame(a)
	if err != nil {
		return Decision{Action: ActionDeny, Rule: DefaultRuleName, Reason: DefaultDenyReason, Log: LogRedacted, Version: p.version, EvalError: err.Error()}
	}
	defer frame.Close()
	for i := range p.rules {
		c := &p.rules[i]
		out, _, err := c.prg.Eval(frame)
		if err != nil {
			return Decision{
				Action:    ActionDeny,
				Rule:      c.spec.Name,
				Reason:    "the request could not be evaluated by policy rule " + c.spec.Name,
				Log:       LogRedacted,
				Version:   p.version,
				EvalError: err.Error(),
			}
		}
		if out == types.True {
			return p.decision(c)
		}
	}
	return Decision{Action: ActionDeny, Rule: DefaultRuleName, Reason: DefaultDenyReason, Log: LogRedacted, Version: p.version}
}

func (p *Policy) decision(c *compiled) Decision {
	d := Decision{
		Action:    c.spec.Action,
		Rule:      c.spec.Name,
		Reason:    c.spec.Reason,
		Mask:      c.spec.Mask,
		Log:       c.spec.Log,
		Record:    c.spec.Record,
		RecordRaw: c.spec.RecordRequest == RecordRequestRaw,
		Version:   p.version,
	}
	if d.Mask == MaskNone {
		d.Mask = ""
	}
	if c.approval != nil {
		d.Approval = c.approval
		d.ApprovalName = c.spec.Approval
	}
	return d
}
