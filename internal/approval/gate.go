package approval

import (
	"context"
	"errors"
	"time"

	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// JustificationHeader is the request header a caller may use to justify
// a request that needs approval (see the package documentation).
const JustificationHeader = "X-Warden-Justification"

// DefaultJustification is recorded when a gateway-created request has
// no JustificationHeader.
const DefaultJustification = "requested by gateway"

// GateRequest describes a call that a policy rule sent to approval.
type GateRequest struct {
	// Principal is the verified caller. Required.
	Principal *identity.Principal
	// SettingName and Setting come from policy.Decision (ApprovalName,
	// Approval). Required.
	SettingName string
	Setting     *policy.ApprovalSetting
	// RequestID is the gateway request id (recorded in audit entries).
	RequestID string
	// Method, Path (normalised), Route, Model and BodySHA256 (hex) bind a
	// one-time approval and are matched against a grant's scope.
	Method, Path, Route, Model, BodySHA256 string
	// Justification is the X-Warden-Justification header, if any.
	Justification string
}

// Decision is what the gate tells the gateway.
type Decision string

// Decisions.
const (
	// Proceed: forward the request; record Outcome.ApprovalID/GrantID in
	// its audit entries.
	Proceed Decision = "proceed"
	// Pending: not approved (yet). Async mode: answer 202 with
	// Outcome.ApprovalID, ReviewURL and Retry-After. Hold mode: call
	// Hold.
	Pending Decision = "pending"
	// Denied: refuse with 403 and Outcome.Reason.
	Denied Decision = "denied"
)

// Outcome is the gate's answer.
type Outcome struct {
	Decision Decision
	// ApprovalID is the approval request involved (one-time approval
	// consumed, pending request, denied request, or the grant's request).
	ApprovalID string
	// GrantID is set when an active grant allowed the call.
	GrantID string
	// Created reports that this call opened a new request.
	Created bool
	// RetryAfter is the retry hint for Pending.
	RetryAfter time.Duration
	// ReviewURL is the reviewers' link for Pending (empty without a
	// configured review_url_base).
	ReviewURL string
	// ExpiresAt is when a pending request expires.
	ExpiresAt time.Time
	// Reason explains Denied.
	Reason string
}

func (s *Service) pending(r *Request, created bool) Outcome {
	return Outcome{Decision: Pending, ApprovalID: r.ID, Created: created, RetryAfter: s.cfg.RetryAfter, ReviewURL: s.reviewURL(r.ID), ExpiresAt: r.ExpiresAt}
}

// Check is the approval gate. For a one-time setting: an approved,
// unused approval bound to this exact call (principal, method, path,
// route, model, body hash) is consumed atomically — exactly once — and
// the call proceeds; a pending one is returned as Pending (identical
// retries never open a second request); a denial is returned as Denied
// until the denied request's TTL would have ended; otherwise a new
// request is opened (Pending, Created). For a grant setting: an active
// grant of the caller for this setting covering route, model and path
// lets the call proceed; otherwise as above, with one open grant request
// per caller and setting. Errors (store or audit failures) mean the call
// must be refused (fail closed).
func (s *Service) Check(ctx context.Context, g GateRequest) (Outcome, error) {
	if err := checkPrincipal(g.Principal); err != nil {
		return Outcome{}, err
	}
	if g.Setting == nil || g.SettingName == "" {
		return Outcome{}, errorf(CodeInvalid, "gate: no approval setting")
	}
	set := normalise(g.Setting)
	p := g.Principal.Snapshot()
	bind := &Binding{Method: g.Method, Path: g.Path, Route: g.Route, Model: g.Model, BodySHA256: g.BodySHA256, RequestID: g.RequestID}
	var key string
	if set.Kind == policy.ApprovalGrant {
		grants, err := s.store.Grants(ctx, p.Issuer, p.Subject, s.now())
		if err != nil {
			return Outcome{}, err
		}
		now := s.now()
		for _, gr := range grants {
			if gr.SettingName == g.SettingName && !due(gr, now) && gr.Covers(g.Route, g.Model, g.Path) {
				return Outcome{Decision: Proceed, ApprovalID: gr.ID, GrantID: gr.ID}, nil
			}
		}
		key = grantOpenKey(g.SettingName, p)
	} else {
		key = bindKey(g.SettingName, p, bind)
	}
	for attempt := 0; attempt < 5; attempt++ {
		r, err := s.store.LatestByBindKey(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return Outcome{}, err
		default:
			now := s.now()
			if due(r, now) {
				if _, err := s.expireID(ctx, r.ID); err != nil {
					return Outcome{}, err
				}
				continue
			}
			switch r.State {
			case StatePending:
				return s.pending(r, false), nil
			case StateApproved:
				if r.Kind == policy.ApprovalOneTime {
					out, err := s.consume(ctx, r.ID, key, p, g.RequestID)
					if errors.Is(err, ErrConflict) {
						continue // used or expired meanwhile: look again
					}
					return out, err
				}
			case StateDenied:
				if now.Before(r.ExpiresAt) {
					return Outcome{Decision: Denied, ApprovalID: r.ID, Reason: "approval denied: " + r.Reason}, nil
				}
			}
		}
		just := cleanText(g.Justification)
		if just == "" {
			just = DefaultJustification
		}
		nr, err := s.newRequest(p, g.SettingName, set, just)
		if err != nil {
			return Outcome{}, err
		}
		if set.Kind == policy.ApprovalGrant {
			sc := set.Scope
			nr.Scope, nr.GrantDuration = &sc, set.GrantDuration
		} else {
			nr.Binding = bind
		}
		err = s.insert(ctx, nr, g.RequestID)
		if errors.Is(err, ErrDuplicate) {
			continue // an identical call opened one at the same time
		}
		if err != nil {
			return Outcome{}, err
		}
		return s.pending(nr, true), nil
	}
	return Outcome{}, errorf(CodeConflict, "gate: approval state kept changing; try again")
}

// consume marks one-time approval id used by requestID, checking again
// inside the transaction that it is bound to this call.
func (s *Service) consume(ctx context.Context, id, key string, p identity.Principal, requestID string) (Outcome, error) {
	_, err := s.transition(ctx, id, &p, requestID, func(r *Request, now time.Time) ([]string, error) {
		if r.BindKey() != key || !r.Requester.Same(&p) {
			return nil, errorf(CodeForbidden, "approval %s is bound to another request", id)
		}
		return use(r, requestID, now)
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Decision: Proceed, ApprovalID: id}, nil
}

// Wait blocks until request id is no longer pending (approved, denied,
// expired, cancelled) or ctx is done, and returns the request. It wakes
// on changes made by this process at once, on changes made by other
// replicas through the store's change feed, and otherwise re-reads every
// PollInterval and at the request's expiry.
func (s *Service) Wait(ctx context.Context, id string) (*Request, error) {
	return s.wait(ctx, id, 0, nil)
}

// wait is Wait calling tick (in this goroutine) every `every` of wall
// time while it waits.
func (s *Service) wait(ctx context.Context, id string, every time.Duration, tick func()) (*Request, error) {
	var nextTick time.Time
	if tick != nil && every > 0 {
		nextTick = time.Now().Add(every)
	}
	for {
		ch := s.hub.wait(id) // subscribe before reading: no lost wake-up
		r, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if r.State != StatePending {
			return r, nil
		}
		d := min(s.cfg.PollInterval, max(r.ExpiresAt.Sub(s.now()), time.Millisecond))
		if !nextTick.IsZero() {
			d = min(d, max(time.Until(nextTick), 0))
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		if !nextTick.IsZero() && !time.Now().Before(nextTick) {
			tick()
			nextTick = time.Now().Add(every)
		}
	}
}

// holdFinish bounds the work Hold does after the wait (consuming the
// approval), which must not fail just because the hold deadline came.
const holdFinish = 10 * time.Second

// Hold is the hold-mode gate: after Check returned Pending with id, it
// waits (bounded by ctx; the gateway sets Setting.HoldTimeout and keeps
// the connection alive) until the request is decided, then runs Check
// again, which consumes the one-time approval or finds the grant. If ctx
// ends first it returns the Pending outcome (answer as in async mode).
// A request that ended denied, expired or cancelled gives Denied.
func (s *Service) Hold(ctx context.Context, g GateRequest, id string) (Outcome, error) {
	return s.HoldAlive(ctx, g, id, 0, nil)
}

// HoldAlive is Hold calling keepAlive every `every` while it waits, in
// the calling goroutine, so keepAlive may write to the caller's
// http.ResponseWriter — e.g. w.WriteHeader(http.StatusProcessing) sends
// an interim "102 Processing" that keeps idle-timeouts of clients and
// proxies from cutting the held connection (HTTP clients skip 1xx
// responses; Go's allows them within its header size limit).
func (s *Service) HoldAlive(ctx context.Context, g GateRequest, id string, every time.Duration, keepAlive func()) (Outcome, error) {
	r, err := s.wait(ctx, id, every, keepAlive)
	if err != nil {
		if ctx.Err() == nil {
			return Outcome{}, err
		}
		if r == nil {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), holdFinish)
			defer cancel()
			if r, err = s.store.Get(fctx, id); err != nil {
				return Outcome{}, err
			}
		}
		return s.pending(r, false), nil
	}
	switch r.State {
	case StateApproved:
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), holdFinish)
		defer cancel()
		out, err := s.Check(fctx, g)
		if err == nil && out.Decision == Pending && out.Created {
			// The approval was used by an identical call meanwhile; this
			// call waits again under the new request.
			return out, nil
		}
		return out, err
	case StateUsed:
		return Outcome{Decision: Denied, ApprovalID: r.ID, Reason: "approval " + r.ID + " was already used by request " + r.UsedBy}, nil
	default:
		reason := "approval " + string(r.State)
		if r.Reason != "" {
			reason += ": " + r.Reason
		}
		return Outcome{Decision: Denied, ApprovalID: r.ID, Reason: reason}, nil
	}
}

// ActiveGrantsFor returns p's active grants whose scope covers a call to
// route, model and path: the policy input (policy.Input.Grants; Scope is
// the approval setting name, which has_grant matches). Positive answers
// are always read from the store, so a revocation takes effect on the
// next request; "no grants at all" is cached for NoGrantCacheTTL and
// dropped whenever a grant becomes active (here or, through the change
// feed, on another replica).
func (s *Service) ActiveGrantsFor(ctx context.Context, p *identity.Principal, route, model, path string) ([]policy.Grant, error) {
	rs, err := s.activeGrants(ctx, p)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	var out []policy.Grant
	for _, r := range rs {
		if r.Covers(route, model, path) {
			out = append(out, policy.Grant{ID: r.ID, Scope: r.SettingName, Expires: r.ValidUntil})
		}
	}
	return out, nil
}

// ActiveGrants returns all of p's active grants, whatever they cover (for
// GET /v1/grants); see ActiveGrantsFor for the policy input.
func (s *Service) ActiveGrants(ctx context.Context, p *identity.Principal) ([]policy.Grant, error) {
	rs, err := s.activeGrants(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []policy.Grant
	for _, r := range rs {
		out = append(out, policy.Grant{ID: r.ID, Scope: r.SettingName, Expires: r.ValidUntil})
	}
	return out, nil
}

func (s *Service) activeGrants(ctx context.Context, p *identity.Principal) ([]*Request, error) {
	if p == nil || p.Subject == "" {
		return nil, nil
	}
	k := p.Issuer + "\x00" + p.Subject
	now := s.now()
	s.noGrantMu.Lock()
	until, ok := s.noGrant[k]
	gen := s.noGrantGen
	s.noGrantMu.Unlock()
	if s.cfg.NoGrantCacheTTL > 0 {
		if ok && now.Before(until) {
			return nil, nil
		}
	}
	rs, err := s.store.Grants(ctx, p.Issuer, p.Subject, now)
	if err != nil {
		return nil, err
	}
	var out []*Request
	for _, r := range rs {
		if r.State == StateApproved && !due(r, now) {
			out = append(out, r)
		}
	}
	if len(out) == 0 && s.cfg.NoGrantCacheTTL > 0 {
		s.noGrantMu.Lock()
		if len(s.noGrant) > 100000 {
			clear(s.noGrant)
		}
		if s.noGrantGen == gen { // no grant became active meanwhile
			s.noGrant[k] = now.Add(s.cfg.NoGrantCacheTTL)
		}
		s.noGrantMu.Unlock()
	}
	return out, nil
}

func (s *Service) clearNoGrant() {
	s.noGrantMu.Lock()
	clear(s.noGrant)
	s.noGrantGen++
	s.noGrantMu.Unlock()
}
