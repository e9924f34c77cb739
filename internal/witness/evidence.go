package witness

import (
	"context"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// Evidence records witness refusals in the audit log (A.8.16), so a
// report re-derives them from signed entries instead of metrics. Record
// appends one entry of kind with details; it must be safe for concurrent
// use. Errors are logged, never fatal: the metrics and log lines remain.
type Evidence interface {
	Record(ctx context.Context, kind string, details map[string]any) error
}

// evidenceTimeout bounds one Record call.
const evidenceTimeout = 5 * time.Second

// recordRefusal writes a witness.refused entry for the first refusal or
// rejection of a streak (until the witness cosigns again): the entry
// itself makes a checkpoint the witness will refuse too, and recording
// every refusal would feed on itself. It runs in its own goroutine, so a
// slow log never holds up a submission round.
func (s *Submitter) recordRefusal(p *peer, res Result) {
	if s.ev == nil || !p.refusing.CompareAndSwap(false, true) {
		return
	}
	reason := ""
	if res.Err != nil {
		reason = res.Err.Error()
		if len(reason) > 512 {
			reason = strings.ToValidUTF8(reason[:512], "") + "…"
		}
	}
	details := map[string]any{"witness": p.name, "url": p.c.URL, "size": res.Size, "result": res.Outcome, "reason": reason}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), evidenceTimeout)
		defer cancel()
		if err := s.ev.Record(ctx, audit.KindWitnessRefused, details); err != nil {
			s.log.Error("witness: could not record the refusal in the audit log (logged and counted here)", "witness", p.name, "err", err)
		}
	}()
}
