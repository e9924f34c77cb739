package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// notifier holds one LISTEN connection per store and turns NOTIFYs into
// closed channels for waiters. It starts on first use and reconnects with
// backoff; while it is down, waiters fall back on polling (notifications
// are a wake-up, never the source of truth).
type notifier struct {
	s       *Store
	mu      sync.Mutex
	started bool
	wake    map[string]chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

func newNotifier(s *Store) *notifier {
	return &notifier{s: s, wake: map[string]chan struct{}{}, done: make(chan struct{})}
}

// wait returns a channel closed at the next notification on channel
// (or when the listener reconnects, since notifications may have been
// missed meanwhile).
func (n *notifier) wait(channel string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.started && !n.s.closed.Load() {
		n.started = true
		ctx, cancel := context.WithCancel(context.Background())
		n.cancel = cancel
		go n.run(ctx)
	}
	ch, ok := n.wake[channel]
	if !ok {
		ch = make(chan struct{})
		n.wake[channel] = ch
	}
	return ch
}

// fire wakes the waiters of channel ("" wakes all).
func (n *notifier) fire(channel string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, ch := range n.wake {
		if channel == "" || name == channel {
			close(ch)
			delete(n.wake, name)
		}
	}
}

func (n *notifier) close() {
	n.mu.Lock()
	started := n.started
	n.started = true // no start after close
	n.mu.Unlock()
	if started && n.cancel != nil {
		n.cancel()
		<-n.done
	}
}

func (n *notifier) run(ctx context.Context) {
	defer close(n.done)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := n.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		n.s.log.Warn("audit notification listener failed; retrying", "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (n *notifier) listen(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, n.s.cfg.WriteTimeout)
	c, err := pgx.ConnectConfig(cctx, n.s.connCfg)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close(context.Background()) //nolint:errcheck
	for _, ch := range []string{n.s.pendingChan, n.s.seqChan} {
		if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	n.fire("") // anything sent while we were not listening is lost: re-check
	for {
		note, err := c.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		n.fire(note.Channel)
	}
}
