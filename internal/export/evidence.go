package export

import (
	"context"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// Evidence records export monitoring in the audit log (A.8.16), so a
// report re-derives it from signed entries instead of metrics. Record
// appends one entry of kind (audit.KindExportDeadLettered …) with
// details; it must be safe for concurrent use. Its errors are logged by
// the caller and never stop delivery: the dead-letter file and the
// metrics still hold what happened.
type Evidence interface {
	Record(ctx context.Context, kind string, details map[string]any) error
}

// evidenceTimeout bounds one Record call on a sink's goroutine.
const evidenceTimeout = 5 * time.Second

// maxReasonLen bounds a receiver's refusal text in an entry (it comes
// from the receiver, which may echo parts of the event).
const maxReasonLen = 256

func boundReason(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxReasonLen], "") + "…"
}

// recordDeadLetters writes one export.dead_lettered entry per refused
// event: sink, uid, seq, kind and reason, never the event. A refused
// export.dead_lettered event gets none, so a receiver that refuses
// those cannot multiply them.
func (d *deadLetter) recordDeadLetters(sink string, evs []Event, reasons []string) error {
	if d.ev == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), evidenceTimeout)
	defer cancel()
	for i, ev := range evs {
		if ev.Kind == audit.KindExportDeadLettered {
			continue
		}
		details := map[string]any{"sink": sink, "uid": ev.UID, "seq": ev.Seq, "kind": ev.Kind, "reason": boundReason(reasons[i])}
		if err := d.ev.Record(ctx, audit.KindExportDeadLettered, details); err != nil {
			return err
		}
	}
	return nil
}
