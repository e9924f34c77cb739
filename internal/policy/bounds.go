package policy

import (
	"fmt"
)

// checkBounds enforces the input size bounds the load-time cost estimate
// assumes (estMaxListSize elements per list or map, estMaxLongString or
// estMaxShortString bytes per string, nesting at most maxDepth). Within
// them every rule's cost is at most DefaultCostLimit, so no run-time cost
// tracking is needed; outside them the request is denied (fail closed).
func checkBounds(in *Input) error {
	p := in.Principal
	if p == nil {
		p = emptyPrincipal
	}
	if err := checkStrings("principal", estMaxShortString, p.Issuer, p.Subject, string(p.Kind), p.Name, p.Email, p.AuthMethod); err != nil {
		return err
	}
	if err := checkStringList("principal.groups", estMaxShortString, p.Groups); err != nil {
		return err
	}
	if err := checkValue("principal.claims", estMaxLongString, p.Claims, 0); err != nil {
		return err
	}
	if err := checkStrings("route", estMaxShortString, in.Route.Name, in.Route.Profile); err != nil {
		return err
	}
	r := &in.Request
	if err := checkStrings("request", estMaxLongString, r.Method, r.Path, r.Host); err != nil {
		return err
	}
	if len(r.Query) > estMaxListSize {
		return fmt.Errorf("request.query: %d keys exceed %d", len(r.Query), estMaxListSize)
	}
	for k, vs := range r.Query {
		if err := checkStrings("request.query", estMaxLongString, k); err != nil {
			return err
		}
		if err := checkStringList("request.query", estMaxLongString, vs); err != nil {
			return err
		}
	}
	if len(r.Headers) > estMaxListSize {
		return fmt.Errorf("request.headers: %d keys exceed %d", len(r.Headers), estMaxListSize)
	}
	for k, v := range r.Headers {
		if err := checkStrings("request.headers", estMaxLongString, k, v); err != nil {
			return err
		}
	}
	if err := checkValue("body", estMaxShortString, in.Body, 0); err != nil {
		return err
	}
	if len(in.Grants) > estMaxListSize {
		return fmt.Errorf("grants: %d exceed %d", len(in.Grants), estMaxListSize)
	}
	for _, g := range in.Grants {
		if err := checkStrings("grants", estMaxShortString, g.ID, g.Scope); err != nil {
			return err
		}
	}
	return nil
}

func checkStrings(what string, limit int, ss ...string) error {
	for _, s := range ss {
		if len(s) > limit {
			return fmt.Errorf("%s: a string of %d bytes exceeds %d", what, len(s), limit)
		}
	}
	return nil
}

func checkStringList(what string, limit int, ss []string) error {
	if len(ss) > estMaxListSize {
		return fmt.Errorf("%s: %d elements exceed %d", what, len(ss), estMaxListSize)
	}
	return checkStrings(what, limit, ss...)
}

// maxDepth bounds nesting inside claims and body values.
const maxDepth = 4

// checkValue bounds a JSON-like value (claims, body facts).
func checkValue(what string, limit int, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: nested deeper than %d", what, maxDepth)
	}
	switch x := v.(type) {
	case string:
		return checkStrings(what, limit, x)
	case []string:
		return checkStringList(what, limit, x)
	case []any:
		if len(x) > estMaxListSize {
			return fmt.Errorf("%s: %d elements exceed %d", what, len(x), estMaxListSize)
		}
		for _, e := range x {
			if err := checkValue(what, limit, e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		if len(x) > estMaxListSize {
			return fmt.Errorf("%s: %d keys exceed %d", what, len(x), estMaxListSize)
		}
		for k, e := range x {
			if err := checkStrings(what, limit, k); err != nil {
				return err
			}
			if err := checkValue(what, limit, e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
