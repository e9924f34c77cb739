package audit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"
)

// bell wakes every waiter when the log grows or signs a checkpoint.
type bell struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next ring.
func (b *bell) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// ring wakes the current waiters.
func (b *bell) ring() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}

// DefaultFollowPoll is how often a follower re-reads the store when no
// wake-up came (another process or replica appended).
const DefaultFollowPoll = time.Second

// followChunk is how many records a follower reads per store call.
const followChunk = 500

// FollowOptions tune Follow.
type FollowOptions struct {
	// Signed yields only entries a signed checkpoint covers (the export
	// sends checkpoints with the events; an entry beyond every checkpoint
	// waits for the next one). Log.Follow knows the head signed after
	// every batch; Follow on a store alone only the store's checkpoint
	// history (checkpoint_every, checkpoint_interval). Otherwise every
	// committed entry is yielded.
	Signed bool
	// Poll is how often to re-read the store without a wake-up (default
	// DefaultFollowPoll).
	Poll time.Duration
	// Wake, when set, signals that the store may have grown (Log.Follow
	// sets it to the log's commit notification).
	Wake func() <-chan struct{}

	// head, set by Log.Follow, is the size of the newest signed head
	// (signed after every batch, ahead of the store's history).
	head func() int64
}

// Follow yields the committed entries of st in sequence order from seq
// from on, and then waits for new ones: it never ends on its own. The
// sequence stops when the consumer stops ranging, or yields one final
// error: ctx.Err() when ctx is done, or the store or parse error that
// stopped it. Entries are parsed strictly (ParseEntry); Entry.Seq is set.
//
// It works on any Store (SQLite, PostgreSQL, one process or many): it
// reads only sequenced records, so entries queued by replicas appear once
// the integrator has sequenced them.
func Follow(ctx context.Context, st Store, from int64, opt FollowOptions) iter.Seq2[*Entry, error] {
	if opt.Poll <= 0 {
		opt.Poll = DefaultFollowPoll
	}
	return func(yield func(*Entry, error) bool) {
		if from < 0 {
			yield(nil, fmt.Errorf("audit: follow from %d: negative sequence", from))
			return
		}
		next := from
		for {
			// Subscribe before reading, so a commit between the read and
			// the wait is not missed.
			var wake <-chan struct{}
			if opt.Wake != nil {
				wake = opt.Wake()
			}
			end, err := followEnd(ctx, st, opt.Signed)
			if opt.Signed && opt.head != nil {
				end = max(end, opt.head())
			}
			if err != nil {
				yield(nil, err)
				return
			}
			for next < end {
				to := min(next+followChunk, end)
				recs, err := st.ReadRecords(ctx, next, to)
				if err != nil {
					yield(nil, fmt.Errorf("audit: follow [%d, %d): %w", next, to, err))
					return
				}
				for _, r := range recs {
					e, err := ParseEntry(r.Seq, r.Data)
					if err != nil {
						yield(nil, err)
						return
					}
					if !yield(e, nil) {
						return
					}
				}
				next = to
			}
			t := time.NewTimer(opt.Poll)
			select {
			case <-ctx.Done():
				t.Stop()
				yield(nil, ctx.Err())
				return
			case <-wake:
			case <-t.C:
			}
			t.Stop()
		}
	}
}

// followEnd is the sequence number a follower may read up to.
func followEnd(ctx context.Context, st Store, signed bool) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !signed {
		n, err := st.Size(ctx)
		if err != nil {
			return 0, fmt.Errorf("audit: follow: %w", err)
		}
		return n, nil
	}
	c, err := st.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("audit: follow: %w", err)
	}
	return c.Size, nil
}

// Follow is the package Follow on the log's store, woken by the log's own
// commits and checkpoints (and polling for other replicas' entries).
func (l *Log) Follow(ctx context.Context, from int64, opt FollowOptions) iter.Seq2[*Entry, error] {
	if opt.Wake == nil {
		opt.Wake = l.grown.wait
	}
	opt.head = func() int64 { return l.Latest().Size }
	return Follow(ctx, l.st, from, opt)
}

// WaitCheckpoint waits until a signed checkpoint covers entry seq (its
// Size > seq) and returns the newest checkpoint, which then covers it. It
// returns ctx's error if none does before ctx is done.
func (l *Log) WaitCheckpoint(ctx context.Context, seq int64) (Checkpoint, error) {
	for {
		wake := l.grown.wait()
		if c := l.Latest(); c.Size > seq {
			return c, nil
		}
		// Another replica may have signed it (PostgreSQL): ask the store.
		c, err := l.st.LatestCheckpoint(ctx)
		switch {
		case err == nil && c.Size > seq:
			return c, nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return Checkpoint{}, fmt.Errorf("audit: wait checkpoint %d: %w", seq, err)
		}
		t := time.NewTimer(DefaultFollowPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return Checkpoint{}, fmt.Errorf("audit: wait checkpoint %d: %w", seq, ctx.Err())
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}
