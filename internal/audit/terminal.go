package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Every request.admitted gets exactly one terminal entry (a kind with
// KindInfo.Terminal): request.completed, written by the gateway when the
// request ends however it ends, or request.abandoned, written by Open for
// an admission a crash left open. An admission and its terminal entry are
// paired by (instance, request id), in sequence order: a terminal entry
// closes the oldest open admission of its pair.

// OpenRequest is an admitted request without a terminal entry.
type OpenRequest struct {
	// Seq and ID identify the request.admitted entry.
	Seq int64
	ID  string
	// RequestID and Instance are the admission's.
	RequestID string
	Instance  string
	// Time is when it was admitted.
	Time time.Time
}

// requestKey pairs an admission with its terminal entry.
type requestKey struct{ instance, requestID string }

// requestFields are what pairing reads of an entry.
type requestFields struct {
	Kind      string    `json:"kind"`
	ID        string    `json:"id"`
	RequestID string    `json:"request_id"`
	Instance  string    `json:"instance"`
	Time      time.Time `json:"time"`
	Details   struct {
		// AdmittedInstance: an abandoned entry closes an admission of
		// another instance (the one that crashed).
		AdmittedInstance string `json:"admitted_instance"`
	} `json:"details"`
}

// openSet tracks admissions not yet closed while scanning a log in order.
type openSet struct {
	open  map[requestKey][]OpenRequest
	count int
}

func (o *openSet) add(seq int64, data []byte) error {
	var f requestFields
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("audit: entry %d: %w", seq, err)
	}
	switch {
	case f.Kind == KindRequestAdmitted:
		k := requestKey{f.Instance, f.RequestID}
		o.open[k] = append(o.open[k], OpenRequest{Seq: seq, ID: f.ID, RequestID: f.RequestID, Instance: f.Instance, Time: f.Time})
		o.count++
	case IsTerminal(f.Kind):
		inst := f.Instance
		if f.Kind == KindRequestAbandoned && f.Details.AdmittedInstance != "" {
			inst = f.Details.AdmittedInstance
		}
		k := requestKey{inst, f.RequestID}
		if l := o.open[k]; len(l) > 0 {
			if len(l) == 1 {
				delete(o.open, k)
			} else {
				o.open[k] = l[1:]
			}
			o.count--
		}
	}
	return nil
}

func (o *openSet) list() []OpenRequest {
	out := make([]OpenRequest, 0, o.count)
	for _, l := range o.open {
		out = append(out, l...)
	}
	sortOpen(out)
	return out
}

func sortOpen(l []OpenRequest) {
	for i := 1; i < len(l); i++ { // insertion sort: the list is short
		for j := i; j > 0 && l[j].Seq < l[j-1].Seq; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// OpenRequests returns the admissions in records [from, to) of st that
// have no terminal entry in [from, to), by ascending Seq. Over a whole
// log (from 0, to its size) of a stopped gateway the answer should be
// empty; admissions of a running gateway's requests in flight are open.
func OpenRequests(ctx context.Context, st Store, from, to int64) ([]OpenRequest, error) {
	o := &openSet{open: map[requestKey][]OpenRequest{}}
	for seq := from; seq < to; seq += verifyChunk {
		recs, err := st.ReadRecords(ctx, seq, min(seq+verifyChunk, to))
		if err != nil {
			return nil, fmt.Errorf("audit: open requests: %w", err)
		}
		for _, r := range recs {
			if err := o.add(r.Seq, r.Data); err != nil {
				return nil, err
			}
		}
	}
	return o.list(), nil
}

// Details keys of gateway.started and request.abandoned entries.
const (
	// detailClosedBefore (gateway.started): every admission before this
	// sequence number had a terminal entry when the gateway started,
	// except those of other live replicas listed as still open (their
	// smallest Seq is then the value). The next start scans from here.
	detailClosedBefore = "closed_before"
)

// lastClosedBefore finds the closed_before of the newest gateway.started
// entry before size, reading backwards; 0 if there is none.
func lastClosedBefore(ctx context.Context, st Store, size int64) (int64, error) {
	for to := size; to > 0; {
		from := max(0, to-verifyChunk)
		recs, err := st.ReadRecords(ctx, from, to)
		if err != nil {
			return 0, fmt.Errorf("audit: find last start: %w", err)
		}
		for i := len(recs) - 1; i >= 0; i-- {
			if kindOf(recs[i].Data) != KindGatewayStarted {
				continue
			}
			e, err := ParseEntry(recs[i].Seq, recs[i].Data)
			if err != nil {
				return 0, err
			}
			if n, ok := e.Details[detailClosedBefore].(json.Number); ok {
				if v, err := n.Int64(); err == nil && v >= 0 && v <= recs[i].Seq {
					return v, nil
				}
			}
			// A start by a version without the marker: scan from 0.
			return 0, nil
		}
		to = from
	}
	return 0, nil
}

// abandonOpen writes request.abandoned for the admissions a crash left
// open and returns the closed_before marker for gateway.started.
//
// The rule (docs/audit.md, "A terminal record for every request"):
//   - single writer (SQLite): every open admission is abandoned: no other
//     gateway can be running on the store.
//   - shared store (PostgreSQL): an open admission is abandoned when this
//     instance wrote it (it is a previous run of this instance: instance
//     names must be unique among live replicas) or when it is older than
//     Config.AbandonAfter (no request lives that long); admissions of
//     other instances younger than that may be in flight on a live
//     replica and are left for a later start. Entries still queued
//     (unsequenced) are scanned too, so an admission whose completion is
//     waiting for the integrator is not abandoned.
func (l *Log) abandonOpen(ctx context.Context) (closedBefore int64, abandoned int, err error) {
	size, err := l.st.Size(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("audit: abandon: %w", err)
	}
	from, err := lastClosedBefore(ctx, l.st, size)
	if err != nil {
		return 0, 0, err
	}
	o := &openSet{open: map[requestKey][]OpenRequest{}}
	for seq := from; seq < size; seq += verifyChunk {
		recs, err := l.st.ReadRecords(ctx, seq, min(seq+verifyChunk, size))
		if err != nil {
			return 0, 0, fmt.Errorf("audit: abandon: %w", err)
		}
		for _, r := range recs {
			if err := o.add(r.Seq, r.Data); err != nil {
				return 0, 0, err
			}
		}
	}
	if l.q != nil {
		const maxPending = 100_000
		pend, err := l.q.Unsequenced(ctx, maxPending)
		if err != nil {
			return 0, 0, fmt.Errorf("audit: abandon: %w", err)
		}
		if len(pend) == maxPending {
			l.log.Warn("audit: too many queued entries to pair admissions safely; abandoning none this start", "queued", len(pend))
			return from, 0, nil
		}
		for i, p := range pend {
			// Queued admissions get a Seq beyond the sequenced ones.
			if err := o.add(size+int64(i), p.Data); err != nil {
				return 0, 0, err
			}
		}
	}
	// Stale admissions of other instances are closed only by the replica
	// holding the integrator's lock, so two replicas starting together
	// cannot both close the same one.
	leading := l.q == nil
	if l.q != nil {
		var lerr error
		if leading, lerr = l.q.Lead(ctx); lerr != nil {
			l.log.Warn("audit: abandon: could not take the integrator lock; closing only this instance's admissions", "err", lerr)
		}
	}
	open := o.list()
	closedBefore = size
	now := l.now()
	// The abandon entries go to the writer many at a time, in admission
	// order, so its group commit takes them to one flush: one at a time,
	// a crash that left 10,000 admissions open cost 10,000 flushes before
	// the gateway could start.
	var batch []*Entry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := l.appendInOrder(ctx, batch); err != nil {
			return fmt.Errorf("audit: abandon: %w", err)
		}
		abandoned += len(batch)
		batch = batch[:0]
		return nil
	}
	for _, r := range open {
		mine := l.q == nil || r.Instance == l.instance || (leading && now.Sub(r.Time) > l.cfg.AbandonAfter)
		if !mine {
			if r.Seq < closedBefore {
				closedBefore = r.Seq
			}
			continue
		}
		e, err := l.abandonEntry(ctx, r, r.Seq < size)
		if err != nil {
			return 0, abandoned, err
		}
		batch = append(batch, e)
		if len(batch) == abandonBatch {
			if err := flush(); err != nil {
				return 0, abandoned, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, abandoned, err
	}
	if abandoned > 0 {
		l.log.Warn("audit: admissions left open by a crash recorded as request.abandoned", "count", abandoned, "scanned_from", from)
	}
	return closedBefore, abandoned, nil
}

// abandonBatch is how many abandon entries are handed to the writer at
// once.
const abandonBatch = 512

// abandonEntry returns the request.abandoned entry for r, with what its
// admission said.
// sequenced is false for an admission still in the queue (its Seq is
// only a position in the scan).
func (l *Log) abandonEntry(ctx context.Context, r OpenRequest, sequenced bool) (*Entry, error) {
	e := &Entry{Kind: KindRequestAbandoned, RequestID: r.RequestID}
	if sequenced {
		if adm, _, err := l.Entry(ctx, r.Seq); err == nil {
			e.Principal, e.Route, e.Method, e.Path, e.Model = adm.Principal, adm.Route, adm.Method, adm.Path, adm.Model
			e.Decision, e.ApprovalID, e.GrantID, e.RequestSHA256 = adm.Decision, adm.ApprovalID, adm.GrantID, adm.RequestSHA256
		} else if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("audit: abandon %s: %w", r.RequestID, err)
		}
	}
	e.Details = map[string]any{
		"admitted_id": r.ID, "admitted_instance": r.Instance,
		"admitted_at": r.Time.UTC().Format(time.RFC3339Nano),
		"reason":      "no terminal entry when the gateway started (crash)",
	}
	if sequenced {
		e.Details["admitted_seq"] = r.Seq
	}
	return e, nil
}
