package policy

import (
	"reflect"
	"sync"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/wardenhq/warden/internal/identity"
)

// Input is everything a decision may look at. The gateway builds one per
// request; Decide does not retain it.
type Input struct {
	// Principal is the verified caller; nil is treated as a principal
	// with no attributes (which no sensible rule allows).
	Principal *identity.Principal
	// Request holds the HTTP facts.
	Request Request
	// Route is the matched route.
	Route Route
	// Body is the CEL "body" map: BodyFacts of the raw body for
	// openai-profile routes, nil otherwise (seen as an empty map).
	Body map[string]any
	// Grants are the caller's active just-in-time grants.
	Grants []Grant
	// Now is the decision time; zero means time.Now().
	Now time.Time
}

// Request holds the HTTP facts of a call.
type Request struct {
	// Method is the HTTP method, upper case.
	Method string `json:"method" yaml:"method"`
	// Path is the normalised request path (no query).
	Path string `json:"path" yaml:"path"`
	// Host is the request host without port.
	Host string `json:"host,omitempty" yaml:"host,omitempty"`
	// Query is the parsed query string.
	Query map[string][]string `json:"query,omitempty" yaml:"query,omitempty"`
	// Headers are selected headers, keys lower-cased.
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
}

// Route identifies the matched gateway route.
type Route struct {
	// Name is the route's configured name.
	Name string `json:"name" yaml:"name"`
	// Profile is the protocol profile, e.g. "openai" or "generic".
	Profile string `json:"profile" yaml:"profile"`
}

// Grant is an active just-in-time grant held by the caller.
type Grant struct {
	// ID identifies the grant (the approval that created it).
	ID string `json:"id" yaml:"id"`
	// Scope is what the grant was issued for; has_grant matches it.
	Scope string `json:"scope" yaml:"scope"`
	// Expires is when the grant lapses.
	Expires time.Time `json:"expires" yaml:"expires"`
}

// emptyPrincipal stands in for a nil Input.Principal.
var emptyPrincipal = &identity.Principal{}

// maxFields bounds the number of fields of any object type below.
const maxFields = 8

// object is the CEL value of principal, request, route and each grant.
// Field values are converted to CEL values on first access and cached, so
// fifty rules reading principal.groups convert it once per decision.
type object struct {
	def  *objectDef
	src  any // *identity.Principal, *Request, *Route or *Grant
	vals [maxFields]ref.Val
	maps [2]cachedMap // storage for map-valued fields (fieldDef.mapSlot)
}

func (o *object) reset(src any) {
	o.src = src
	o.vals = [maxFields]ref.Val{}
	for i := range o.maps {
		o.maps[i].reset(nil)
	}
}

// field returns field i, converting it on first use.
func (o *object) field(i int) ref.Val {
	if v := o.vals[i]; v != nil {
		return v
	}
	fd := &o.def.fields[i]
	var v ref.Val
	if fd.getMap != nil {
		m := &o.maps[fd.mapSlot]
		m.reset(fd.getMap(o.src))
		v = m
	} else {
		v = fd.get(o.src)
	}
	o.vals[i] = v
	return v
}

// ConvertToNative implements ref.Val; objects do not leave CEL.
func (o *object) ConvertToNative(reflect.Type) (any, error) {
	return nil, errUnsupported(o.def.typ.TypeName())
}

// ConvertToType implements ref.Val.
func (o *object) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return o.def.typ
	}
	return types.NewErr("type conversion error from '%s' to '%s'", o.def.typ.TypeName(), t.TypeName())
}

// Equal implements ref.Val: identity equality.
func (o *object) Equal(other ref.Val) ref.Val {
	oo, ok := other.(*object)
	return types.Bool(ok && o == oo)
}

// Type implements ref.Val.
func (o *object) Type() ref.Type { return o.def.typ }

// Value implements ref.Val; field qualifiers receive the object itself.
func (o *object) Value() any { return o }

// activation resolves the CEL variables from an Input. Instances are
// pooled so a decision allocates only for the values its rules touch.
type activation struct {
	in        *Input
	principal object
	request   object
	route     object
	body      ref.Val
	bodyMap   cachedMap
	grants    ref.Val
	now       ref.Val
	nowTime   time.Time
}

var activationPool = sync.Pool{New: func() any {
	a := &activation{}
	a.principal.def = principalDef
	a.request.def = requestDef
	a.route.def = routeDef
	return a
}}

func newActivation(in *Input) *activation {
	a := activationPool.Get().(*activation)
	a.in = in
	p := in.Principal
	if p == nil {
		p = emptyPrincipal
	}
	a.principal.reset(p)
	a.request.reset(&in.Request)
	a.route.reset(&in.Route)
	a.body, a.grants, a.now = nil, nil, nil
	a.nowTime = in.Now
	if a.nowTime.IsZero() {
		a.nowTime = time.Now()
	}
	return a
}

func (a *activation) release() {
	a.in = nil
	a.principal.reset(nil)
	a.request.reset(nil)
	a.route.reset(nil)
	a.bodyMap.reset(nil)
	a.body, a.grants, a.now = nil, nil, nil
	activationPool.Put(a)
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "principal":
		return &a.principal, true
	case "request":
		return &a.request, true
	case "route":
		return &a.route, true
	case "body":
		if a.body == nil {
			body := a.in.Body
			if body == nil {
				body = map[string]any{}
			}
			a.bodyMap.reset(types.NewStringInterfaceMap(types.DefaultTypeAdapter, body))
			a.body = &a.bodyMap
		}
		return a.body, true
	case "grants":
		if a.grants == nil {
			vals := make([]ref.Val, len(a.in.Grants))
			for i := range a.in.Grants {
				o := &object{def: grantDef}
				o.reset(&a.in.Grants[i])
				vals[i] = o
			}
			a.grants = types.NewRefValList(types.DefaultTypeAdapter, vals)
		}
		return a.grants, true
	case "now":
		if a.now == nil {
			a.now = types.Timestamp{Time: a.nowTime}
		}
		return a.now, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }
