package export

import (
	"encoding/json"
	"fmt"

	"cel.dev/cel-go/cel"

	"github.com/wardenhq/warden/internal/audit"
)

// filterCostLimit bounds the run-time cost of one filter evaluation.
const filterCostLimit = 100_000

// Filter selects the entries a sink receives: a CEL expression over
// `entry`, the entry as its canonical JSON object (keys as in the log:
// kind, principal.sub, principal.groups, route, model, decision.action,
// outcome, status, details, …) plus entry.seq. Checkpoints always pass.
//
// Example: entry.kind.startsWith("request.") && has(entry.decision) &&
// entry.decision.action == "deny"
//
// An expression that fails on an entry (a missing key without has(), a
// type error, the cost limit) lets the entry through: a filter mistake
// must not silently drop evidence. Such failures are counted.
type Filter struct {
	src string
	prg cel.Program
}

// CompileFilter compiles a filter expression; it must be boolean.
func CompileFilter(expr string) (*Filter, error) {
	env, err := cel.NewEnv(cel.Variable("entry", cel.MapType(cel.StringType, cel.DynType)))
	if err != nil {
		return nil, fmt.Errorf("export: filter: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("export: filter %q: %w", expr, iss.Err())
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("export: filter %q: must be a boolean expression, not %s (compare a field, e.g. entry.x == true)", expr, t)
	}
	prg, err := env.Program(ast, cel.CostLimit(filterCostLimit))
	if err != nil {
		return nil, fmt.Errorf("export: filter %q: %w", expr, err)
	}
	return &Filter{src: expr, prg: prg}, nil
}

// String returns the expression.
func (f *Filter) String() string { return f.src }

// Match reports whether the entry (with canonical bytes data) passes. A
// non-nil error means the expression failed; the entry passes then.
func (f *Filter) Match(e *audit.Entry, data []byte) (bool, error) {
	if data == nil {
		var err error
		if data, err = audit.Marshal(e); err != nil {
			return true, err
		}
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return true, fmt.Errorf("export: filter: decode entry %d: %w", e.Seq, err)
	}
	m["seq"] = e.Seq
	out, _, err := f.prg.Eval(map[string]any{"entry": m})
	if err != nil {
		return true, fmt.Errorf("export: filter on entry %d: %w", e.Seq, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return true, fmt.Errorf("export: filter on entry %d: result is %T, not bool", e.Seq, out.Value())
	}
	return b, nil
}
