package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// ApprovalGate is the approval workflow as the request path uses it.
type ApprovalGate interface {
	// Check looks for a usable approval or grant, or opens/finds the
	// pending request for this call.
	Check(ctx context.Context, g approval.GateRequest) (approval.Outcome, error)
	// HoldAlive waits for a pending request's decision, calling keepAlive
	// every `every` in the calling goroutine.
	HoldAlive(ctx context.Context, g approval.GateRequest, id string, every time.Duration, keepAlive func()) (approval.Outcome, error)
	// ActiveGrantsFor returns the caller's active grants (policy input).
	ActiveGrantsFor(ctx context.Context, p *identity.Principal, route, model, path string) ([]policy.Grant, error)
}

// holdKeepAlive is how often a held request gets a "102 Processing".
const holdKeepAlive = 15 * time.Second

// gate runs the approval workflow for a require_approval decision. It
// answers the request itself and returns false unless the call may now be
// forwarded (with its approval or grant id recorded).
func (g *Gateway) gate(w http.ResponseWriter, r *http.Request, c *call) bool {
	d := &c.adm.decision
	if g.approvals == nil || d.Approval == nil || c.adm.principal == nil {
		g.refusePolicy(w, r, c, apierr.ApprovalRequired,
			"this request needs an approval ("+d.ApprovalName+") and no approval workflow is configured")
		return false
	}
	gr := approval.GateRequest{
		Principal: c.adm.principal, SettingName: d.ApprovalName, Setting: d.Approval,
		RequestID: c.requestID, Method: r.Method, Path: c.path, Route: c.route.name,
		Model: c.adm.model, BodySHA256: c.adm.bodyHash,
		Justification: r.Header.Get(approval.JustificationHeader),
	}
	cctx, cancel := g.storeContext(r.Context())
	out, err := g.approvals.Check(cctx, gr)
	cancel()
	if r.Context().Err() == nil {
		g.approvalHealth.note(err)
	}
	if err == nil && out.Decision == approval.Pending && d.Approval.Mode == policy.ApprovalHold {
		hctx, cancel := context.WithTimeout(r.Context(), d.Approval.HoldTimeout)
		g.log.Info("request held for approval", "request_id", c.requestID, "approval_id", out.ApprovalID)
		id := out.ApprovalID
		out, err = g.approvals.HoldAlive(hctx, gr, id, holdKeepAlive, func() { w.WriteHeader(http.StatusProcessing) })
		cancel()
		if err != nil && hctx.Err() != nil && r.Context().Err() == nil {
			// Hold timeout: the request stays pending; the caller may retry.
			out, err = approval.Outcome{Decision: approval.Pending, ApprovalID: id, RetryAfter: 30 * time.Second}, nil
		}
	}
	if err != nil {
		if r.Context().Err() != nil {
			c.status = 499
			return false
		}
		g.log.Error("approval gate failed; request refused", "request_id", c.requestID, "err", err)
		g.fail(w, c, apierr.ApprovalUnavailable, "the approval workflow is unavailable; the request was not forwarded")
		return false
	}
	c.approvalID, c.grantID = out.ApprovalID, out.GrantID
	switch out.Decision {
	case approval.Proceed:
		return true
	case approval.Denied:
		reason := out.Reason
		if reason == "" {
			reason = "the approval request was denied"
		}
		g.refusePolicy(w, r, c, apierr.Forbidden, reason)
		return false
	default:
		g.pendingAnswer(w, r, c, out)
		return false
	}
}

// pendingAnswer is the async-mode answer: 202 with the approval id, the
// reviewers' link and Retry-After; the identical request, retried once
// approved, runs.
func (g *Gateway) pendingAnswer(w http.ResponseWriter, r *http.Request, c *call, out approval.Outcome) {
	g.recordRefusal(r, c, audit.KindRequestPendingApproval, http.StatusAccepted, map[string]any{"approval_setting": c.adm.decision.ApprovalName})
	c.status = http.StatusAccepted
	ra := int(out.RetryAfter.Seconds())
	if ra < 1 {
		ra = 30
	}
	body := map[string]any{
		"status":      "pending_approval",
		"approval_id": out.ApprovalID,
		"message":     "this request needs approval (" + c.adm.decision.ApprovalName + "); retry the identical request once it is approved",
		"request_id":  c.requestID,
	}
	if out.ReviewURL != "" {
		body["review_url"] = out.ReviewURL
	}
	if !out.ExpiresAt.IsZero() {
		body["expires_at"] = out.ExpiresAt.UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", strconv.Itoa(ra))
	h.Set("Server-Timing", serverTiming(g.now().Sub(c.start)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(append(b, '\n'))
}
