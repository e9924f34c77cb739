package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/wardenhq/warden/internal/audit"
)

// AuditProber is implemented by an AuditLog that can tell, without
// recording anything, whether its store answers (audit.Log does).
type AuditProber interface {
	Probe(ctx context.Context) error
}

// ApprovalProber is implemented by an ApprovalGate that can tell, without
// changing anything, whether its store answers (approval.Service does).
type ApprovalProber interface {
	Probe(ctx context.Context) error
}

// storeHealth is what /readyz knows of a store on the request path: a
// call that failed (other than by the caller going away) marks it
// failing, and the store stays not ready until a probe, or a later call,
// succeeds.
type storeHealth struct{ failing atomic.Bool }

// note records the result of a store call made for a request.
func (h *storeHealth) note(err error) {
	if err == nil {
		if h.failing.Load() { // no store (a shared cache line's write) per success
			h.failing.Store(false)
		}
	} else if !errors.Is(err, context.Canceled) {
		h.failing.Store(true)
	}
}

// ready is the /readyz check: nil while the store has not failed;
// after a failure, the probes' verdict (all must pass), which clears the
// failure when they do. what names the store in the error.
func (h *storeHealth) ready(ctx context.Context, what string, probes ...func(context.Context) error) error {
	if !h.failing.Load() {
		return nil
	}
	if len(probes) == 0 {
		return errors.New(what + " cannot be used")
	}
	for _, p := range probes {
		if err := p(ctx); err != nil {
			return fmt.Errorf("%s cannot be used: %w", what, err)
		}
	}
	h.failing.Store(false)
	return nil
}

// appendAudit appends e and keeps track of whether the audit log can
// write: a failed append makes /readyz 503 until the store answers again.
func (g *Gateway) appendAudit(ctx context.Context, e *audit.Entry) (audit.Ref, error) {
	ref, err := g.audit.Append(ctx, e)
	g.auditHealth.note(err)
	return ref, err
}

// AuditReady is the /readyz check of the audit log: while appends fail,
// the gateway is not ready (every request would get 503
// audit_unavailable); it turns ready again once the store answers a
// probe (the write probe, when one is configured, and the log's read
// probe), or an append succeeds.
func (g *Gateway) AuditReady(ctx context.Context) error {
	if g.audit == nil {
		return nil
	}
	var probes []func(context.Context) error
	if g.auditWrite != nil {
		probes = append(probes, g.auditWrite)
	}
	if p, ok := g.audit.(AuditProber); ok {
		probes = append(probes, p.Probe)
	}
	return g.auditHealth.ready(ctx, "the audit log", probes...)
}

// ApprovalReady is the /readyz check of the approval store, with the
// audit log's logic: while its calls fail (each such request gets 503
// approval_unavailable), the gateway is not ready; it turns ready again
// once the store answers a probe, or a call succeeds.
func (g *Gateway) ApprovalReady(ctx context.Context) error {
	if g.approvals == nil {
		return nil
	}
	var probes []func(context.Context) error
	if p, ok := g.approvals.(ApprovalProber); ok {
		probes = append(probes, p.Probe)
	}
	return g.approvalHealth.ready(ctx, "the approval store", probes...)
}
