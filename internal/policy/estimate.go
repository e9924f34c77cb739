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
	path := n.Path()
	if len(path) == 0 {
		return nil
	}
	str := uint64(estMaxShortString)
	if path[0] == "request" || (path[0] == "principal" && len(path) > 1 && path[1] == "claims") {
		str = estMaxLongString
	}
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		return &cost.SizeEstimate{Min: 0, Max: str}
	case types.ListKind, types.MapKind:
		return &cost.SizeEstimate{Min: 0, Max: estMaxListSize}
	case types.DynKind:
		// A claim or body value: a string, a number or a list; the
		// estimate serves as both length and element count.
		return &cost.SizeEstimate{Min: 0, Max: max(str, estMaxListSize)}
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
		return &cost.CallEstimate{CostEstimate: cost.CostEstimate{Min: 1, Max: estMaxLongString / 16}}
	}
	return nil
}

func asErr(err error, target any) bool { return errors.As(err, target) }
