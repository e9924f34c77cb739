package policy

import (
	"fmt"
)

// checkBounds enforces the input size bounds the load-time cost estimate
// assumes (estMaxListSize elements per list or map, estMaxStringSize
// bytes per string, nesting bounded). Within them, every rule's cost is
// at most DefaultCostLimit, so no run-time cost tracking is needed;
// outside them the request is denied (fail closed).
func checkBounds(in *Input) error {
	p := in.Principal
	if p == nil {
		p = emptyPrincipal
	}
	if err := checkStrings("principal", p.Issuer, p.Subject, string(p.Kind), p.Name, p.Email, p.AuthMethod); err != nil {
		return err
	}
	if err := checkStringList("principal.groups", p.Groups); err != nil {
		return err
	}
	if err := checkValue("principal.claims", p.Claims, 0); err != nil {
		return err
	}
	r := &in.Request
	if err := checkStrings("request", r.Method, r.Path, r.Host, in.Route.Name, in.Route.Profile); err != nil {
		return err
	}
	if len(r.Query) > estMaxListSize {
		return fmt.Errorf("request.query: %d keys exceed %d", len(r.Query), estMaxListSize)
	}
	for k, vs := range r.Query {
		if err := checkStrings("request.query", k); err != nil {
			return err
		}
		if err := checkStringList("request.query", vs); err != nil {
			return err
		}
	}
	if len(r.Headers) > estMaxListSize {
		return fmt.Errorf("request.headers: %d keys exceed %d", len(r.Headers), estMaxListSize)
	}
	for k, v := range r.Headers {
		if err := checkStrings("request.headers", k, v); err != nil {
			return err
		}
	}
	if err := checkValue("body", in.Body, 0); err != nil {
		return err
	}
	if len(in.Grants) > estMaxListSize {
		return fmt.Errorf("grants: %d exceed %d", len(in.Grants), estMaxListSize)
	}
	for _, g := range in.Grants {
		if err := checkStrings("grants", g.ID, g.Scope); err != nil {
			return err
		}
	}
	return nil
}

func checkStrings(what string, ss ...string) error {
	for _, s := range ss {
		if len(s) > estMaxStringSize {
			return fmt.Errorf("%s: a string of %d bytes exceeds %d", what, len(s), estMaxStringSize)
		}
	}
	return nil
}

func checkStringList(what string, ss []string) error {
	if len(ss) > estMaxListSize {
		return fmt.Errorf("%s: %d elements exceed %d", what, len(ss), estMaxListSize)
	}
	return checkStrings(what, ss...)
}

// maxDepth bounds nesting inside claims and body values.
const maxDepth = 4

// checkValue bounds a JSON-like value (claims, body facts).
func checkValue(what string, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: nested deeper than %d", what, maxDepth)
	}
	switch x := v.(type) {
	case string:
		return checkStrings(what, x)
	case []string:
		return checkStringList(what, x)
	case []any:
		if len(x) > estMaxListSize {
			return fmt.Errorf("%s: %d elements exceed %d", what, len(x), estMaxListSize)
		}
		for _, e := range x {
			if err := checkValue(what, e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		if len(x) > estMaxListSize {
			return fmt.Errorf("%s: %d keys exceed %d", what, len(x), estMaxListSize)
		}
		for k, e := range x {
			if err := checkStrings(what, k); err != nil {
				return err
			}
			if err := checkValue(what, e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
