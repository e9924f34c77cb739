package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// State is the lifecycle state of a Request.
type State string

// States of a Request; see the package documentation for transitions.
const (
	StatePending   State = "pending"
	StateApproved  State = "approved"
	StateDenied    State = "denied"
	StateExpired   State = "expired"
	StateCancelled State = "cancelled"
	StateUsed      State = "used"
	StateRevoked   State = "revoked"
)

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateApproved, StateDenied, StateExpired, StateCancelled, StateUsed, StateRevoked:
		return true
	}
	return false
}

// Verdict is a reviewer's decision.
type Verdict string

// Verdicts.
const (
	VerdictApprove Verdict = "approve"
	VerdictDeny    Verdict = "deny"
)

// VisibleTo reports whether p may see r: its requester, or a member of
// one of its reviewer groups.
func (r *Request) VisibleTo(p *identity.Principal) bool {
	return p.Same(&r.Requester) || (p != nil && len(reviewerGroups(&r.Setting, *p)) > 0)
}

// ApprovalCount is the number of approving reviews so far.
func (r *Request) ApprovalCount() int { return countVerdict(r, VerdictApprove) }

// Binding is what a one-time approval is bound to: the request that
// asked for it.
type Binding struct {
	Method     string `json:"method"`
	Path       string `json:"path"`
	Route      string `json:"route,omitempty"`
	Model      string `json:"model,omitempty"`
	BodySHA256 string `json:"body_sha256"`
	// RequestID is the gateway request id of the call that created the
	// approval (informational; retries have other ids).
	RequestID string `json:"request_id,omitempty"`
}

// Review is one reviewer's decision.
type Review struct {
	Reviewer identity.Principal `json:"reviewer"`
	Verdict  Verdict            `json:"decision"`
	Reason   string             `json:"reason"`
	At       time.Time          `json:"at"`
}

// Request is an approval request: a one-time approval or a grant.
type Request struct {
	ID string `json:"id"`
	// Kind is one_time or grant (policy.ApprovalOneTime / ApprovalGrant).
	Kind  policy.ApprovalKind `json:"kind"`
	State State               `json:"state"`
	// Version increases with every stored change.
	Version int64 `json:"version"`
	// Requester is who asked (for gateway requests: the caller).
	Requester identity.Principal `json:"requester"`
	// SettingName names the policy approval setting; Setting is a copy
	// of it taken at creation (later policy reloads do not change it).
	SettingName string                 `json:"setting"`
	Setting     policy.ApprovalSetting `json:"setting_copy"`
	// Justification is the requester's reason for asking.
	Justification string `json:"justification"`
	// Binding is set for one_time requests.
	Binding *Binding `json:"binding,omitempty"`
	// Scope and GrantDuration are set for grants.
	Scope         *policy.GrantScope `json:"scope,omitempty"`
	GrantDuration time.Duration      `json:"grant_duration,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt ends the pending phase (CreatedAt + TTL).
	ExpiresAt time.Time `json:"expires_at"`
	Reviews   []Review  `json:"reviews,omitempty"`
	// DecidedAt is when the request left pending.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// Reason explains the final state (deny, cancel, revoke reason).
	Reason string `json:"reason,omitempty"`
	// ValidFrom and ValidUntil bound the approved phase: the grant's
	// validity, or how long an approved one-time approval stays usable.
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// UsedAt and UsedBy record the consumption of a one-time approval.
	UsedAt time.Time `json:"used_at,omitzero"`
	UsedBy string    `json:"used_by_request_id,omitempty"`
	// RevokedBy is who revoked a grant.
	RevokedBy *identity.Principal `json:"revoked_by,omitempty"`
}

// Clone returns a deep copy of r.
func (r *Request) Clone() *Request {
	c := *r
	c.Requester.Groups = slices.Clone(r.Requester.Groups)
	c.Setting.Reviewers = slices.Clone(r.Setting.Reviewers)
	c.Reviews = slices.Clone(r.Reviews)
	if r.Binding != nil {
		b := *r.Binding
		c.Binding = &b
	}
	if r.Scope != nil {
		s := *r.Scope
		c.Scope = &s
	}
	if r.RevokedBy != nil {
		p := *r.RevokedBy
		c.RevokedBy = &p
	}
	return &c
}

// Terminal reports whether the request can no longer change.
func (r *Request) Terminal() bool {
	switch r.State {
	case StatePending, StateApproved:
		return false
	}
	return true
}

// BindKey identifies identical requests. One-time: same setting,
// principal (issuer+subject), method, path, route, model and body hash.
// Grant: same setting and principal.
func (r *Request) BindKey() string {
	if r.Kind == policy.ApprovalGrant {
		return grantOpenKey(r.SettingName, r.Requester)
	}
	if r.Binding == nil {
		return ""
	}
	return bindKey(r.SettingName, r.Requester, r.Binding)
}

func bindKey(setting string, p identity.Principal, b *Binding) string {
	h := sha256.New()
	for _, s := range []string{"one_time", setting, p.Issuer, p.Subject, b.Method, b.Path, b.Route, b.Model, b.BodySHA256} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// OpenKey is unique among open requests: a one-time request while pending
// or approved-unused (identical retries find it), a grant request while
// pending (one open request per principal and setting). Empty when the
// request is not open; stores enforce uniqueness of non-empty keys.
func (r *Request) OpenKey() string {
	switch {
	case r.Kind == policy.ApprovalOneTime && (r.State == StatePending || r.State == StateApproved):
		return r.BindKey()
	case r.Kind == policy.ApprovalGrant && r.State == StatePending:
		return r.BindKey()
	}
	return ""
}

func grantOpenKey(setting string, p identity.Principal) string {
	h := sha256.New()
	for _, s := range []string{"grant", setting, p.Issuer, p.Subject} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DueAt is when the request expires if nothing else happens: ExpiresAt
// while pending, ValidUntil while approved, zero when terminal.
func (r *Request) DueAt() time.Time {
	switch r.State {
	case StatePending:
		return r.ExpiresAt
	case StateApproved:
		return r.ValidUntil
	}
	return time.Time{}
}

// Covers reports whether grant r covers a call to route, model and path
// (policy.GrantScope.Covers: each non-empty list must have a matching
// glob; a nil scope covers everything).
func (r *Request) Covers(route, model, p string) bool {
	if r.Scope == nil {
		return true
	}
	return r.Scope.Covers(route, model, p)
}

func globMatch(g, s string) bool { return policy.Glob(g, s) }

// hasMeta reports whether s holds glob metacharacters.
func hasMeta(s string) bool { return strings.ContainsAny(s, "*?") }
