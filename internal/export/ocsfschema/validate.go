package ocsfschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Validate checks one event (a JSON object) against the schema and
// returns every problem found, joined; each names the attribute path.
func (s *Schema) Validate(event []byte) error {
	dec := json.NewDecoder(bytes.NewReader(event))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return errors.New("trailing data after the event")
	}
	ev, ok := v.(map[string]any)
	if !ok {
		return errors.New("an event must be a JSON object")
	}
	vc := &validation{s: s}
	vc.event(ev)
	return errors.Join(vc.errs...)
}

type validation struct {
	s       *Schema
	applied []string
	errs    []error
}

func (vc *validation) fail(path, format string, args ...any) {
	vc.errs = append(vc.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func (vc *validation) event(ev map[string]any) {
	uid, ok := intOf(ev["class_uid"])
	if !ok {
		vc.fail("class_uid", "missing or not an integer")
		return
	}
	cls, ok := vc.s.classes[int(uid)]
	if !ok {
		vc.fail("class_uid", "%d is not a class of OCSF %s", uid, vc.s.Version)
		return
	}
	// Profiles the event applies (metadata.profiles).
	if md, ok := ev["metadata"].(map[string]any); ok {
		if ps, ok := md["profiles"].([]any); ok {
			for _, p := range ps {
				name, _ := p.(string)
				switch {
				case !vc.s.profiles[name]:
					vc.fail("metadata.profiles", "unknown profile %q", name)
				case !slices.Contains(cls.Profiles, name):
					vc.fail("metadata.profiles", "profile %q is not allowed in class %s", name, cls.Name)
				default:
					vc.applied = append(vc.applied, name)
				}
			}
		}
	}
	// Classification consistency.
	if cat, ok := intOf(ev["category_uid"]); !ok || int(cat) != cls.CategoryUID {
		vc.fail("category_uid", "is %v; class %s (%d) belongs to category %d", ev["category_uid"], cls.Name, cls.UID, cls.CategoryUID)
	}
	act, okAct := intOf(ev["activity_id"])
	if typ, ok := intOf(ev["type_uid"]); !ok || !okAct || typ != int64(cls.UID)*100+act {
		vc.fail("type_uid", "is %v; want class_uid*100 + activity_id = %d", ev["type_uid"], int64(cls.UID)*100+act)
	}
	if n, ok := ev["class_name"].(string); ok && n != cls.Caption {
		vc.fail("class_name", "is %q; class %d is %q", n, cls.UID, cls.Caption)
	}
	if n, ok := ev["category_name"].(string); ok {
		if c := cls.Attrs["category_uid"].Enum[strconv.Itoa(cls.CategoryUID)]; n != c {
			vc.fail("category_name", "is %q; category %d is %q", n, cls.CategoryUID, c)
		}
	}
	if n, ok := ev["type_name"].(string); ok && okAct {
		actName := cls.Attrs["activity_id"].Enum[strconv.FormatInt(act, 10)]
		if act == 99 {
			actName, _ = ev["activity_name"].(string)
		}
		if want := cls.Caption + ": " + actName; n != want {
			vc.fail("type_name", "is %q; want %q", n, want)
		}
	}
	vc.object("", cls, ev)
}

// object validates obj against type t; path is the attribute path of obj.
func (vc *validation) object(path string, t *Type, obj map[string]any) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	for k, v := range obj {
		a, ok := t.Attrs[k]
		if !ok {
			vc.fail(join(k), "is not an attribute of %s", t.Name)
			continue
		}
		if a.Profile != "" && !slices.Contains(vc.applied, a.Profile) {
			vc.fail(join(k), "belongs to profile %q, which metadata.profiles does not apply", a.Profile)
		}
		if a.Deprecated {
			vc.fail(join(k), "is deprecated")
		}
		if v == nil {
			vc.fail(join(k), "is null; omit it instead")
			continue
		}
		if a.IsArray {
			arr, ok := v.([]any)
			if !ok {
				vc.fail(join(k), "must be an array of %s", a.Type)
				continue
			}
			for i, el := range arr {
				vc.value(fmt.Sprintf("%s[%d]", join(k), i), a, el)
			}
			continue
		}
		vc.value(join(k), a, v)
	}
	for name, a := range t.Attrs {
		if a.Requirement != "required" || (a.Profile != "" && !slices.Contains(vc.applied, a.Profile)) {
			continue
		}
		if _, ok := obj[name]; !ok {
			vc.fail(join(name), "is required in %s", t.Name)
		}
	}
	if len(t.AtLeastOne) > 0 && count(obj, t.AtLeastOne) == 0 {
		vc.fail(pathOr(path, t.Name), "needs at least one of %v", t.AtLeastOne)
	}
	if len(t.JustOne) > 0 && count(obj, t.JustOne) != 1 {
		vc.fail(pathOr(path, t.Name), "needs exactly one of %v", t.JustOne)
	}
	// Sibling captions: X_id's sibling must name X_id's enum value.
	for name, a := range t.Attrs {
		if a.Sibling == "" || len(a.Enum) == 0 {
			continue
		}
		id, ok := obj[name]
		if !ok {
			continue
		}
		key := fmt.Sprint(id)
		sib, has := obj[a.Sibling].(string)
		switch {
		case key == "99" && (!has || sib == ""):
			vc.fail(join(a.Sibling), "must name the source's value when %s is 99 (Other)", name)
		case key != "99" && has && sib != a.Enum[key]:
			vc.fail(join(a.Sibling), "is %q; %s %s is %q", sib, name, key, a.Enum[key])
		}
	}
}

func pathOr(path, name string) string {
	if path == "" {
		return name
	}
	return path
}

func count(obj map[string]any, names []string) int {
	n := 0
	for _, k := range names {
		if _, ok := obj[k]; ok {
			n++
		}
	}
	return n
}

// value validates one (non-array) value of attribute a.
func (vc *validation) value(path string, a *Attr, v any) {
	if ot, ok := vc.s.objects[a.Type]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			vc.fail(path, "must be a %s object", a.Type)
			return
		}
		if a.Type == "object" {
			return // free-form (e.g. unmapped)
		}
		vc.object(path, ot, m)
		return
	}
	st, ok := vc.s.types[a.Type]
	if !ok {
		vc.fail(path, "has unknown type %q in the schema", a.Type)
		return
	}
	switch st.base {
	case "json_t":
		return
	case "string_t":
		str, ok := v.(string)
		if !ok {
			vc.fail(path, "must be a string (%s)", a.Type)
			return
		}
		if !utf8.ValidString(str) {
			vc.fail(path, "is not valid UTF-8")
		}
		if st.maxLen > 0 && len(str) > st.maxLen {
			vc.fail(path, "is longer than %d (%s)", st.maxLen, a.Type)
		}
		if st.regex != nil && !st.regex.MatchString(str) {
			vc.fail(path, "%q does not match the %s format", str, a.Type)
		}
		if len(a.Enum) > 0 {
			if _, ok := a.Enum[str]; !ok {
				vc.fail(path, "%q is not one of its enum values", str)
			}
		}
	case "boolean_t":
		if _, ok := v.(bool); !ok {
			vc.fail(path, "must be a boolean")
		}
	case "integer_t", "long_t":
		n, ok := v.(json.Number)
		if !ok {
			vc.fail(path, "must be an integer (%s)", a.Type)
			return
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			vc.fail(path, "%s is not an integer (%s)", n, a.Type)
			return
		}
		if st.base == "integer_t" && (i < math.MinInt32 || i > math.MaxInt32) {
			vc.fail(path, "%d is out of the 32-bit integer range", i)
		}
		if st.rng != nil && (float64(i) < st.rng[0] || float64(i) > st.rng[1]) {
			vc.fail(path, "%d is out of range %v", i, st.rng)
		}
		if len(a.Enum) > 0 {
			if _, ok := a.Enum[n.String()]; !ok {
				vc.fail(path, "%s is not one of its enum values", n)
			}
		}
	case "float_t":
		n, ok := v.(json.Number)
		if !ok {
			vc.fail(path, "must be a number")
			return
		}
		if _, err := n.Float64(); err != nil {
			vc.fail(path, "%s is not a number", n)
		}
	}
}

func intOf(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	return i, err == nil
}
