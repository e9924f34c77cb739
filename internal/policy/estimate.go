package policy

import (
	"errors"

	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
)

// sizeEstimator gives the load-time cost estimate upper bounds for the
// sizes of inputs, without which every comprehension or string function
// would be estimated as unbounded.
type sizeEstimator struct{}

// EstimateSize implements cost.Estimator.
func (sizeEstimator) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if n.Path() == nil {
		return nil
	}
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		return &cost.SizeEstimate{Min: 0, Max: estMaxStringSize}
	case types.ListKind, types.MapKind:
		return &cost.SizeEstimate{Min: 0, Max: estMaxListSize}
	case types.DynKind:
		// body values: strings, numbers or (for tools) short lists.
		return &cost.SizeEstimate{Min: 0, Max: estMaxStringSize}
	}
	return nil
}

// EstimateCallCost implements cost.Estimator; the helpers cost about
// one unit per group or grant visited.
func (sizeEstimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	switch function {
	case "in_group", "any_group", hasGrantImpl:
		return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: estMaxListSize}}
	case "glob":
		return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: estMaxStringSize / 16}}
	}
	return nil
}

func asErr(err error, target any) bool { return errors.As(err, target) }
