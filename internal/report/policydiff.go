package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// Sources of a policy change (PolicyChange.Sources).
const (
	// SourcesVerified: the entry carries both canonical policy texts and
	// each hashes to its version; the diff summary is computed from them.
	SourcesVerified = "verified"
	// SourcesAbsent: the entry carries no text for one of the versions
	// (an entry written before decision 021, or a policy above the size
	// limit): the change is known by its hashes only.
	SourcesAbsent = "absent"
	// SourcesMismatch: a text does not hash to the version the entry
	// names. An exception: the entry contradicts itself.
	SourcesMismatch = "mismatch"
)

// PolicyChange is one applied policy version of the period (A.8.32):
// who installed it, when, and what changed, computed from the canonical
// policy texts the config.changed entry carries (decision 021).
type PolicyChange struct {
	Seq   int64     `json:"seq"`
	Time  time.Time `json:"time"`
	Actor string    `json:"actor"`
	Old   string    `json:"old_version"`
	New   string    `json:"new_version"`
	// Sources is SourcesVerified, SourcesAbsent or SourcesMismatch; the
	// diff below is empty unless verified.
	Sources string `json:"sources"`
	PolicyDiff
}

// PolicyDiff summarises the difference between two canonical policies.
type PolicyDiff struct {
	// RulesAdded, RulesRemoved, RulesChanged name rules (changed: same
	// name, any field different).
	RulesAdded   []string `json:"rules_added,omitempty"`
	RulesRemoved []string `json:"rules_removed,omitempty"`
	RulesChanged []string `json:"rules_changed,omitempty"`
	// Reordered is true when rules present in both versions are in a
	// different order (the first match decides, so order is policy).
	Reordered bool `json:"reordered,omitempty"`
	// MaskChanges are the rules whose masking profile changed, as
	// "rule: old -> new" (also counted in RulesChanged).
	MaskChanges []string `json:"mask_changes,omitempty"`
	// ApprovalsChanged names approval settings added, removed or changed,
	// as "+name", "-name", "~name".
	ApprovalsChanged []string `json:"approvals_changed,omitempty"`
	// Other is true when anything else differs (e.g. default_action).
	Other bool `json:"other,omitempty"`
}

// Empty reports whether nothing differs.
func (d PolicyDiff) Empty() bool {
	return len(d.RulesAdded)+len(d.RulesRemoved)+len(d.RulesChanged)+len(d.ApprovalsChanged) == 0 && !d.Reordered && !d.Other
}

// String is a one-line summary, e.g. "rules +a -b ~c; masking c: x -> y".
func (d PolicyDiff) String() string {
	var parts []string
	var rules []string
	for _, r := range d.RulesAdded {
		rules = append(rules, "+"+r)
	}
	for _, r := range d.RulesRemoved {
		rules = append(rules, "-"+r)
	}
	for _, r := range d.RulesChanged {
		rules = append(rules, "~"+r)
	}
	if len(rules) > 0 {
		parts = append(parts, "rules "+strings.Join(rules, " "))
	}
	if d.Reordered {
		parts = append(parts, "rules reordered")
	}
	if len(d.MaskChanges) > 0 {
		parts = append(parts, "masking "+strings.Join(d.MaskChanges, ", "))
	}
	if len(d.ApprovalsChanged) > 0 {
		parts = append(parts, "approvals "+strings.Join(d.ApprovalsChanged, " "))
	}
	if d.Other {
		parts = append(parts, "other settings")
	}
	if len(parts) == 0 {
		return "no difference"
	}
	return strings.Join(parts, "; ")
}

// canonicalPolicy is what a diff reads of a canonical policy text; rules
// stay raw so a changed field of any kind is seen.
type canonicalPolicy struct {
	Rules     []json.RawMessage          `json:"rules"`
	Approvals map[string]json.RawMessage `json:"approvals"`
}

type ruleHead struct {
	Name string `json:"name"`
	Mask string `json:"mask"`
}

func parseCanonical(b []byte) (*canonicalPolicy, map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, nil, err
	}
	var p canonicalPolicy
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, nil, err
	}
	delete(all, "rules")
	delete(all, "approvals")
	return &p, all, nil
}

// DiffPolicies summarises the changes from one canonical policy text
// (policy.Policy.Canonical, or a config.changed entry's policy source)
// to another.
func DiffPolicies(oldText, newText []byte) (PolicyDiff, error) {
	var d PolicyDiff
	o, orest, err := parseCanonical(oldText)
	if err != nil {
		return d, fmt.Errorf("old policy: %w", err)
	}
	n, nrest, err := parseCanonical(newText)
	if err != nil {
		return d, fmt.Errorf("new policy: %w", err)
	}
	type rule struct {
		head ruleHead
		raw  json.RawMessage
	}
	index := func(rs []json.RawMessage) (map[string]rule, []string, error) {
		m := map[string]rule{}
		var order []string
		for _, raw := range rs {
			var h ruleHead
			if err := json.Unmarshal(raw, &h); err != nil {
				return nil, nil, err
			}
			m[h.Name] = rule{h, raw}
			order = append(order, h.Name)
		}
		return m, order, nil
	}
	om, oorder, err := index(o.Rules)
	if err != nil {
		return d, err
	}
	nm, norder, err := index(n.Rules)
	if err != nil {
		return d, err
	}
	for _, name := range norder {
		or, ok := om[name]
		if !ok {
			d.RulesAdded = append(d.RulesAdded, name)
			continue
		}
		nr := nm[name]
		if !jsonEqual(or.raw, nr.raw) {
			d.RulesChanged = append(d.RulesChanged, name)
		}
		if or.head.Mask != nr.head.Mask {
			d.MaskChanges = append(d.MaskChanges, fmt.Sprintf("%s: %s -> %s", name, maskName(or.head.Mask), maskName(nr.head.Mask)))
		}
	}
	for _, name := range oorder {
		if _, ok := nm[name]; !ok {
			d.RulesRemoved = append(d.RulesRemoved, name)
		}
	}
	keep := func(order []string, other map[string]rule) []string {
		var out []string
		for _, name := range order {
			if _, ok := other[name]; ok {
				out = append(out, name)
			}
		}
		return out
	}
	d.Reordered = !slices.Equal(keep(oorder, nm), keep(norder, om))
	for name, raw := range n.Approvals {
		if oraw, ok := o.Approvals[name]; !ok {
			d.ApprovalsChanged = append(d.ApprovalsChanged, "+"+name)
		} else if !jsonEqual(oraw, raw) {
			d.ApprovalsChanged = append(d.ApprovalsChanged, "~"+name)
		}
	}
	for name := range o.Approvals {
		if _, ok := n.Approvals[name]; !ok {
			d.ApprovalsChanged = append(d.ApprovalsChanged, "-"+name)
		}
	}
	sort.Strings(d.ApprovalsChanged)
	for k, v := range nrest {
		if !jsonEqual(orest[k], v) {
			d.Other = true
		}
	}
	for k := range orest {
		if _, ok := nrest[k]; !ok {
			d.Other = true
		}
	}
	return d, nil
}

func maskName(s string) string {
	if s == "" {
		return "(default)"
	}
	return s
}

// jsonEqual compares two JSON values (objects key-order independent).
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// PolicySources returns the canonical policy texts an applied policy
// config.changed entry carries (details.old_policy_source and
// details.policy_source), each nil when absent.
func PolicySources(e *audit.Entry) (oldText, newText []byte) {
	if s, ok := e.Details["old_policy_source"].(string); ok {
		oldText = []byte(s)
	}
	if s, ok := e.Details["policy_source"].(string); ok {
		newText = []byte(s)
	}
	return oldText, newText
}

// policyChangeOf computes the A.8.32 row of an applied policy change.
func policyChangeOf(e *audit.Entry) PolicyChange {
	pc := PolicyChange{Seq: e.Seq, Time: e.Time, Actor: detail(e, "actor"), Old: detail(e, "old_version"), New: detail(e, "new_version"), Sources: SourcesAbsent}
	oldText, newText := PolicySources(e)
	if oldText == nil || newText == nil {
		if (oldText != nil && sha256Digest(oldText) != pc.Old) || (newText != nil && sha256Digest(newText) != pc.New) {
			pc.Sources = SourcesMismatch
		}
		return pc
	}
	if sha256Digest(oldText) != pc.Old || sha256Digest(newText) != pc.New {
		pc.Sources = SourcesMismatch
		return pc
	}
	d, err := DiffPolicies(oldText, newText)
	if err != nil {
		pc.Sources = SourcesMismatch
		return pc
	}
	pc.Sources, pc.PolicyDiff = SourcesVerified, d
	return pc
}
