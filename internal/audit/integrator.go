package audit

import (
	"context"
	"errors"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// integratePoll is how often a replica tries to lead and, when leading,
// looks for pending entries.
const integratePoll = 100 * time.Millisecond

// integrate runs on every replica of a Queue store. The replica holding
// leadership takes pending entries in order, sequences them into the tree
// (Store.Append, fenced by its ErrConflict check) and signs checkpoints;
// the others only follow the latest checkpoint.
func (l *Log) integrate() {
	defer close(l.idone)
	tick := time.NewTicker(integratePoll)
	defer tick.Stop()
	leading := false
	lastCP := time.Now()
	step := func(final bool) {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.WriteTimeout)
		defer cancel()
		lead, err := l.q.Lead(ctx)
		if err != nil {
			l.log.Error("audit: integrator: lead", "err", err)
			leading = false
			return
		}
		if !lead {
			leading = false
			if c, err := l.st.LatestCheckpoint(ctx); err == nil && c.Size != l.Latest().Size {
				l.latest.Store(&c)
				l.grown.ring()
			}
			return
		}
		if !leading || l.broken {
			if err := l.reload(ctx); err != nil {
				l.log.Error("audit: integrator: reload", "err", err)
				return
			}
			leading = true
		}
		for {
			n, err := l.integrateBatch(ctx)
			if err != nil {
				l.log.Error("audit: integrator", "err", err)
				return
			}
			if n == 0 {
				break
			}
		}
		grown := l.tr.n > l.Latest().Size
		if grown && (final || l.tr.n-l.Latest().Size >= int64(l.cfg.CheckpointEvery) || time.Since(lastCP) >= l.cfg.CheckpointInterval) {
			l.checkpoint()
			lastCP = time.Now()
		}
	}
	for {
		select {
		case <-tick.C:
			step(false)
		case done := <-l.ctl:
			step(true)
			close(done)
		case <-l.quit:
			step(true)
			ctx, cancel := context.WithTimeout(context.Background(), l.cfg.WriteTimeout)
			if leading {
				if err := l.q.Resign(ctx); err != nil {
					l.log.Error("audit: integrator: resign", "err", err)
				}
			}
			cancel()
			return
		}
	}
}

// integrateBatch sequences up to BatchMax pending entries; it returns how
// many.
func (l *Log) integrateBatch(ctx context.Context) (int, error) {
	pend, err := l.q.Unsequenced(ctx, l.cfg.BatchMax)
	if err != nil || len(pend) == 0 {
		return 0, err
	}
	first := l.tr.n
	next := l.tr.clone()
	b := Batch{HashStart: tlog.StoredHashCount(first), Records: make([]Record, len(pend))}
	for i, p := range pend {
		e := p.Entry
		if e == nil {
			if e, err = ParseEntry(first+int64(i), p.Data); err != nil {
				return 0, err
			}
		}
		e.Seq = first + int64(i)
		b.Records[i] = Record{Seq: e.Seq, Data: p.Data, Entry: e}
		b.Hashes = append(b.Hashes, next.add(p.Data)...)
	}
	if err := l.st.Append(ctx, b); err != nil {
		l.broken = true
		l.stats.failures.Add(1)
		if errors.Is(err, ErrConflict) {
			l.log.Warn("audit: integrator: another integrator appended; reloading", "err", err)
		}
		return 0, err
	}
	l.tr = next
	l.stats.batches.Add(1)
	l.grown.ring()
	return len(pend), nil
}
