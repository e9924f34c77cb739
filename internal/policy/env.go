package policy

import (
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/decls"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/wardenhq/warden/internal/identity"
)

// CEL object types of the policy variables.
var (
	principalType = types.NewObjectType("warden.Principal")
	requestType   = types.NewObjectType("warden.Request")
	routeType     = types.NewObjectType("warden.Route")
	grantType     = types.NewObjectType("warden.Grant")
)

// fieldDef describes one field of an object type: its CEL type, how to
// read it from the Go value and whether it is set (for has()).
type fieldDef struct {
	name  string
	typ   *types.Type
	get   func(src any) ref.Val
	isSet func(src any) bool
	// getMap, when set instead of get, returns a map that the object
	// wraps in its cachedMap number mapSlot.
	getMap  func(src any) traits.Mapper
	mapSlot int
}

// objectDef is a CEL object type backed by a Go struct.
type objectDef struct {
	typ    *types.Type
	fields []fieldDef
	index  map[string]int
}

func newObjectDef(t *types.Type, fields ...fieldDef) *objectDef {
	if len(fields) > maxFields {
		panic("policy: too many fields for " + t.TypeName()) // programming error, caught by tests
	}
	d := &objectDef{typ: t, fields: fields, index: map[string]int{}}
	for i, f := range fields {
		d.index[f.name] = i
	}
	return d
}

func strField(name string, get func(src any) string) fieldDef {
	return fieldDef{
		name:  name,
		typ:   types.StringType,
		get:   func(src any) ref.Val { return types.String(get(src)) },
		isSet: func(src any) bool { return get(src) != "" },
	}
}

func pr(src any) *identity.Principal { return src.(*identity.Principal) }
func rq(src any) *Request            { return src.(*Request) }
func rt(src any) *Route              { return src.(*Route) }
func gr(src any) *Grant              { return src.(*Grant) }

var (
	stringList     = types.NewListType(types.StringType)
	stringMap      = types.NewMapType(types.StringType, types.StringType)
	stringListMap  = types.NewMapType(types.StringType, stringList)
	stringDynMap   = types.NewMapType(types.StringType, types.DynType)
	emptyStringMap = map[string]any{}
)

var principalDef = newObjectDef(principalType,
	strField("issuer", func(s any) string { return pr(s).Issuer }),
	strField("subject", func(s any) string { return pr(s).Subject }),
	strField("kind", func(s any) string { return string(pr(s).Kind) }),
	strField("name", func(s any) string { return pr(s).Name }),
	strField("email", func(s any) string { return pr(s).Email }),
	strField("auth_method", func(s any) string { return pr(s).AuthMethod }),
	fieldDef{
		name:  "groups",
		typ:   stringList,
		get:   func(s any) ref.Val { return types.NewStringList(types.DefaultTypeAdapter, pr(s).Groups) },
		isSet: func(s any) bool { return len(pr(s).Groups) > 0 },
	},
	fieldDef{
		name: "claims",
		typ:  stringDynMap,
		getMap: func(s any) traits.Mapper {
			c := pr(s).Claims
			if c == nil {
				c = emptyStringMap
			}
			return types.NewStringInterfaceMap(types.DefaultTypeAdapter, c)
		},
		isSet: func(s any) bool { return len(pr(s).Claims) > 0 },
	},
)

var requestDef = newObjectDef(requestType,
	strField("method", func(s any) string { return rq(s).Method }),
	strField("path", func(s any) string { return rq(s).Path }),
	strField("host", func(s any) string { return rq(s).Host }),
	fieldDef{
		name: "query",
		typ:  stringListMap,
		getMap: func(s any) traits.Mapper {
			return toMapper(types.DefaultTypeAdapter.NativeToValue(nonNilQuery(rq(s).Query)))
		},
		isSet: func(s any) bool { return len(rq(s).Query) > 0 },
	},
	fieldDef{
		name: "headers",
		typ:  stringMap,
		getMap: func(s any) traits.Mapper {
			return toMapper(types.DefaultTypeAdapter.NativeToValue(nonNilHeaders(rq(s).Headers)))
		},
		mapSlot: 1,
		isSet:   func(s any) bool { return len(rq(s).Headers) > 0 },
	},
)

var routeDef = newObjectDef(routeType,
	strField("name", func(s any) string { return rt(s).Name }),
	strField("profile", func(s any) string { return rt(s).Profile }),
)

var grantDef = newObjectDef(grantType,
	strField("id", func(s any) string { return gr(s).ID }),
	strField("scope", func(s any) string { return gr(s).Scope }),
	fieldDef{
		name:  "expires",
		typ:   types.TimestampType,
		get:   func(s any) ref.Val { return types.Timestamp{Time: gr(s).Expires} },
		isSet: func(s any) bool { return !gr(s).Expires.IsZero() },
	},
)

var objectDefs = map[string]*objectDef{
	principalType.TypeName(): principalDef,
	requestType.TypeName():   requestDef,
	routeType.TypeName():     routeDef,
	grantType.TypeName():     grantDef,
}

func nonNilQuery(q map[string][]string) map[string][]string {
	if q == nil {
		return map[string][]string{}
	}
	return q
}

func nonNilHeaders(h map[string]string) map[string]string {
	if h == nil {
		return map[string]string{}
	}
	return h
}

// toMapper returns v as a map, or an empty map if conversion failed
// (which the types above cannot cause).
func toMapper(v ref.Val) traits.Mapper {
	if m, ok := v.(traits.Mapper); ok {
		return m
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, emptyStringMap)
}

func errUnsupported(typeName string) error {
	return fmt.Errorf("policy: %s cannot be converted to a Go value", typeName)
}

// provider adds the policy object types to the base CEL type provider.
type provider struct {
	types.Provider
	adapter types.Adapter
}

// FindStructType implements types.Provider.
func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if d, ok := objectDefs[name]; ok {
		return types.NewTypeTypeWithParam(d.typ), true
	}
	return p.Provider.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	if d, ok := objectDefs[name]; ok {
		names := make([]string, len(d.fields))
		for i, f := range d.fields {
			names[i] = f.name
		}
		return names, true
	}
	return p.Provider.FindStructFieldNames(name)
}

// FindStructFieldType implements types.Provider. GetFrom and IsSet
// receive the *object (the interpreter unwraps ref.Val via Value()).
func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	d, ok := objectDefs[name]
	if !ok {
		return p.Provider.FindStructFieldType(name, field)
	}
	i, ok := d.index[field]
	if !ok {
		return nil, false
	}
	fd := d.fields[i]
	return &types.FieldType{
		Type: fd.typ,
		IsSet: func(target any) bool {
			o, ok := target.(*object)
			return ok && o.def == d && fd.isSet(o.src)
		},
		GetFrom: func(target any) (any, error) {
			o, ok := target.(*object)
			if !ok || o.def != d {
				return nil, fmt.Errorf("policy: %s.%s read from %T", name, field, target)
			}
			return o.field(i), nil
		},
	}, true
}

// NewValue implements types.Provider: policy objects cannot be built in
// expressions.
func (p *provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := objectDefs[name]; ok {
		return types.NewErr("policy: %s cannot be constructed", name)
	}
	return p.Provider.NewValue(name, fields)
}

// NativeToValue implements types.Adapter, passing policy objects through.
func (p *provider) NativeToValue(v any) ref.Val {
	if o, ok := v.(*object); ok {
		return o
	}
	return p.adapter.NativeToValue(v)
}

// withTypes installs the provider and adapter into an environment.
func withTypes() cel.EnvOption {
	return func(env *cel.Env) (*cel.Env, error) {
		p := &provider{Provider: env.CELTypeProvider(), adapter: env.CELTypeAdapter()}
		env, err := cel.CustomTypeAdapter(p)(env)
		if err != nil {
			return nil, err
		}
		return cel.CustomTypeProvider(p)(env)
	}
}

// principalOf returns the principal behind a CEL value.
func principalOf(v ref.Val) (*identity.Principal, bool) {
	o, ok := v.(*object)
	if !ok || o.def != principalDef {
		return nil, false
	}
	return pr(o.src), true
}

func inGroup(lhs, rhs ref.Val) ref.Val {
	p, ok := principalOf(lhs)
	g, ok2 := rhs.(types.String)
	if !ok || !ok2 {
		return types.NewErr("in_group: want (principal, string)")
	}
	return types.Bool(p.InGroup(string(g)))
}

func anyGroup(lhs, rhs ref.Val) ref.Val {
	p, ok := principalOf(lhs)
	l, ok2 := rhs.(traits.Lister)
	if !ok || !ok2 {
		return types.NewErr("any_group: want (principal, list(string))")
	}
	n, _ := l.Size().(types.Int)
	for i := types.Int(0); i < n; i++ {
		if g, ok := l.Get(i).(types.String); ok && p.InGroup(string(g)) {
			return types.True
		}
	}
	return types.False
}

func globFn(lhs, rhs ref.Val) ref.Val {
	s, ok := lhs.(types.String)
	pat, ok2 := rhs.(types.String)
	if !ok || !ok2 {
		return types.NewErr("glob: want (string, string)")
	}
	return types.Bool(Glob(string(pat), string(s)))
}

// hasGrantFn implements the expansion of has_grant(scope):
// _has_grant(grants, now, scope).
func hasGrantFn(args ...ref.Val) ref.Val {
	if len(args) != 3 {
		return types.NewErr("has_grant: want one argument")
	}
	l, ok := args[0].(traits.Lister)
	now, ok2 := args[1].(types.Timestamp)
	scope, ok3 := args[2].(types.String)
	if !ok || !ok2 || !ok3 {
		return types.NewErr("has_grant: want a string scope")
	}
	n, _ := l.Size().(types.Int)
	for i := types.Int(0); i < n; i++ {
		o, ok := l.Get(i).(*object)
		if !ok || o.def != grantDef {
			continue
		}
		g := gr(o.src)
		if g.Scope == string(scope) && g.Expires.After(now.Time) {
			return types.True
		}
	}
	return types.False
}

const hasGrantImpl = "_has_grant"

// hasGrantMacro rewrites has_grant(s) to _has_grant(grants, now, s), so
// the function sees the caller's grants and the decision time.
func hasGrantMacro(eh cel.MacroExprFactory, target ast.Expr, args []ast.Expr) (ast.Expr, *cel.Error) {
	return eh.NewCall(hasGrantImpl, eh.NewIdent("grants"), eh.NewIdent("now"), args[0]), nil
}

// The helper functions check their arguments themselves, so the run-time
// type guards (which iterate list arguments, allocating) are disabled;
// the checker has already typed every call at load.

// newEnv builds the CEL environment every policy is compiled in.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		withTypes(),
		cel.Variable("principal", principalType),
		cel.Variable("request", requestType),
		cel.Variable("route", routeType),
		cel.Variable("body", stringDynMap),
		cel.Variable("grants", types.NewListType(grantType)),
		cel.Variable("now", types.TimestampType),
		cel.Function("in_group",
			decls.DisableTypeGuards(true),
			cel.MemberOverload("principal_in_group", []*cel.Type{principalType, cel.StringType}, cel.BoolType, cel.BinaryBinding(inGroup)),
			cel.Overload("in_group_principal_string", []*cel.Type{principalType, cel.StringType}, cel.BoolType, cel.BinaryBinding(inGroup)),
		),
		cel.Function("any_group",
			decls.DisableTypeGuards(true),
			cel.MemberOverload("principal_any_group", []*cel.Type{principalType, stringList}, cel.BoolType, cel.BinaryBinding(anyGroup)),
			cel.Overload("any_group_principal_list", []*cel.Type{principalType, stringList}, cel.BoolType, cel.BinaryBinding(anyGroup)),
		),
		cel.Function("glob",
			decls.DisableTypeGuards(true),
			cel.MemberOverload("string_glob", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType, cel.BinaryBinding(globFn)),
			cel.Overload("glob_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType, cel.BinaryBinding(globFn)),
		),
		cel.Function(hasGrantImpl,
			decls.DisableTypeGuards(true),
			cel.Overload("has_grant_impl", []*cel.Type{types.NewListType(grantType), cel.TimestampType, cel.StringType}, cel.BoolType, cel.FunctionBinding(hasGrantFn)),
		),
		cel.Macros(cel.GlobalMacro("has_grant", 1, hasGrantMacro)),
	)
}
