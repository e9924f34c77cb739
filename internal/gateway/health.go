package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/wardenhq/warden/internal/audit"
)

// AuditProber is implemented by an AuditLog that can tell, without
// recording anything, whether its store answers (audit.Log does).
type AuditProber interface {
	Probe(ctx context.Context) error
}

// appendAudit appends e and keeps track of whether the audit log can
// write: a failed append makes /readyz 503 until the store answers again.
func (g *Gateway) appendAudit(ctx context.Context, e *audit.Entry) (audit.Ref, error) {
	ref, err := g.audit.Append(ctx, e)
	if err != nil && !errors.Is(err, context.Canceled) {
		g.auditFailing.Store(true)
	} else if err == nil {
		g.auditFailing.Store(false)
	}
	return ref, err
}

// AuditReady is the /readyz check of the audit log: while appends fail,
// the gateway is not ready (every request would get 503
// audit_unavailable); it turns ready again once the store answers a
// probe, or an append succeeds.
func (g *Gateway) AuditReady(ctx context.Context) error {
	if g.audit == nil || !g.auditFailing.Load() {
		return nil
	}
	p, ok := g.audit.(AuditProber)
	if !ok {
		return errors.New("the audit log cannot write")
	}
	if err := p.Probe(ctx); err != nil {
		return fmt.Errorf("the audit log cannot write: %w", err)
	}
	g.auditFailing.Store(false)
	return nil
}
