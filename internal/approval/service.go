package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// Auditor appends audit entries durably (audit.Log implements it). An
// error means the entry may not be durable; the transition then fails.
type Auditor interface {
	Append(ctx context.Context, e *audit.Entry) (audit.Ref, error)
}

// Option configures New.
type Option func(*Service)

// WithConfig sets the configuration (defaults are applied).
func WithConfig(c Config) Option { return func(s *Service) { s.cfg = c } }

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithInstance sets the instance name recorded in audit entries.
func WithInstance(name string) Option { return func(s *Service) { s.instance = name } }

// Service runs the approval workflow: the gate ([Service.Check],
// [Service.Hold]), reviews, grants, expiry and notifications. Safe for
// concurrent use. Call [Service.Run] in a goroutine for the sweeper,
// cross-replica wake-ups and webhook delivery.
type Service struct {
	store    Store
	auditor  Auditor
	cfg      Config
	now      func() time.Time
	log      *slog.Logger
	instance string

	hub           hub
	trans         transitions
	hooks         *notifier
	webhookClient *http.Client

	noGrantMu  sync.Mutex
	noGrant    map[string]time.Time // issuer\x00subject -> cached until
	noGrantGen uint64               // bumped when the cache is cleared
}

// New returns a Service on store, recording every transition with
// auditor.
func New(store Store, auditor Auditor, opts ...Option) *Service {
	s := &Service{store: store, auditor: auditor, now: time.Now, log: slog.Default(), noGrant: map[string]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	s.cfg.SetDefaults()
	s.hub.init()
	s.hooks = newNotifier(&s.cfg, s.log)
	if s.webhookClient != nil {
		s.hooks.client = s.webhookClient
	}
	return s
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Run expires due requests every SweepInterval, listens for changes made
// by other replicas (if the store is a Watcher) and delivers webhooks,
// until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if w, ok := s.store.(Watcher); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Watch(ctx, s.remoteChange); err != nil && ctx.Err() == nil {
				s.log.Error("approval: change feed stopped; held requests fall back on polling", "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.hooks.run(ctx)
	}()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		if n, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("approval: sweep failed", "err", err, "expired", n)
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// Sweep expires every due request now and returns how many it expired.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	n := 0
	for {
		ids, err := s.store.Due(ctx, s.now(), 100)
		if err != nil {
			return n, fmt.Errorf("approval: sweep: %w", err)
		}
		progress := 0
		for _, id := range ids {
			ok, err := s.expireID(ctx, id)
			if err != nil {
				return n, err
			}
			if ok {
				n++
				progress++
			}
		}
		if len(ids) < 100 || progress == 0 {
			return n, nil
		}
	}
}

// remoteChange is the Watcher callback.
func (s *Service) remoteChange(id string) {
	s.hub.fire(id)
	s.clearNoGrant()
}

// Stats are counters for metrics and tests.
type Stats struct {
	// WebhooksQueued, WebhooksDelivered, WebhooksDropped (queue full),
	// WebhooksFailed (gave up after retries) and WebhookAttempts count
	// notification deliveries.
	WebhooksQueued, WebhooksDelivered, WebhooksDropped, WebhooksFailed, WebhookAttempts int64
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats { return s.hooks.stats() }

// ---- reading ----

// probeID is an id no request has (ids are random hex), looked up by
// Probe.
const probeID = "readyz-probe"

// Probe reports whether the store answers, changing nothing: it looks up
// a request that does not exist, so a not-found answer is healthy and
// any other error (a stalled or closed store) is returned. The gateway's
// /readyz uses it after a failed call.
func (s *Service) Probe(ctx context.Context) error {
	if _, err := s.store.Get(ctx, probeID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("approval: probe: %w", err)
	}
	return nil
}

// Get returns request id, expiring it first if it is due.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	r, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if due(r, s.now()) {
		if _, err := s.expireID(ctx, id); err != nil {
			return nil, err
		}
		return s.store.Get(ctx, id)
	}
	return r, nil
}

// GetVisible returns request id if p may see it (see
// Request.VisibleTo); a request p may not see is not found, so its
// existence is not revealed.
func (s *Service) GetVisible(ctx context.Context, p *identity.Principal, id string) (*Request, error) {
	r, err := s.Get(ctx, id)
	if err == nil && !r.VisibleTo(p) {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) {
		return nil, errorf(CodeNotFound, "no approval request %s", id)
	}
	return r, err
}

// List returns requests matching f, newest first, expiring due ones.
func (s *Service) List(ctx context.Context, f Filter) ([]*Request, error) {
	rs, err := s.store.List(ctx, f)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := rs[:0]
	for _, r := range rs {
		if due(r, now) {
			if _, err := s.expireID(ctx, r.ID); err != nil {
				return nil, err
			}
			if r, err = s.store.Get(ctx, r.ID); err != nil {
				return nil, err
			}
			if f.State != "" && r.State != f.State {
				continue
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// ---- transitions ----

// expireID expires request id if it is due; it reports whether it did.
func (s *Service) expireID(ctx context.Context, id string) (bool, error) {
	_, err := s.transition(ctx, id, nil, "", func(r *Request, now time.Time) ([]string, error) {
		return expire(r, now), nil
	})
	if errors.Is(err, errStale) {
		return false, nil
	}
	return err == nil, err
}

// transition runs op on the stored request inside one store transaction,
// after expiring it if due, and records the resulting audit entries
// before commit. actor is recorded as the entry principal (nil: the
// system). If the request was due, the expiry is committed and a conflict
// error returned instead of running op.
func (s *Service) transition(ctx context.Context, id string, actor *identity.Principal, requestID string, op func(r *Request, now time.Time) ([]string, error)) (*Request, error) {
	var kinds []string
	expired := false
	now := s.now()
	r, err := s.store.Update(ctx, id, func(r *Request) error {
		kinds, expired = nil, false
		who := actor
		if due(r, now) {
			kinds, expired, who = expire(r, now), true, nil
		} else {
			k, err := op(r, now)
			if err != nil {
				return err
			}
			kinds = k
		}
		if len(kinds) == 0 {
			return errStale
		}
		return s.record(ctx, r, kinds, who, requestID)
	})
	if err != nil {
		return nil, err
	}
	s.changed(r, kinds)
	if expired && actor != nil {
		return r, errorf(CodeConflict, "request %s has expired", id)
	}
	return r, nil
}

// insert stores a new request, recording approval.requested first.
func (s *Service) insert(ctx context.Context, r *Request, requestID string) error {
	err := s.store.Insert(ctx, r, func() error {
		return s.record(ctx, r, []string{KindRequested}, &r.Requester, requestID)
	})
	if err != nil {
		return err
	}
	s.changed(r, []string{KindRequested})
	return nil
}

// changed runs after a committed transition: wake waiters, drop cached
// "no grant" answers, notify webhooks.
func (s *Service) changed(r *Request, kinds []string) {
	s.hub.fire(r.ID)
	s.trans.add(kinds)
	if slices.Contains(kinds, KindGrantOn) {
		s.clearNoGrant()
	}
	for _, k := range kinds {
		s.hooks.enqueue(k, r, s.reviewURL(r.ID), s.now())
	}
}

// record appends one audit entry per kind. Any failure fails the
// transition (fail closed).
func (s *Service) record(ctx context.Context, r *Request, kinds []string, actor *identity.Principal, requestID string) error {
	for _, k := range kinds {
		e := s.entry(k, r, actor, requestID)
		if _, err := s.auditor.Append(ctx, e); err != nil {
			return fmt.Errorf("approval: record %s for %s: %w", k, r.ID, err)
		}
	}
	return nil
}

// auditPrincipal is the actor an entry records: nil for none (the
// sweeper's expiries).
func auditPrincipal(p *identity.Principal) *identity.Principal {
	if p == nil || (p.Issuer == "" && p.Subject == "") {
		return nil
	}
	return p
}

// entry builds the audit entry of one transition kind.
func (s *Service) entry(kind string, r *Request, actor *identity.Principal, requestID string) *audit.Entry {
	e := &audit.Entry{
		Kind:       kind,
		Time:       s.now(),
		Instance:   s.instance,
		RequestID:  requestID,
		Principal:  auditPrincipal(actor),
		ApprovalID: r.ID,
	}
	d := map[string]any{
		"setting":       r.SettingName,
		"approval_kind": string(r.Kind),
		"state":         string(r.State),
	}
	if actor == nil || !actor.Same(&r.Requester) {
		d["requester"] = r.Requester.Issuer + " " + r.Requester.Subject
	}
	if r.Kind == policy.ApprovalGrant {
		e.GrantID = r.ID
	}
	if b := r.Binding; b != nil {
		e.Method, e.Path, e.Route, e.Model, e.RequestSHA256 = b.Method, b.Path, b.Route, b.Model, b.BodySHA256
		// An entry no call wrote (a review, the approval, a denial,
		// cancellation or expiry) names the call the one-time approval
		// was opened for, like the bound method, path and body hash
		// above, so the request's entries show its whole approval.
		if e.RequestID == "" {
			e.RequestID = b.RequestID
		}
	}
	switch kind {
	case KindRequested:
		d["justification"] = r.Justification
		d["expires_at"] = r.ExpiresAt.UTC().Format(time.RFC3339Nano)
		d["reviewers"] = strings.Join(r.Setting.Reviewers, ",")
		d["min_approvals"] = r.Setting.MinApprovals
		d["one_per_group"] = r.Setting.OnePerGroup
		if r.Scope != nil {
			d["scope"] = scopeString(r.Scope)
			d["grant_duration"] = r.GrantDuration.String()
		}
	case KindReviewed:
		rv := r.Reviews[len(r.Reviews)-1]
		d["decision"] = string(rv.Verdict)
		d["reason"] = rv.Reason
		d["approvals"] = countVerdict(r, VerdictApprove)
		d["min_approvals"] = r.Setting.MinApprovals
	case KindApproved:
		var by []string
		for _, rv := range r.Reviews {
			if rv.Verdict == VerdictApprove {
				by = append(by, rv.Reviewer.Issuer+" "+rv.Reviewer.Subject)
			}
		}
		d["approved_by"] = strings.Join(by, "; ")
		d["valid_until"] = r.ValidUntil.UTC().Format(time.RFC3339Nano)
	case KindGrantOn:
		d["valid_from"] = r.ValidFrom.UTC().Format(time.RFC3339Nano)
		d["valid_until"] = r.ValidUntil.UTC().Format(time.RFC3339Nano)
		if r.Scope != nil {
			d["scope"] = scopeString(r.Scope)
		}
	case KindDenied, KindCancelled, KindRevoked, KindExpired, KindGrantOff:
		d["reason"] = r.Reason
	case KindUsed:
		d["used_by_request_id"] = r.UsedBy
	}
	e.Details = d
	return e
}

func countVerdict(r *Request, v Verdict) int {
	n := 0
	for _, rv := range r.Reviews {
		if rv.Verdict == v {
			n++
		}
	}
	return n
}

func scopeString(sc *policy.GrantScope) string {
	part := func(name string, l []string) string {
		if len(l) == 0 {
			return name + "=*"
		}
		return name + "=" + strings.Join(l, ",")
	}
	return part("routes", sc.Routes) + " " + part("models", sc.Models) + " " + part("paths", sc.Paths)
}

// ReviewURL is the link to request id under approvals.review_url_base,
// or "" when none is configured.
func (s *Service) ReviewURL(id string) string { return s.reviewURL(id) }

func (s *Service) reviewURL(id string) string {
	if s.cfg.ReviewURLBase == "" {
		return ""
	}
	return strings.TrimSuffix(s.cfg.ReviewURLBase, "/") + "/v1/approvals/" + id
}

func newID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("approval: new id: %w", err)
	}
	return u.String(), nil
}

// normalise returns a copy of setting with the policy defaults applied
// (the policy package applies them too; this guards direct callers).
func normalise(setting *policy.ApprovalSetting) policy.ApprovalSetting {
	c := *setting
	c.Reviewers = slices.Clone(setting.Reviewers)
	c.Scope = policy.GrantScope{Routes: slices.Clone(setting.Scope.Routes), Models: slices.Clone(setting.Scope.Models), Paths: slices.Clone(setting.Scope.Paths)}
	if c.Kind == "" {
		c.Kind = policy.ApprovalOneTime
	}
	if c.Mode == "" {
		c.Mode = policy.ApprovalHold
	}
	if c.MinApprovals < 1 {
		c.MinApprovals = 1
	}
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	if c.HoldTimeout <= 0 {
		c.HoldTimeout = 10 * time.Minute
	}
	if c.Kind == policy.ApprovalGrant && c.GrantDuration <= 0 {
		c.GrantDuration = time.Hour
	}
	return c
}

func checkPrincipal(p *identity.Principal) error {
	if p == nil || p.Issuer == "" || p.Subject == "" {
		return errorf(CodeUnauthenticated, "a verified identity is required")
	}
	return nil
}

// ---- actions of people (admin API) ----

// GrantRequest is a person's request for a just-in-time grant.
type GrantRequest struct {
	// SettingName names the policy approval setting (kind grant).
	SettingName string
	// Setting is the current setting of that name.
	Setting *policy.ApprovalSetting
	// Justification is required.
	Justification string
	// Scope optionally narrows the setting's scope: each entry must equal
	// one of the setting's globs, or be a literal the setting's globs
	// match. Nil means the setting's scope.
	Scope *policy.GrantScope
	// Duration optionally shortens the grant (at most the setting's
	// GrantDuration).
	Duration time.Duration
}

// RequestGrant opens a grant request for actor. A pending request of the
// same actor for the same setting is a conflict (its id is in the
// message).
func (s *Service) RequestGrant(ctx context.Context, actor *identity.Principal, g GrantRequest) (*Request, error) {
	if err := checkPrincipal(actor); err != nil {
		return nil, err
	}
	if g.Setting == nil {
		return nil, errorf(CodeNotFound, "no approval setting %q", g.SettingName)
	}
	set := normalise(g.Setting)
	if set.Kind != policy.ApprovalGrant {
		return nil, errorf(CodeInvalid, "approval setting %q is for one-time approvals, which the gateway opens for a specific request; only grants can be requested", g.SettingName)
	}
	just := cleanText(g.Justification)
	if just == "" {
		return nil, errorf(CodeInvalid, "a justification is required")
	}
	scope := set.Scope
	if g.Scope != nil {
		var err error
		if scope, err = narrow(set.Scope, *g.Scope); err != nil {
			return nil, err
		}
	}
	dur := set.GrantDuration
	switch {
	case g.Duration < 0:
		return nil, errorf(CodeInvalid, "duration must not be negative")
	case g.Duration > dur:
		return nil, errorf(CodeInvalid, "duration %s exceeds the setting's grant_duration %s", g.Duration, dur)
	case g.Duration > 0:
		dur = g.Duration
	}
	r, err := s.newRequest(actor.Snapshot(), g.SettingName, set, just)
	if err != nil {
		return nil, err
	}
	r.Scope, r.GrantDuration = &scope, dur
	if err := s.insert(ctx, r, ""); err != nil {
		if errors.Is(err, ErrDuplicate) {
			if o, gerr := s.store.Open(ctx, r.OpenKey()); gerr == nil {
				return nil, errorf(CodeConflict, "a grant request for %q is already pending: %s", g.SettingName, o.ID)
			}
			return nil, errorf(CodeConflict, "a grant request for %q is already pending", g.SettingName)
		}
		return nil, err
	}
	return r, nil
}

// narrow checks that want is within have (see GrantRequest.Scope).
func narrow(have, want policy.GrantScope) (policy.GrantScope, error) {
	check := func(name string, have, want []string) ([]string, error) {
		if len(want) == 0 {
			return slices.Clone(have), nil
		}
		for _, w := range want {
			ok := len(have) == 0
			for _, h := range have {
				if w == h || (!hasMeta(w) && globMatch(h, w)) {
					ok = true
				}
			}
			if !ok {
				return nil, errorf(CodeInvalid, "scope %s entry %q is outside the setting's scope", name, w)
			}
		}
		return slices.Clone(want), nil
	}
	var out policy.GrantScope
	var err error
	if out.Routes, err = check("routes", have.Routes, want.Routes); err != nil {
		return out, err
	}
	if out.Models, err = check("models", have.Models, want.Models); err != nil {
		return out, err
	}
	out.Paths, err = check("paths", have.Paths, want.Paths)
	return out, err
}

func (s *Service) newRequest(p identity.Principal, name string, set policy.ApprovalSetting, justification string) (*Request, error) {
	id, err := newID()
	if err != nil {
		return nil, err
	}
	now := s.now()
	return &Request{
		ID: id, Kind: set.Kind, State: StatePending, Requester: p,
		SettingName: name, Setting: set, Justification: justification,
		CreatedAt: now, ExpiresAt: now.Add(set.TTL),
	}, nil
}

// Review records actor's verdict with a reason. See the package
// documentation for the rules (separation of duties, reviewer groups,
// one review per reviewer, deny wins, thresholds).
func (s *Service) Review(ctx context.Context, actor *identity.Principal, id string, v Verdict, reason string) (*Request, error) {
	if err := checkPrincipal(actor); err != nil {
		return nil, err
	}
	p := actor.Snapshot()
	var refused *Request
	out, err := s.transition(ctx, id, &p, "", func(r *Request, now time.Time) ([]string, error) {
		kinds, err := review(r, p, v, reason, now)
		if CodeOf(err) == CodeForbidden {
			c := *r
			refused = &c
		}
		return kinds, err
	})
	if refused != nil {
		s.recordRefusedReview(ctx, refused, p, v, err)
	}
	return out, err
}

// recordRefusedReview appends approval.review_refused for a review the
// rules refused (self-approval, not a reviewer): an attempt to get around
// separation of duties is evidence (ISO 27001 A.8.2) even though nothing
// changed. The refusal stands whether or not the entry is written.
func (s *Service) recordRefusedReview(ctx context.Context, r *Request, actor identity.Principal, v Verdict, refusal error) {
	e := s.entry(KindReviewRefused, r, &actor, "")
	e.Details["decision"] = string(v)
	e.Details["reason"] = refusal.Error()
	e.Details["self"] = actor.Same(&r.Requester)
	if _, err := s.auditor.Append(ctx, e); err != nil {
		s.log.Error("approval: could not record a refused review", "id", r.ID, "err", err)
	}
}

// Approve is Review with VerdictApprove.
func (s *Service) Approve(ctx context.Context, actor *identity.Principal, id, reason string) (*Request, error) {
	return s.Review(ctx, actor, id, VerdictApprove, reason)
}

// Deny is Review with VerdictDeny.
func (s *Service) Deny(ctx context.Context, actor *identity.Principal, id, reason string) (*Request, error) {
	return s.Review(ctx, actor, id, VerdictDeny, reason)
}

// Cancel withdraws a pending request; only its requester may.
func (s *Service) Cancel(ctx context.Context, actor *identity.Principal, id, reason string) (*Request, error) {
	if err := checkPrincipal(actor); err != nil {
		return nil, err
	}
	p := actor.Snapshot()
	return s.transition(ctx, id, &p, "", func(r *Request, now time.Time) ([]string, error) {
		return cancel(r, p, reason, now)
	})
}

// Revoke ends an active grant; the holder or a reviewer of its setting
// may, with a reason. It takes effect on the next request.
func (s *Service) Revoke(ctx context.Context, actor *identity.Principal, id, reason string) (*Request, error) {
	if err := checkPrincipal(actor); err != nil {
		return nil, err
	}
	p := actor.Snapshot()
	return s.transition(ctx, id, &p, "", func(r *Request, now time.Time) ([]string, error) {
		return revoke(r, p, reason, now)
	})
}

// ---- notification hub (in-process wake-ups) ----

type hub struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

func (h *hub) init() { h.ch = map[string]chan struct{}{} }

// wait returns a channel closed at the next change of id.
func (h *hub) wait(id string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.ch[id]
	if !ok {
		c = make(chan struct{})
		h.ch[id] = c
	}
	return c
}

// fire wakes the waiters of id ("" wakes everyone).
func (h *hub) fire(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, c := range h.ch {
		if id == "" || k == id {
			close(c)
			delete(h.ch, k)
		}
	}
}
