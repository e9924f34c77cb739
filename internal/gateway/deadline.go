package gateway

import (
	"context"
	"sync/atomic"
	"time"
)

// Audit appends on the request path are bounded by timeouts.store, like
// every store call, but they share their deadline contexts (decision
// 049): context.WithTimeout per append made a timer, a timerCtx and,
// once waited on, a Done channel for every admission and completion,
// the largest of the audit path's allocations on the request side after
// the entry itself. An append's context carries nothing but its
// deadline (audit.Log reads neither values nor cancellation from it
// beyond Done), so a context made now serves every append that starts
// within the next slice of the timeout.

// deadlineSlices is how many contexts a store timeout is cut into: an
// append gets between (1 - 1/deadlineSlices) of timeouts.store and all
// of it, never more, and a new context (one timer) is made at most
// deadlineSlices times per timeout.
const deadlineSlices = 32

// sharedDeadline hands out contexts that end at most timeout after the
// call that receives them, and at least timeout minus timeout /
// deadlineSlices after it. Safe for concurrent use.
type sharedDeadline struct {
	timeout time.Duration
	cur     atomic.Pointer[deadlineCtx]
}

// deadlineCtx is one shared context and when it stops being handed out.
type deadlineCtx struct {
	ctx context.Context
	// cancel is kept for vet: the context ends by its own timer at its
	// deadline, while appends handed it may still be waiting on it.
	cancel context.CancelFunc
	until  time.Time
}

// context returns a context whose deadline is at most d.timeout from now
// and which is never cancelled before it.
func (d *sharedDeadline) context() context.Context {
	now := time.Now()
	if c := d.cur.Load(); c != nil && now.Before(c.until) {
		return c.ctx
	}
	c := &deadlineCtx{until: now.Add(d.timeout / deadlineSlices)}
	c.ctx, c.cancel = context.WithDeadline(context.Background(), now.Add(d.timeout))
	// A racing call may have made one too: either serves, the other
	// ends by its timer.
	d.cur.Store(c)
	return c.ctx
}
