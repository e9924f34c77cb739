package policy

import (
	"fmt"
	"sort"
	"time"
)

// Action is what a decision tells the gateway to do with a request.
type Action string

const (
	// ActionAllow forwards the request.
	ActionAllow Action = "allow"
	// ActionDeny refuses the request with 403 and the rule's reason.
	ActionDeny Action = "deny"
	// ActionRequireApproval holds or parks the request until reviewers
	// approve it, per the rule's ApprovalSetting.
	ActionRequireApproval Action = "require_approval"
)

// LogMode says how much of the request the audit recording keeps.
type LogMode string

const (
	// LogFull records the request body as sent.
	LogFull LogMode = "full"
	// LogRedacted records the body after masking (the default).
	LogRedacted LogMode = "redacted"
	// LogHashOnly records only a hash of the body.
	LogHashOnly LogMode = "hash_only"
)

// RecordLevel says how much of a request a session recording keeps
// (docs/recording.md). Empty in a rule means the config default
// (recordings.default).
type RecordLevel string

const (
	// RecordOff records nothing.
	RecordOff RecordLevel = "off"
	// RecordMetadata records request line, headers, status, sizes and
	// timing, no bodies.
	RecordMetadata RecordLevel = "metadata"
	// RecordFull also records the request body (redacted like log:
	// redacted unless record_request: raw) and the response body exactly
	// as the client received it.
	RecordFull RecordLevel = "full"
)

// RecordRequestRaw is the record_request value that records the request
// body as forwarded instead of redacted.
const RecordRequestRaw = "raw"

// ApprovalKind says what an approval grants.
type ApprovalKind string

const (
	// ApprovalOneTime approves exactly the request that asked.
	ApprovalOneTime ApprovalKind = "one_time"
	// ApprovalGrant approves a time-boxed, scoped grant: later requests
	// within Scope pass until GrantDuration has elapsed.
	ApprovalGrant ApprovalKind = "grant"
)

// ApprovalMode says how the caller waits for approval.
type ApprovalMode string

const (
	// ApprovalHold keeps the HTTP request open up to HoldTimeout.
	ApprovalHold ApprovalMode = "hold"
	// ApprovalAsync answers at once with an approval id to retry under.
	ApprovalAsync ApprovalMode = "async"
)

// Masking profile names with a meaning of their own in rules.
const (
	// MaskDefault is the profile an allow or require_approval rule
	// without `mask:` applies: masking is on unless a rule turns it off.
	MaskDefault = "default"
	// MaskNone turns masking off for a rule's responses. The loader warns
	// about every rule that uses it (Policy.Warnings).
	MaskNone = "none"
)

// DefaultRuleName is the rule recorded when no rule matched and the
// request was denied by default.
const DefaultRuleName = "default-deny"

// DefaultDenyReason is the reason given for a default deny.
const DefaultDenyReason = "no policy rule allows this request"

// File is the policy file as written (after defaults are applied).
type File struct {
	// Version is the file format version; must be 1.
	Version int `yaml:"version" json:"version"`
	// DefaultAction may only be "deny" (or omitted); it exists so a
	// policy can state its default explicitly.
	DefaultAction Action `yaml:"default_action,omitempty" json:"default_action"`
	// Rules are evaluated in order; the first match decides.
	Rules []Rule `yaml:"rules" json:"rules"`
	// Approvals are named approval settings referenced by rules.
	Approvals map[string]*ApprovalSetting `yaml:"approvals,omitempty" json:"approvals"`
}

// Rule is one ordered policy rule.
type Rule struct {
	// Name identifies the rule in decisions and audit entries; unique.
	Name string `yaml:"name" json:"name"`
	// When is a CEL expression of type bool.
	When string `yaml:"when" json:"when"`
	// Action is taken when When is true.
	Action Action `yaml:"action" json:"action"`
	// Mask names the masking profile for the response. Default, for
	// allow and require_approval rules, MaskDefault; MaskNone sends the
	// upstream's response unmasked.
	Mask string `yaml:"mask,omitempty" json:"mask"`
	// Log is the request logging mode; default redacted.
	Log LogMode `yaml:"log,omitempty" json:"log"`
	// Record is the session recording level: off, metadata or full.
	// Empty: the config's recordings.default.
	Record RecordLevel `yaml:"record,omitempty" json:"record,omitempty"`
	// RecordRequest is "redacted" (the default: the request body passes
	// the detectors of log: redacted) or "raw" (recorded as forwarded).
	RecordRequest string `yaml:"record_request,omitempty" json:"record_request,omitempty"`
	// Approval names an entry of File.Approvals; required for (and only
	// allowed with) require_approval.
	Approval string `yaml:"approval,omitempty" json:"approval"`
	// Reason is shown to the caller on deny (and to reviewers on
	// require_approval). Default: "denied by policy rule <name>".
	Reason string `yaml:"reason,omitempty" json:"reason"`
}

// ApprovalSetting configures how a require_approval rule is approved.
// The approval workflow consumes it; this package only validates it.
type ApprovalSetting struct {
	// Kind is one_time (default) or grant.
	Kind ApprovalKind `yaml:"kind,omitempty" json:"kind"`
	// Mode is hold (default) or async.
	Mode ApprovalMode `yaml:"mode,omitempty" json:"mode"`
	// Reviewers are the groups whose members may approve.
	Reviewers []string `yaml:"reviewers" json:"reviewers"`
	// MinApprovals is how many approvals are needed; default 1.
	MinApprovals int `yaml:"min_approvals,omitempty" json:"min_approvals"`
	// OnePerGroup requires the approvals to come from distinct reviewer
	// groups.
	OnePerGroup bool `yaml:"one_per_group,omitempty" json:"one_per_group"`
	// TTL is how long a request stays pending; default 1h.
	TTL time.Duration `yaml:"ttl,omitempty" json:"ttl"`
	// HoldTimeout bounds how long a hold-mode request waits; default 10m.
	HoldTimeout time.Duration `yaml:"hold_timeout,omitempty" json:"hold_timeout"`
	// GrantDuration is how long a grant lasts; default 1h (grants only).
	GrantDuration time.Duration `yaml:"grant_duration,omitempty" json:"grant_duration"`
	// Scope limits what a grant covers (grants only).
	Scope GrantScope `yaml:"scope,omitempty" json:"scope"`
}

// GrantScope lists what a grant covers; each list holds globs and an
// empty list means "any".
type GrantScope struct {
	// Routes are route-name globs.
	Routes []string `yaml:"routes,omitempty" json:"routes"`
	// Models are model-name globs.
	Models []string `yaml:"models,omitempty" json:"models"`
	// Paths are request-path globs.
	Paths []string `yaml:"paths,omitempty" json:"paths"`
}

const (
	defaultTTL           = time.Hour
	defaultHoldTimeout   = 10 * time.Minute
	defaultGrantDuration = time.Hour
)

// setDefaults fills the documented defaults in place.
func (f *File) setDefaults() {
	if f.DefaultAction == "" {
		f.DefaultAction = ActionDeny
	}
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.Log == "" {
			r.Log = LogRedacted
		}
		if r.Mask == "" && r.Action != ActionDeny {
			r.Mask = MaskDefault
		}
		if r.Reason == "" && r.Action == ActionDeny {
			r.Reason = "denied by policy rule " + r.Name
		}
		if r.Reason == "" && r.Action == ActionRequireApproval {
			r.Reason = "approval required by policy rule " + r.Name
		}
	}
	for _, a := range f.Approvals {
		if a == nil {
			continue
		}
		if a.Kind == "" {
			a.Kind = ApprovalOneTime
		}
		if a.Mode == "" {
			a.Mode = ApprovalHold
		}
		if a.MinApprovals == 0 {
			a.MinApprovals = 1
		}
		if a.TTL == 0 {
			a.TTL = defaultTTL
		}
		if a.HoldTimeout == 0 {
			a.HoldTimeout = defaultHoldTimeout
		}
		if a.Kind == ApprovalGrant && a.GrantDuration == 0 {
			a.GrantDuration = defaultGrantDuration
		}
		// "[]" and absent mean the same; keep the version equal.
		a.Reviewers = nilIfEmpty(a.Reviewers)
		a.Scope.Routes = nilIfEmpty(a.Scope.Routes)
		a.Scope.Models = nilIfEmpty(a.Scope.Models)
		a.Scope.Paths = nilIfEmpty(a.Scope.Paths)
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// problem is one validation finding with the YAML path it concerns.
type problem struct {
	path  string // goccy path, e.g. "$.rules[2].action"
	rule  int    // rule index or -1
	field string // key within the rule, for the message
	msg   string
}

// validate checks everything except the CEL expressions.
func (f *File) validate() []problem {
	var ps []problem
	add := func(path string, rule int, field, format string, args ...any) {
		ps = append(ps, problem{path: path, rule: rule, field: field, msg: fmt.Sprintf(format, args...)})
	}
	if f.Version != 1 {
		add("$.version", -1, "version", "must be 1, got %d", f.Version)
	}
	if f.DefaultAction != ActionDeny {
		add("$.default_action", -1, "default_action", "may only be %q (default deny is not configurable), got %q", ActionDeny, f.DefaultAction)
	}
	if len(f.Rules) == 0 {
		add("$.rules", -1, "rules", "at least one rule is required")
	}
	seen := map[string]int{}
	for i, r := range f.Rules {
		p := fmt.Sprintf("$.rules[%d]", i)
		switch {
		case r.Name == "":
			add(p, i, "name", "is required")
		case r.Name == DefaultRuleName:
			add(p+".name", i, "name", "%q is reserved for the implicit default", DefaultRuleName)
		default:
			if j, dup := seen[r.Name]; dup {
				add(p+".name", i, "name", "duplicates the name of rule %d", j)
			}
			seen[r.Name] = i
		}
		if r.When == "" {
			add(p, i, "when", "is required (use \"true\" to match everything)")
		}
		switch r.Action {
		case ActionAllow, ActionDeny, ActionRequireApproval:
		case "":
			add(p, i, "action", "is required (allow, deny or require_approval)")
		default:
			add(p+".action", i, "action", "must be allow, deny or require_approval, got %q", r.Action)
		}
		switch r.Log {
		case LogFull, LogRedacted, LogHashOnly:
		default:
			add(p+".log", i, "log", "must be full, redacted or hash_only, got %q", r.Log)
		}
		switch r.Record {
		case "", RecordOff, RecordMetadata, RecordFull:
		default:
			add(p+".record", i, "record", "must be off, metadata or full, got %q", r.Record)
		}
		switch r.RecordRequest {
		case "", "redacted", RecordRequestRaw:
		default:
			add(p+".record_request", i, "record_request", "must be redacted or raw, got %q", r.RecordRequest)
		}
		switch {
		case r.Action == ActionRequireApproval && r.Approval == "":
			add(p, i, "approval", "is required with action require_approval")
		case r.Action != ActionRequireApproval && r.Approval != "":
			add(p+".approval", i, "approval", "is only used with action require_approval")
		case r.Approval != "":
			if a, ok := f.Approvals[r.Approval]; !ok || a == nil {
				add(p+".approval", i, "approval", "names no entry of approvals: %q", r.Approval)
			}
		}
	}
	names := make([]string, 0, len(f.Approvals))
	for name := range f.Approvals {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a := f.Approvals[name]
		p := "$.approvals." + name
		if a == nil {
			add(p, -1, "approvals."+name, "is empty")
			continue
		}
		switch a.Kind {
		case ApprovalOneTime, ApprovalGrant:
		default:
			add(p+".kind", -1, "approvals."+name+".kind", "must be one_time or grant, got %q", a.Kind)
		}
		switch a.Mode {
		case ApprovalHold, ApprovalAsync:
		default:
			add(p+".mode", -1, "approvals."+name+".mode", "must be hold or async, got %q", a.Mode)
		}
		if len(a.Reviewers) == 0 {
			add(p, -1, "approvals."+name+".reviewers", "at least one reviewer group is required")
		}
		if a.MinApprovals < 1 {
			add(p+".min_approvals", -1, "approvals."+name+".min_approvals", "must be at least 1")
		}
		if a.OnePerGroup && a.MinApprovals > len(a.Reviewers) {
			add(p+".min_approvals", -1, "approvals."+name+".min_approvals", "is %d but one_per_group allows at most %d (the number of reviewer groups)", a.MinApprovals, len(a.Reviewers))
		}
		if a.TTL < 0 || a.HoldTimeout < 0 || a.GrantDuration < 0 {
			add(p, -1, "approvals."+name, "durations must not be negative")
		}
		if a.Kind != ApprovalGrant {
			if a.GrantDuration != 0 {
				add(p+".grant_duration", -1, "approvals."+name+".grant_duration", "is only used with kind grant")
			}
			if len(a.Scope.Routes)+len(a.Scope.Models)+len(a.Scope.Paths) > 0 {
				add(p+".scope", -1, "approvals."+name+".scope", "is only used with kind grant")
			}
		}
	}
	return ps
}

// Covers reports whether a request on route, for model, at path lies
// within the scope: each non-empty list must have a glob (see Glob) that
// matches. The approval workflow uses it to pass only the grants that
// apply to a request as Input.Grants.
func (s GrantScope) Covers(route, model, path string) bool {
	return anyGlob(s.Routes, route) && anyGlob(s.Models, model) && anyGlob(s.Paths, path)
}

func anyGlob(patterns []string, s string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if Glob(p, s) {
			return true
		}
	}
	return false
}
