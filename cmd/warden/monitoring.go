package main

import (
	"context"
	"errors"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/witness"
)

// Compile-time checks: the audit appender is what export and witness
// take as evidence.
var (
	_ export.Evidence  = monitorEvidence{}
	_ witness.Evidence = monitorEvidence{}
)

// defaultExportStatusEvery is how often export.status is written while
// exporting (and once more at shutdown): often enough for an auditor to
// see lag over a day, rare enough to be noise-free in the log.
const defaultExportStatusEvery = 15 * time.Minute

// monitorEvidence appends A.8.16 monitoring entries (export dead letters
// and status, witness refusals) to the audit log. The witnesses start
// before the log opens, so the log is looked up at each call.
type monitorEvidence struct{ a *app }

// Record appends one entry of kind with details, stamped with this
// instance.
func (m monitorEvidence) Record(ctx context.Context, kind string, details map[string]any) error {
	if m.a == nil || m.a.audit == nil {
		return errors.New("the audit log is not open")
	}
	_, err := m.a.audit.Append(ctx, &audit.Entry{Kind: kind, Instance: m.a.cfg.Instance, Details: details})
	return err
}

// exportStatusDetails is the details of an export.status entry, or nil
// when this replica does not export.
func exportStatusDetails(ctx context.Context, svc *export.Service, reason string) (map[string]any, error) {
	rep, err := svc.Status(ctx)
	if err != nil || !rep.Exporting {
		return nil, err
	}
	sinks := make([]any, 0, len(rep.Sinks))
	for _, s := range rep.Sinks {
		sinks = append(sinks, map[string]any{
			"sink": s.Sink, "cursor": s.Cursor, "lag_entries": s.LagEntries, "lag_seconds": s.LagSeconds,
			"delivered": s.Delivered, "failed": s.Failed, "dead_lettered": s.DeadLettered,
		})
	}
	return map[string]any{"reason": reason, "log_size": rep.LogSize, "sinks": sinks}, nil
}

// recordExportStatus appends one export.status entry (when exporting).
func (a *app) recordExportStatus(ctx context.Context, reason string) {
	if a.export == nil || a.audit == nil {
		return
	}
	d, err := exportStatusDetails(ctx, a.export, reason)
	if err == nil && d != nil {
		err = monitorEvidence{a}.Record(ctx, audit.KindExportStatus, d)
	}
	if err != nil {
		a.log.Error("export: could not record export.status in the audit log", "err", err)
	}
}

// exportStatusLoop writes export.status every interval until ctx ends.
func (a *app) exportStatusLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			wctx, cancel := context.WithTimeout(ctx, a.cfg.Audit.WriteTimeout)
			a.recordExportStatus(wctx, "periodic")
			cancel()
		}
	}
}
