package recording

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Selector chooses the recordings to erase. At least one of Principal,
// RequestID or IDs is required, so that an empty selector never erases
// everything; Before narrows the choice.
type Selector struct {
	Principal string
	RequestID string
	IDs       []string
	// Before selects recordings that started before it (zero: any time).
	Before time.Time
}

// Erase crypto-shreds the selected recordings: for each, the erasure is
// first recorded in the ErasureLog (when set; a failure stops here and
// destroys nothing), then its wrapped data key is destroyed in the
// catalogue — the content is unrecoverable from then on, wherever copies
// of the object survive — and the object is deleted (best effort; a
// leftover object is unreadable noise). by and reason are required.
// Already-erased recordings are skipped. It returns what was erased, also
// when it stops early on an error.
func (r *Recorder) Erase(ctx context.Context, sel Selector, by, reason string) ([]Erased, error) {
	if by == "" || reason == "" {
		return nil, errors.New("recording: erase needs who (by) and why (reason)")
	}
	if sel.Principal == "" && sel.RequestID == "" && len(sel.IDs) == 0 {
		return nil, errors.New("recording: erase needs a principal, a request id or recording ids")
	}
	no := false
	var out []Erased
	if len(sel.IDs) > 0 {
		for _, id := range sel.IDs {
			e, err := r.Get(ctx, id)
			if err != nil {
				return out, err
			}
			if !sel.matches(e) {
				continue
			}
			done, err := r.erase(ctx, e, by, reason)
			if err != nil {
				return out, err
			}
			if done != nil {
				out = append(out, *done)
			}
		}
		return out, nil
	}
	f := Filter{Principal: sel.Principal, RequestID: sel.RequestID, Before: sel.Before, Erased: &no, Limit: 500}
	for {
		es, err := r.cat.List(ctx, f)
		if err != nil {
			return out, fmt.Errorf("recording: erase: %w", err)
		}
		for _, e := range es {
			done, err := r.erase(ctx, e, by, reason)
			if err != nil {
				return out, err
			}
			if done != nil {
				out = append(out, *done)
			}
		}
		if len(es) < f.Limit {
			return out, nil
		}
		f.AfterID = es[len(es)-1].ID
	}
}

func (s Selector) matches(e Entry) bool {
	return (s.Principal == "" || e.Principal == s.Principal) &&
		(s.RequestID == "" || e.RequestID == s.RequestID) &&
		(s.Before.IsZero() || e.StartedAt.Before(s.Before))
}

func (r *Recorder) erase(ctx context.Context, e Entry, by, reason string) (*Erased, error) {
	if e.Erasure != nil {
		return nil, nil
	}
	er := Erased{
		ID: e.ID, RequestID: e.RequestID, Principal: e.Principal, StartedAt: e.StartedAt, Digest: e.Digest,
		Erasure: Erasure{At: r.now().UTC(), By: by, Reason: reason},
	}
	if r.elog != nil {
		if err := r.elog.RecordErasure(ctx, er); err != nil {
			return nil, fmt.Errorf("recording %s: recording the erasure failed, nothing erased: %w", e.ID, err)
		}
	}
	if _, err := r.cat.Erase(ctx, e.ID, er.Erasure); err != nil && !errors.Is(err, ErrErased) {
		return nil, fmt.Errorf("recording %s: erase key: %w", e.ID, err)
	}
	if err := r.blobs.Delete(ctx, e.Object); err != nil {
		r.log.Warn("recording: erased, but deleting its object failed (it is unreadable without its key)", "id", e.ID, "object", e.Object, "err", err)
	}
	return &er, nil
}

// RetentionBy names the retention sweeper as the erasing party.
const RetentionBy = "warden:retention"

// Sweep erases the recordings that started before now minus the
// retention period. It returns what it erased. With no retention
// configured it does nothing.
func (r *Recorder) Sweep(ctx context.Context) ([]Erased, error) {
	if r.retain <= 0 {
		return nil, nil
	}
	cutoff := r.now().Add(-r.retain)
	reason := "retention period of " + r.retain.String() + " elapsed"
	no := false
	f := Filter{Before: cutoff, Erased: &no, Limit: 500}
	var out []Erased
	for {
		es, err := r.cat.List(ctx, f)
		if err != nil {
			return out, fmt.Errorf("recording: sweep: %w", err)
		}
		for _, e := range es {
			done, err := r.erase(ctx, e, RetentionBy, reason)
			if err != nil {
				return out, fmt.Errorf("recording: sweep: %w", err)
			}
			if done != nil {
				out = append(out, *done)
			}
		}
		if len(es) < f.Limit {
			break
		}
		f.AfterID = es[len(es)-1].ID
	}
	// Every recording that started before cutoff is erased now: objects
	// written before it can go in bulk.
	if ex, ok := r.blobs.(Expirer); ok {
		if n, err := ex.Expire(ctx, cutoff); err != nil {
			return out, fmt.Errorf("recording: sweep: %w", err)
		} else if n > 0 {
			r.log.Info("recording retention: removed expired object packs", "packs", n)
		}
	}
	return out, nil
}

func (r *Recorder) sweeper() {
	defer r.wg.Done()
	t := time.NewTicker(r.sweepIv)
	defer t.Stop()
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-r.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		out, err := r.Sweep(ctx)
		cancel()
		if err != nil {
			r.log.Error("recording retention sweep failed", "err", err, "erased", len(out))
		} else if len(out) > 0 {
			r.log.Info("recording retention sweep", "erased", len(out))
		}
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
	}
}
