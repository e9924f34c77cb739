package policy

import (
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Trace is the evaluation of one rule for Explain.
type Trace struct {
	// Index is the rule's position (0-based).
	Index int `json:"index"`
	// Rule is the rule's name.
	Rule string `json:"rule"`
	// Action is the rule's action.
	Action Action `json:"action"`
	// When is the rule's expression.
	When string `json:"when"`
	// Matched is true when the expression evaluated to true.
	Matched bool `json:"matched"`
	// Value is the expression's value ("true", "false") when it evaluated.
	Value string `json:"value,omitempty"`
	// Err is the evaluation error, if any.
	Err string `json:"error,omitempty"`
	// Decisive marks the rule whose result Decide returns.
	Decisive bool `json:"decisive"`
	// Conditions break a top-level "a && b && ..." into its parts, each
	// evaluated on its own, to show why a rule did or did not match.
	Conditions []Condition `json:"conditions,omitempty"`
}

// Condition is one conjunct of a rule and its value.
type Condition struct {
	// Expr is the conjunct's source form.
	Expr string `json:"expr"`
	// Value is its value when it evaluated.
	Value string `json:"value,omitempty"`
	// Err is its evaluation error, if any.
	Err string `json:"error,omitempty"`
}

// Explain evaluates every rule (not just up to the first match) and
// reports each result, with the value of each top-level && condition;
// the rule Decide would pick is marked Decisive. It is meant for tools,
// not the request path: it compiles the conditions on each call.
func (p *Policy) Explain(in *Input) []Trace {
	a := newActivation(in)
	defer a.release()
	if err := checkBounds(in); err != nil {
		return []Trace{{Index: -1, Rule: DefaultRuleName, Action: ActionDeny, Err: err.Error(), Decisive: true}}
	}
	env, err := sharedEnv()
	if err != nil {
		return nil
	}
	out := make([]Trace, 0, len(p.rules))
	decided := false
	for i := range p.rules {
		c := &p.rules[i]
		t := Trace{Index: c.index, Rule: c.spec.Name, Action: c.spec.Action, When: c.spec.When}
		v, _, err := c.prg.Eval(a)
		t.Value, t.Err = valueString(v, err)
		t.Matched = err == nil && v == types.True
		if !decided && (t.Matched || err != nil) {
			t.Decisive, decided = true, true
		}
		t.Conditions = conditions(env, c.ast, a)
		out = append(out, t)
	}
	return out
}

func valueString(v ref.Val, err error) (string, string) {
	if err != nil {
		return "", err.Error()
	}
	if v == nil {
		return "", ""
	}
	return fmt.Sprint(v.Value()), ""
}

// conditions splits a checked expression at its top-level && operators
// and evaluates each part. A rule with a single condition gets none.
func conditions(env *cel.Env, checked *cel.Ast, a *activation) []Condition {
	if checked == nil {
		return nil
	}
	native := checked.NativeRep()
	var parts []ast.Expr
	var flatten func(e ast.Expr)
	flatten = func(e ast.Expr) {
		if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
			for _, arg := range e.AsCall().Args() {
				flatten(arg)
			}
			return
		}
		parts = append(parts, e)
	}
	flatten(native.Expr())
	if len(parts) < 2 {
		return nil
	}
	out := make([]Condition, 0, len(parts))
	for _, e := range parts {
		src, err := cel.ExprToString(e, native.SourceInfo())
		if err != nil {
			continue
		}
		// Show the has_grant macro as written, not its expansion.
		cond := Condition{Expr: strings.ReplaceAll(src, hasGrantImpl+"(grants, now, ", "has_grant(")}
		if prg, err := conditionProgram(env, src); err != nil {
			cond.Err = err.Error()
		} else {
			v, _, err := prg.Eval(a)
			cond.Value, cond.Err = valueString(v, err)
		}
		out = append(out, cond)
	}
	return out
}

// conditionProgram compiles a condition unparsed from a checked rule.
func conditionProgram(env *cel.Env, src string) (cel.Program, error) {
	a, iss := env.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	return env.Program(a)
}
