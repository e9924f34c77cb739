package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// The components of the request path, as the gateway consumes them. Each
// is optional in Options; a nil one is a stage that is not configured.

// Authenticator verifies the credential on a request. Failures are
// *identity.Error values.
type Authenticator interface {
	Authenticate(r *http.Request) (*identity.Principal, error)
	// PrepareUpstreamHeaders strips client identity headers and the
	// credential from an outbound request and sets the assertion.
	PrepareUpstreamHeaders(h http.Header, assertion string)
}

// Asserter signs the identity assertion the upstream receives (it may
// hand out one signed earlier for the same principal and audience).
type Asserter interface {
	Assertion(p *identity.Principal, audience string) (string, error)
}

// PolicySource returns the policy in force (it may change on reload).
type PolicySource interface {
	Current() *policy.Policy
}

// AuditLog makes entries durable. An error means the entry may not be
// durable and the request must be refused. Append must not keep e once
// it has returned (audit.Log keeps a copy): the gateway reuses the
// admission entry's memory with the request's.
type AuditLog interface {
	Append(ctx context.Context, e *audit.Entry) (audit.Ref, error)
}

// AsyncAuditLog is an AuditLog that can also take an entry without the
// caller waiting for its durability (audit.Log.AppendAsync): it returns
// once the entry is handed over, or with an error (then done is never
// called); done is called exactly once with Append's result, from the
// log's goroutine, and must not block. The completion workers use it
// when the log offers it (decision 049).
type AsyncAuditLog interface {
	AppendAsync(ctx context.Context, e *audit.Entry, done func(audit.Ref, error)) error
}

// storeContext bounds one store call on the request path by
// timeouts.store, so that a stalled store answers 503 within it instead
// of hanging the request. Audit appends take g.auditDeadline's shared
// contexts instead (deadline.go).
func (g *Gateway) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.storeTimeout)
}

// admission is what the checks before forwarding decided.
type admission struct {
	principal *identity.Principal
	decision  policy.Decision
	facts     map[string]any
	model     string
	bodyHash  string
}

// authenticate verifies the caller from the request headers, before
// the body is read. It answers the request itself and returns false when
// the caller is refused.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, c *call) bool {
	if g.auth == nil {
		return true
	}
	p, err := g.auth.Authenticate(r)
	if err != nil {
		ie := identity.AsError(err)
		g.metrics.authFailures.WithLabelValues(authReason(ie)).Inc()
		closeUnread(w, r)
		g.refuseAuth(w, r, c, ie)
		return false
	}
	c.adm.principal = p
	return true
}

// admit runs policy, the approval gate and the durable admission record
// for an authenticated caller whose body has been read. It
// answers the request itself and returns false when the request must not
// be forwarded.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, c *call) bool {
	a := &c.adm
	if len(c.body) > 0 || g.audit != nil {
		sum := sha256.Sum256(c.body)
		a.bodyHash = hexString(sum[:])
	}
	wantFacts := c.route.profile == "openai" && len(c.body) > 0 && (g.policy != nil || g.audit != nil)
	checked := false
	if c.route.profile == "openai" && len(c.body) > 0 && isJSONContent(r.Header.Get("Content-Type")) {
		// An OpenAI-compatible API only takes JSON, and policy must see
		// typed values: say precisely what is wrong instead of letting
		// policy decide on an empty body or miss "8000" as a cap. The
		// same pass derives the facts (decision 041).
		facts, err := policy.CheckOpenAIBodyFacts(c.body)
		if err != nil {
			var fe *policy.FieldTypeError
			if errors.As(err, &fe) {
				g.recordRefusal(r, c, audit.KindRequestRefused, http.StatusBadRequest, map[string]any{"reason": "invalid_field_type", "field": fe.Field})
				g.fail(w, c, apierr.BadRequest, "invalid request body: "+fe.Error())
				return false
			}
			detail := err.Error()
			if !json.Valid(c.body) {
				detail = jsonError(c.body)
			}
			g.recordRefusal(r, c, audit.KindRequestRefused, http.StatusBadRequest, map[string]any{"reason": "malformed_json"})
			g.fail(w, c, apierr.BadRequest, "request body is not valid JSON: "+detail)
			return false
		}
		if wantFacts {
			a.facts, checked = facts, true
		}
	}
	if wantFacts {
		if !checked {
			a.facts = policy.BodyFacts(c.body)
		}
		if m, ok := a.facts["model"].(string); ok {
			a.model = m
		}
	}
	if g.policy != nil {
		pol := g.policy.Current()
		in := policy.Input{
			Principal: a.principal,
			Request: policy.Request{
				Method:  r.Method,
				Path:    c.path,
				Host:    hostOnly(r.Host),
				Query:   r.URL.Query(),
				Headers: selectedHeaders(r.Header),
			},
			Route: policy.Route{Name: c.route.name, Profile: c.route.profile},
			Body:  a.facts,
			Now:   c.start,
		}
		if g.approvals != nil && a.principal != nil {
			sctx, cancel := g.storeContext(r.Context())
			grants, err := g.approvals.ActiveGrantsFor(sctx, a.principal, c.route.name, a.model, c.path)
			cancel()
			// Only a failure is news here: "no grant" is often answered
			// from the service's cache without reaching the store, so a
			// success must not clear a failing store's /readyz (the probe
			// or a gate call does).
			if err != nil && r.Context().Err() == nil {
				g.approvalHealth.note(err)
			}
			if err != nil {
				g.log.Error("reading active grants failed; request refused", "request_id", c.requestID, "err", err)
				g.fail(w, c, apierr.ApprovalUnavailable, "the approval store is unavailable; the request was not forwarded")
				return false
			}
			in.Grants = grants
		}
		a.decision = pol.Decide(&in)
		g.metrics.policyDecision.WithLabelValues(string(a.decision.Action), a.decision.Rule).Inc()
		if a.decision.EvalError != "" {
			g.log.Warn("policy rule failed to evaluate; denied", "request_id", c.requestID, "rule", a.decision.Rule, "err", a.decision.EvalError)
		}
		switch a.decision.Action {
		case policy.ActionAllow:
			if len(in.Grants) > 0 {
				// The caller holds a grant covering this request (route,
				// model, path): record it, so grant use is evidence.
				c.grantID = in.Grants[0].ID
			}
		case policy.ActionDeny:
			g.refusePolicy(w, r, c, apierr.Forbidden, a.decision.Reason)
			return false
		default: // require_approval
			if !g.gate(w, r, c) {
				return false
			}
		}
	}
	if err := g.chooseMasker(c); err != nil {
		g.log.Error("masking misconfigured; request refused", "request_id", c.requestID, "err", err)
		g.refusePolicy(w, r, c, apierr.MaskingMisconfigured, "the masking profile this request needs is not configured")
		return false
	}
	if g.auth != nil && g.asserter != nil && a.principal != nil {
		// Signed before the admission is made durable: a failure refuses
		// the request while nothing has been promised or forwarded.
		assertion, err := g.asserter.Assertion(a.principal, c.route.name)
		if err != nil {
			g.log.Error("signing the identity assertion failed; request refused", "request_id", c.requestID, "err", err)
			g.recordRefusal(r, c, audit.KindRequestRefused, apierr.Internal.Status(), map[string]any{"reason": "assertion_failed"})
			g.fail(w, c, apierr.Internal, "")
			return false
		}
		c.assertion = assertion
	}
	if !g.reserveRecording(w, r, c) {
		return false
	}
	if g.audit != nil {
		e := &c.admEntry
		g.fillEntry(e, r, c, audit.KindRequestAdmitted)
		e.BytesIn = int64(len(c.body))
		e.Params = g.params(c)
		ref, err := g.appendAudit(g.auditDeadline.context(), e)
		if err != nil {
			c.rec.Abort()
			g.metrics.auditRefused.Inc()
			g.log.Error("audit admission failed; request refused", "request_id", c.requestID, "err", err)
			g.fail(w, c, apierr.AuditUnavailable, "the audit log could not durably record this request; it was not forwarded")
			return false
		}
		c.admittedSeq = ref.Seq
	}
	return true
}

// complete records request.completed after the response has been sent.
// The caller already has the response, so a failure here is logged and
// counted; the admitted entry without completion stays visible as an
// incomplete request.
func (g *Gateway) complete(r *http.Request, c *call, sw *statusWriter) {
	rec, recLevel, recErr := c.rec, c.recLevel, c.recErr
	if g.audit == nil {
		if recLevel != "" {
			g.completeInBackground(completionJob{rec: rec, recLevel: recLevel, recErr: recErr})
		}
		return
	}
	e := g.entry(r, c, audit.KindRequestCompleted)
	e.Status = c.status
	e.BytesIn = int64(len(c.body))
	e.BytesOut = sw.bytes
	if sw.hash != nil {
		var sum [sha256.Size]byte
		e.ResponseSHA256 = hexString(sw.hash.Sum(sum[:0]))
	}
	e.Upstream = c.upstreamHdr
	e.Gateway = c.added
	e.Masking = g.maskActions(c)
	if c.outcome == "" && c.upstreamStalled() {
		c.outcome = audit.OutcomeUpstreamTimeout
	}
	g.maskingOutcome(r, c, e)
	e.Outcome = c.outcome
	if e.Outcome == "" {
		e.Outcome = audit.OutcomeOK
	}
	// The caller already has the response, so the handler does not wait
	// for this entry's fsync: a completion worker appends it and it joins
	// the log's next group commit (completion.go).
	g.completeInBackground(completionJob{e: e, rec: rec, recLevel: recLevel, recErr: recErr})
}

// maxPendingCompletions bounds the request.completed entries waiting for
// their group commit.
const maxPendingCompletions = 4096

// Drain waits until every request.completed entry handed to the audit log
// has been appended (or failed), or ctx ends. Call it after the listeners
// have shut down and before the audit log is closed.
func (g *Gateway) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { g.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// entry builds the common part of a request entry.
func (g *Gateway) entry(r *http.Request, c *call, kind string) *audit.Entry {
	e := new(audit.Entry)
	g.fillEntry(e, r, c, kind)
	return e
}

// fillEntry sets the common part of a request entry in e (zero).
func (g *Gateway) fillEntry(e *audit.Entry, r *http.Request, c *call, kind string) {
	a := &c.adm
	*e = audit.Entry{
		Kind:          kind,
		RequestID:     c.requestID,
		Instance:      g.cfg.Instance,
		Route:         c.route.name,
		Method:        r.Method,
		Path:          c.path,
		Model:         a.model,
		RequestSHA256: a.bodyHash,
		ApprovalID:    c.approvalID,
		GrantID:       c.grantID,
	}
	e.Principal = a.principal // the audit package records what it needs of it
	if a.decision.Action != "" {
		// One Decision for the request's entries (it changes only if an
		// approval decided again): the log keeps shallow copies of them,
		// so a Decision is never changed once built.
		d := audit.Decision{
			Action: string(a.decision.Action), Rule: a.decision.Rule,
			PolicyVersion: a.decision.Version, Reason: a.decision.Reason,
		}
		if c.auditDecision == nil || *c.auditDecision != d {
			nd := d
			c.auditDecision = &nd
		}
		e.Decision = c.auditDecision
	}
	if c.clientReqID {
		e.Details = map[string]any{"request_id_source": "client"}
	}
}

// refuseAuth answers 401/400/503 per RFC 6750 and records the refusal.
func (g *Gateway) refuseAuth(w http.ResponseWriter, r *http.Request, c *call, ie *identity.Error) {
	e := ie.APIError()
	g.recordRefusal(r, c, audit.KindRequestRefused, e.Code.Status(), map[string]any{"reason": e.Code.Type(), "description": e.Msg})
	g.failWith(w, c, e)
}

// refusePolicy answers a policy refusal with rule and reason and records
// it as request.denied.
func (g *Gateway) refusePolicy(w http.ResponseWriter, r *http.Request, c *call, code apierr.Code, msg string) {
	g.recordRefusal(r, c, audit.KindRequestDenied, code.Status(), nil)
	g.failWith(w, c, &apierr.Error{Code: code, Msg: msg, Rule: c.adm.decision.Rule})
}

// recordRefusal writes the refusal to the audit log (best effort: the
// request is refused whether or not the record succeeds).
func (g *Gateway) recordRefusal(r *http.Request, c *call, kind string, status int, details map[string]any) {
	if g.audit == nil {
		return
	}
	e := g.entry(r, c, kind)
	e.Status = status
	e.BytesIn = int64(len(c.body))
	for k, v := range details {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Details[k] = v
	}
	if _, err := g.appendAudit(g.auditDeadline.context(), e); err != nil {
		g.log.Error("audit: could not record refusal", "request_id", c.requestID, "kind", kind, "err", err)
	}
}

// hexString is hex.EncodeToString of a digest in one allocation (the
// string) instead of two.
func hexString(sum []byte) string {
	var buf [2 * sha256.Size]byte
	if len(sum) > sha256.Size {
		return hex.EncodeToString(sum)
	}
	return string(hex.AppendEncode(buf[:0], sum))
}

// isJSONContent reports whether a request Content-Type is JSON (or absent,
// as many clients of OpenAI-compatible APIs send none).
func isJSONContent(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(strings.ToLower(mt))
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// jsonError describes why body is not JSON, with the byte offset.
func jsonError(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error() + " (at byte " + strconv.FormatInt(se.Offset, 10) + ")"
	}
	if err != nil {
		return err.Error()
	}
	return "invalid JSON"
}

func authReason(e *identity.Error) string {
	if e.Code == "" {
		return "missing"
	}
	return e.Code
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return strings.ToLower(host)
	}
	return strings.ToLower(h)
}

// policyHeaders are the request headers policy rules may look at.
var policyHeaders = []string{"Content-Type", "User-Agent", "Openai-Organization", "Openai-Project", "X-Warden-Justification"}

func selectedHeaders(h http.Header) map[string]string {
	var m map[string]string
	for _, k := range policyHeaders {
		if v := h.Get(k); v != "" {
			if m == nil {
				m = make(map[string]string, 4)
			}
			m[strings.ToLower(k)] = v
		}
	}
	return m
}
