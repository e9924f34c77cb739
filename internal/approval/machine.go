package approval

import (
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// Every state change of a Request happens in this file: each function
// checks that the transition is allowed, mutates r, and returns the audit
// kinds to record (in order). The Service runs them inside
// Store.Update, so they always see the current stored request.

// Audit entry kinds written by this package: the audit catalogue's
// constants (audit.Kinds describes them).
const (
	KindRequested = audit.KindApprovalRequested
	KindReviewed  = audit.KindApprovalReviewed
	KindApproved  = audit.KindApprovalApproved
	KindDenied    = audit.KindApprovalDenied
	KindExpired   = audit.KindApprovalExpired
	KindCancelled = audit.KindApprovalCancelled
	KindUsed      = audit.KindApprovalUsed
	KindGrantOn   = audit.KindGrantActive
	KindRevoked   = audit.KindGrantRevoked
	KindGrantOff  = audit.KindGrantExpired
	// KindReviewRefused records a review the rules refused (the
	// requester approving their own request, a non-reviewer); the
	// request itself is unchanged.
	KindReviewRefused = audit.KindApprovalReviewRefused
)

// maxText bounds justifications and reasons.
const maxText = 1000

func cleanText(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxText {
		// Cut at a rune boundary.
		s = strings.ToValidUTF8(s[:maxText], "")
	}
	return s
}

// due reports whether r must expire at now.
func due(r *Request, now time.Time) bool {
	d := r.DueAt()
	return !d.IsZero() && !now.Before(d)
}

// expire moves a due request to expired.
func expire(r *Request, now time.Time) []string {
	if !due(r, now) {
		return nil
	}
	prev := r.State
	r.State = StateExpired
	switch {
	case prev == StatePending:
		r.DecidedAt = now
		r.Reason = "not decided within the request TTL"
		return []string{KindExpired}
	case r.Kind == policy.ApprovalGrant:
		r.Reason = "grant duration elapsed"
		return []string{KindGrantOff}
	default:
		r.Reason = "approved but not used within the request TTL"
		return []string{KindExpired}
	}
}

// reviewerGroups returns the setting's reviewer groups p belongs to.
func reviewerGroups(s *policy.ApprovalSetting, p identity.Principal) []string {
	var out []string
	for _, g := range s.Reviewers {
		if slices.Contains(p.Groups, g) && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// review records reviewer's verdict on a pending request.
func review(r *Request, reviewer identity.Principal, v Verdict, reason string, now time.Time) ([]string, error) {
	reason = cleanText(reason)
	switch {
	case v != VerdictApprove && v != VerdictDeny:
		return nil, errorf(CodeInvalid, "decision must be approve or deny")
	case reason == "":
		return nil, errorf(CodeInvalid, "a reason is required")
	case reviewer.Issuer == "" || reviewer.Subject == "":
		return nil, errorf(CodeUnauthenticated, "the reviewer has no identity")
	case reviewer.Same(&r.Requester):
		// Separation of duties: no exception for any group, admins included.
		return nil, errorf(CodeForbidden, "the requester cannot review their own request (cancel it instead)")
	case len(reviewerGroups(&r.Setting, reviewer)) == 0:
		return nil, errorf(CodeForbidden, "reviewer is in none of the reviewer groups of %q (%s)", r.SettingName, strings.Join(r.Setting.Reviewers, ", "))
	case r.State != StatePending:
		return nil, errorf(CodeConflict, "request %s is %s, not pending", r.ID, r.State)
	}
	for _, rv := range r.Reviews {
		if rv.Reviewer.Same(&reviewer) {
			return nil, errorf(CodeConflict, "reviewer has already reviewed request %s", r.ID)
		}
	}
	r.Reviews = append(r.Reviews, Review{Reviewer: reviewer, Verdict: v, Reason: reason, At: now})
	kinds := []string{KindReviewed}
	if v == VerdictDeny {
		// Deny wins, whatever approvals came before.
		r.State = StateDenied
		r.DecidedAt = now
		r.Reason = reason
		return append(kinds, KindDenied), nil
	}
	if approvalsMet(r) {
		r.State = StateApproved
		r.DecidedAt = now
		r.ValidFrom = now
		if r.Kind == policy.ApprovalGrant {
			r.ValidUntil = now.Add(r.GrantDuration)
			return append(kinds, KindApproved, KindGrantOn), nil
		}
		r.ValidUntil = now.Add(r.Setting.TTL)
		return append(kinds, KindApproved), nil
	}
	return kinds, nil
}

// approvalsMet reports whether r has enough approvals: MinApprovals
// distinct approving reviewers, and with OnePerGroup an assignment of
// that many approvers to distinct reviewer groups (bipartite matching).
func approvalsMet(r *Request) bool {
	min := max(r.Setting.MinApprovals, 1)
	var approvers [][]string
	for _, rv := range r.Reviews {
		if rv.Verdict == VerdictApprove {
			approvers = append(approvers, reviewerGroups(&r.Setting, rv.Reviewer))
		}
	}
	if !r.Setting.OnePerGroup {
		return len(approvers) >= min
	}
	return matching(approvers) >= min
}

// matching returns the size of a maximum matching of approvers to
// groups (Kuhn's augmenting paths; the sets are tiny).
func matching(approvers [][]string) int {
	owner := map[string]int{} // group -> approver index
	var try func(i int, seen map[string]bool) bool
	try = func(i int, seen map[string]bool) bool {
		for _, g := range approvers[i] {
			if seen[g] {
				continue
			}
			seen[g] = true
			j, taken := owner[g]
			if !taken || try(j, seen) {
				owner[g] = i
				return true
			}
		}
		return false
	}
	n := 0
	for i := range approvers {
		if try(i, map[string]bool{}) {
			n++
		}
	}
	return n
}

// cancel withdraws a pending request; only its requester may.
func cancel(r *Request, actor identity.Principal, reason string, now time.Time) ([]string, error) {
	switch {
	case !actor.Same(&r.Requester):
		return nil, errorf(CodeForbidden, "only the requester can cancel request %s", r.ID)
	case r.State != StatePending:
		return nil, errorf(CodeConflict, "request %s is %s, not pending", r.ID, r.State)
	}
	r.State = StateCancelled
	r.DecidedAt = now
	r.Reason = cleanText(reason)
	if r.Reason == "" {
		r.Reason = "cancelled by the requester"
	}
	return []string{KindCancelled}, nil
}

// use consumes an approved one-time approval for the bound request.
func use(r *Request, requestID string, now time.Time) ([]string, error) {
	switch {
	case r.Kind != policy.ApprovalOneTime:
		return nil, errorf(CodeConflict, "request %s is a grant, not a one-time approval", r.ID)
	case r.State != StateApproved:
		return nil, errorf(CodeConflict, "approval %s is %s, not approved", r.ID, r.State)
	}
	r.State = StateUsed
	r.UsedAt = now
	r.UsedBy = requestID
	return []string{KindUsed}, nil
}

// revoke ends an approved grant early. The grant holder may give it up;
// otherwise the actor must be a reviewer of the grant's setting. (A
// reviewer who is the holder is simply the holder.)
func revoke(r *Request, actor identity.Principal, reason string, now time.Time) ([]string, error) {
	reason = cleanText(reason)
	switch {
	case r.Kind != policy.ApprovalGrant:
		return nil, errorf(CodeConflict, "request %s is not a grant", r.ID)
	case reason == "":
		return nil, errorf(CodeInvalid, "a reason is required")
	case !actor.Same(&r.Requester) && len(reviewerGroups(&r.Setting, actor)) == 0:
		return nil, errorf(CodeForbidden, "only the grant holder or a reviewer of %q can revoke grant %s", r.SettingName, r.ID)
	case r.State != StateApproved:
		return nil, errorf(CodeConflict, "grant %s is %s, not active", r.ID, r.State)
	}
	r.State = StateRevoked
	r.Reason = reason
	p := actor
	r.RevokedBy = &p
	r.ValidUntil = now
	return []string{KindRevoked}, nil
}
