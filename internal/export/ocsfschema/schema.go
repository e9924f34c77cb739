// Package ocsfschema loads the OCSF schema source (the JSON files of the
// ocsf-schema repository: dictionary.json, categories.json, events/,
// objects/, profiles/) and validates events against it: required
// attributes present, types as dictionary.json defines them, enum values
// valid, sibling captions consistent, class_uid/type_uid/category_uid
// consistent, profile attributes only where the event applies the
// profile, and the at_least_one/just_one constraints.
//
// It is a small, strict validator for Warden's tests and for operators
// who want to check an export; it is not a general OCSF compiler (no
// extensions, no observables).
package ocsfschema

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Schema is a resolved OCSF schema.
type Schema struct {
	// Version is the schema version (version.json).
	Version string

	dict       map[string]rawAttr
	types      map[string]*scalarType
	categories map[string]category
	objects    map[string]*Type
	classes    map[int]*Type
	byName     map[string]*Type
	profiles   map[string]bool

	rawObjects map[string]rawDef
	rawEvents  map[string]rawDef
	dir        string
}

// Type is a resolved event class or object.
type Type struct {
	// Name is the class or object name, e.g. "api_activity", "user".
	Name string
	// Caption is the human name, e.g. "API Activity".
	Caption string
	// UID is the class_uid of an event class (0 for objects and the base
	// event).
	UID int
	// CategoryUID and CategoryName are the class's category.
	CategoryUID  int
	CategoryName string
	// Attrs are the attributes, by name.
	Attrs map[string]*Attr
	// AtLeastOne and JustOne are the class's constraints.
	AtLeastOne []string
	JustOne    []string
	// Profiles lists the profiles the type allows.
	Profiles []string
}

// Attr is a resolved attribute of a class or object.
type Attr struct {
	Name        string
	Type        string
	IsArray     bool
	Requirement string
	// Enum maps each allowed value (its JSON text for numbers) to its
	// caption.
	Enum map[string]string
	// Sibling is the attribute holding the caption of this one's enum
	// value (e.g. activity_id -> activity_name).
	Sibling string
	// Profile is the profile that brings the attribute ("" for none).
	Profile    string
	Deprecated bool
}

type category struct {
	UID     int    `json:"uid"`
	Caption string `json:"caption"`
}

type scalarType struct {
	base   string // string_t, integer_t, long_t, float_t, boolean_t, json_t
	regex  *regexp.Regexp
	maxLen int
	rng    []float64
}

type rawAttr map[string]any

type rawDef struct {
	Name        string             `json:"name"`
	Caption     string             `json:"caption"`
	Extends     string             `json:"extends"`
	Category    string             `json:"category"`
	UID         *int               `json:"uid"`
	Attributes  map[string]rawAttr `json:"-"`
	Includes    []string           `json:"-"`
	Constraints struct {
		AtLeastOne []string `json:"at_least_one"`
		JustOne    []string `json:"just_one"`
	} `json:"constraints"`
	Profiles []string `json:"profiles"`
}

// Load reads and resolves the schema under dir.
func Load(dir string) (*Schema, error) {
	s := &Schema{
		dir: dir, dict: map[string]rawAttr{}, types: map[string]*scalarType{},
		categories: map[string]category{}, objects: map[string]*Type{}, classes: map[int]*Type{},
		byName: map[string]*Type{}, profiles: map[string]bool{},
		rawObjects: map[string]rawDef{}, rawEvents: map[string]rawDef{},
	}
	var ver struct{ Version string }
	if err := readJSON(filepath.Join(dir, "version.json"), &ver); err != nil {
		return nil, err
	}
	s.Version = ver.Version
	if err := s.loadDictionary(); err != nil {
		return nil, err
	}
	var cats struct {
		Attributes map[string]category `json:"attributes"`
	}
	if err := readJSON(filepath.Join(dir, "categories.json"), &cats); err != nil {
		return nil, err
	}
	s.categories = cats.Attributes
	profs, err := filepath.Glob(filepath.Join(dir, "profiles", "*.json"))
	if err != nil {
		return nil, err
	}
	for _, p := range profs {
		d, err := readDef(p)
		if err != nil {
			return nil, err
		}
		s.profiles[d.Name] = true
	}
	if err := s.loadDefs("objects", s.rawObjects); err != nil {
		return nil, err
	}
	if err := s.loadDefs("events", s.rawEvents); err != nil {
		return nil, err
	}
	for name := range s.rawObjects {
		if _, err := s.object(name, nil); err != nil {
			return nil, err
		}
	}
	for name := range s.rawEvents {
		t, err := s.class(name, nil)
		if err != nil {
			return nil, err
		}
		if t.UID != 0 || name == "base_event" {
			if prev, ok := s.classes[t.UID]; ok && prev.Name != t.Name {
				return nil, fmt.Errorf("ocsfschema: class_uid %d is both %s and %s", t.UID, prev.Name, t.Name)
			}
			s.classes[t.UID] = t
		}
	}
	return s, nil
}

// Class returns the class with that class_uid.
func (s *Schema) Class(uid int) (*Type, bool) { t, ok := s.classes[uid]; return t, ok }

// ClassByName returns the class (or abstract parent) with that name.
func (s *Schema) ClassByName(name string) (*Type, bool) { t, ok := s.byName[name]; return t, ok }

// Object returns the object type with that name.
func (s *Schema) Object(name string) (*Type, bool) { t, ok := s.objects[name]; return t, ok }

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("ocsfschema: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("ocsfschema: %s: %w", path, err)
	}
	return nil
}

func readDef(path string) (rawDef, error) {
	var d rawDef
	if err := readJSON(path, &d); err != nil {
		return d, err
	}
	var a struct {
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	if err := readJSON(path, &a); err != nil {
		return d, err
	}
	d.Attributes = map[string]rawAttr{}
	for k, v := range a.Attributes {
		if k == "$include" {
			if err := json.Unmarshal(v, &d.Includes); err != nil {
				return d, fmt.Errorf("ocsfschema: %s: $include: %w", path, err)
			}
			continue
		}
		var ra rawAttr
		if err := json.Unmarshal(v, &ra); err != nil {
			return d, fmt.Errorf("ocsfschema: %s: attribute %s: %w", path, k, err)
		}
		d.Attributes[k] = ra
	}
	return d, nil
}

func (s *Schema) loadDefs(sub string, into map[string]rawDef) error {
	return filepath.WalkDir(filepath.Join(s.dir, sub), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("ocsfschema: %w", err)
		}
		if de.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		d, err := readDef(p)
		if err != nil {
			return err
		}
		if _, dup := into[d.Name]; dup {
			return fmt.Errorf("ocsfschema: %s: duplicate name %q", p, d.Name)
		}
		into[d.Name] = d
		return nil
	})
}

func (s *Schema) loadDictionary() error {
	var d struct {
		Attributes map[string]rawAttr `json:"attributes"`
		Types      struct {
			Attributes map[string]rawAttr `json:"attributes"`
		} `json:"types"`
	}
	if err := readJSON(filepath.Join(s.dir, "dictionary.json"), &d); err != nil {
		return err
	}
	s.dict = d.Attributes
	bases := map[string]bool{"string_t": true, "integer_t": true, "long_t": true, "float_t": true, "boolean_t": true, "json_t": true}
	for name, t := range d.Types.Attributes {
		st := &scalarType{base: name}
		if b, ok := t["type"].(string); ok {
			st.base = b
		}
		if !bases[st.base] {
			return fmt.Errorf("ocsfschema: type %s has unknown base %s", name, st.base)
		}
		if r, ok := t["regex"].(string); ok {
			re, err := regexp.Compile(r)
			if err != nil {
				return fmt.Errorf("ocsfschema: type %s: regex: %w", name, err)
			}
			st.regex = re
		}
		if n, ok := t["max_len"].(float64); ok {
			st.maxLen = int(n)
		}
		if r, ok := t["range"].([]any); ok && len(r) == 2 {
			lo, _ := r[0].(float64)
			hi, _ := r[1].(float64)
			st.rng = []float64{lo, hi}
		}
		s.types[name] = st
	}
	return nil
}

// object resolves an object type (memoised). seen guards against cycles
// in "extends".
func (s *Schema) object(name string, seen []string) (*Type, error) {
	if t, ok := s.objects[name]; ok {
		return t, nil
	}
	d, ok := s.rawObjects[name]
	if !ok {
		return nil, fmt.Errorf("ocsfschema: unknown object %q", name)
	}
	var parent *Type
	if d.Extends != "" {
		if contains(seen, name) {
			return nil, fmt.Errorf("ocsfschema: object %s extends itself", name)
		}
		var err error
		if parent, err = s.object(d.Extends, append(seen, name)); err != nil {
			return nil, err
		}
	}
	t, err := s.resolve(d, parent)
	if err != nil {
		return nil, err
	}
	s.objects[name] = t
	return t, nil
}

// class resolves an event class (memoised).
func (s *Schema) class(name string, seen []string) (*Type, error) {
	if t, ok := s.byName[name]; ok {
		return t, nil
	}
	d, ok := s.rawEvents[name]
	if !ok {
		return nil, fmt.Errorf("ocsfschema: unknown class %q", name)
	}
	var parent *Type
	if d.Extends != "" {
		if contains(seen, name) {
			return nil, fmt.Errorf("ocsfschema: class %s extends itself", name)
		}
		var err error
		if parent, err = s.class(d.Extends, append(seen, name)); err != nil {
			return nil, err
		}
	}
	t, err := s.resolve(d, parent)
	if err != nil {
		return nil, err
	}
	catName := d.Category
	if catName == "" && parent != nil {
		catName = parent.CategoryName
	}
	t.CategoryName = catName
	if c, ok := s.categories[catName]; ok {
		t.CategoryUID = c.UID
	}
	if d.UID != nil {
		t.UID = t.CategoryUID*1000 + *d.UID
	}
	// As the OCSF server does: a class's class_uid and category_uid
	// enums hold exactly its own values.
	if a := t.Attrs["class_uid"]; a != nil {
		a.Enum = map[string]string{strconv.Itoa(t.UID): t.Caption}
	}
	if a := t.Attrs["category_uid"]; a != nil {
		cat := s.categories[catName]
		if catName == "" || catName == "other" {
			cat = category{UID: 0, Caption: "Uncategorized"}
		}
		a.Enum = map[string]string{strconv.Itoa(cat.UID): cat.Caption}
	}
	s.byName[name] = t
	return t, nil
}

// resolve merges d over parent: includes (profiles) first, then d's own
// attributes; each attribute definition is completed from the
// dictionary.
func (s *Schema) resolve(d rawDef, parent *Type) (*Type, error) {
	t := &Type{Name: d.Name, Caption: d.Caption, Attrs: map[string]*Attr{}}
	if parent != nil {
		for k, a := range parent.Attrs {
			c := *a
			c.Enum = maps.Clone(a.Enum)
			t.Attrs[k] = &c
		}
		t.AtLeastOne, t.JustOne = parent.AtLeastOne, parent.JustOne
		t.Profiles = append(t.Profiles, parent.Profiles...)
	}
	for _, inc := range d.Includes {
		pd, err := readDef(filepath.Join(s.dir, inc))
		if err != nil {
			return nil, err
		}
		for k, ra := range pd.Attributes {
			if err := s.mergeAttr(t, k, ra, pd.Name); err != nil {
				return nil, fmt.Errorf("ocsfschema: %s: %w", d.Name, err)
			}
		}
	}
	for k, ra := range d.Attributes {
		if err := s.mergeAttr(t, k, ra, ""); err != nil {
			return nil, fmt.Errorf("ocsfschema: %s: %w", d.Name, err)
		}
	}
	if len(d.Constraints.AtLeastOne) > 0 || len(d.Constraints.JustOne) > 0 {
		t.AtLeastOne, t.JustOne = d.Constraints.AtLeastOne, d.Constraints.JustOne
	}
	for _, p := range d.Profiles {
		if !contains(t.Profiles, p) {
			t.Profiles = append(t.Profiles, p)
		}
	}
	return t, nil
}

// mergeAttr merges one attribute definition into t. profile is the name
// of the profile file it comes from ("" for the type's own definition).
func (s *Schema) mergeAttr(t *Type, name string, ra rawAttr, profile string) error {
	a, ok := t.Attrs[name]
	if !ok {
		da, known := s.dict[name]
		if !known {
			return fmt.Errorf("attribute %s is not in the dictionary", name)
		}
		a = &Attr{Name: name, Requirement: "optional", Enum: map[string]string{}}
		applyDef(a, da)
		a.Profile = profile
		t.Attrs[name] = a
	}
	applyDef(a, ra)
	if p, has := ra["profile"]; has && p == nil {
		a.Profile = ""
	}
	return nil
}

// applyDef applies the keys of one definition layer to a.
func applyDef(a *Attr, ra rawAttr) {
	if v, ok := ra["type"].(string); ok {
		a.Type = v
	}
	if v, ok := ra["is_array"].(bool); ok {
		a.IsArray = v
	}
	if v, ok := ra["requirement"].(string); ok {
		a.Requirement = v
	}
	if v, ok := ra["sibling"].(string); ok {
		a.Sibling = v
	}
	if _, ok := ra["@deprecated"]; ok {
		a.Deprecated = true
	}
	if e, ok := ra["enum"].(map[string]any); ok {
		for k, v := range e {
			c, _ := v.(map[string]any)
			cap, _ := c["caption"].(string)
			a.Enum[k] = cap
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
