package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/audit"
)

const (
	// enqueueWriters is the number of group-commit writers. One is best:
	// commits are bounded by the WAL flush anyway, and a single writer
	// makes the batches (and so the entries per flush) largest. Measured
	// with BenchmarkAppend: 1 writer beat 2 and 4 at 16 and 256 callers.
	enqueueWriters = 1
	// maxEnqueueBatch caps the entries of one admission transaction.
	maxEnqueueBatch = 1024
)

type enqueueReq struct {
	ps   []audit.Pending
	done chan error
}

// Enqueue durably queues entries for sequencing: it returns nil only
// after the INSERT into the pending table is committed (synchronous_commit
// on). Concurrent calls share one transaction. An ID already pending or
// already sequenced is not queued again. The commit wakes the integrator
// with a NOTIFY.
//
// If ctx ends first, Enqueue returns its error; the entries may still
// become durable (the caller must treat the admission as failed, and a
// retry with the same IDs is harmless).
func (s *Store) Enqueue(ctx context.Context, ps []audit.Pending) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(ps) == 0 {
		return nil
	}
	for _, p := range ps {
		if p.ID == "" {
			return errors.New("postgres: enqueue: entry without ID")
		}
	}
	r := &enqueueReq{ps: ps, done: make(chan error, 1)}
	select {
	case s.enq <- r:
	case <-s.quit:
		return fmt.Errorf("postgres: enqueue: %w", audit.ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("postgres: enqueue: %w", ctx.Err())
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("postgres: enqueue: %w", ctx.Err())
	}
}

// enqueueLoop is one group-commit writer.
func (s *Store) enqueueLoop() {
	defer s.wg.Done()
	for {
		var r *enqueueReq
		select {
		case r = <-s.enq:
		case <-s.quit:
			return
		}
		reqs := []*enqueueReq{r}
		n := len(r.ps)
	collect:
		for n < maxEnqueueBatch {
			select {
			case r := <-s.enq:
				reqs = append(reqs, r)
				n += len(r.ps)
			default:
				break collect
			}
		}
		err := s.insertPending(reqs, n)
		for _, r := range reqs {
			r.done <- err
		}
	}
}

func (s *Store) insertPending(reqs []*enqueueReq, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
	defer cancel()
	ids := make([]string, 0, n)
	data := make([][]byte, 0, n)
	for _, r := range reqs {
		for _, p := range r.ps {
			ids = append(ids, noNUL(p.ID))
			data = append(data, p.Data)
		}
	}
	// One statement: its own transaction, committed (and flushed) before
	// Exec returns. pg_notify in the same statement is sent on commit.
	_, err := s.pool.Exec(ctx, `WITH ins AS (
		INSERT INTO pending (id, data)
		SELECT u.id, u.data FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS u(id, data, ord)
		WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = u.id)
		ORDER BY u.ord
		ON CONFLICT (id) DO NOTHING
		RETURNING 1)
	SELECT pg_notify($3, '') FROM (SELECT count(*) AS n FROM ins) c WHERE c.n > 0`, ids, data, s.pendingChan)
	if err != nil {
		return fmt.Errorf("postgres: enqueue %d entries: %w", n, err)
	}
	return nil
}

// Unsequenced returns up to max pending entries, in enqueue order, with
// Entry decoded. A pending row whose bytes are not a valid canonical entry
// (or whose ID differs from the entry's) cannot have come from a Log: it
// is moved to the rejected table, logged, and skipped, so it cannot stall
// the integrator.
func (s *Store) Unsequenced(ctx context.Context, max int) ([]audit.Pending, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT p.pos, p.id, p.data FROM pending p
		WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = p.id)
		ORDER BY p.pos LIMIT $1`, max)
	if err != nil {
		return nil, fmt.Errorf("postgres: unsequenced: %w", err)
	}
	var out []audit.Pending
	var bad []rejectedRow
	var pos int64
	var p audit.Pending
	_, err = pgx.ForEachRow(rows, []any{&pos, &p.ID, &p.Data}, func() error {
		e, perr := audit.ParseEntry(-1, p.Data)
		switch {
		case perr != nil:
			bad = append(bad, rejectedRow{pos, p.ID, p.Data, perr.Error()})
		case noNUL(e.ID) != p.ID:
			bad = append(bad, rejectedRow{pos, p.ID, p.Data, "queued under a different ID than the entry's"})
		default:
			out = append(out, audit.Pending{ID: p.ID, Data: p.Data, Entry: e})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: unsequenced: %w", err)
	}
	if len(bad) > 0 {
		if err := s.reject(ctx, bad); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type rejectedRow struct {
	pos    int64
	id     string
	data   []byte
	reason string
}

// reject moves invalid pending rows to the rejected table.
func (s *Store) reject(ctx context.Context, bad []rejectedRow) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: reject pending: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	for _, r := range bad {
		if _, err := tx.Exec(ctx, `INSERT INTO rejected (pos, id, data, reason) VALUES ($1, $2, $3, $4)
			ON CONFLICT (pos) DO NOTHING`, r.pos, r.id, r.data, noNUL(r.reason)); err != nil {
			return fmt.Errorf("postgres: reject pending %d: %w", r.pos, err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM pending WHERE pos = $1", r.pos); err != nil {
			return fmt.Errorf("postgres: reject pending %d: %w", r.pos, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: reject pending: %w", err)
	}
	for _, r := range bad {
		// The reason comes from the parser and names no field values.
		s.log.Error("rejected a pending audit entry that is not a valid entry; it was not written by Warden",
			"pending_pos", r.pos, "bytes", len(r.data))
	}
	return nil
}

// PendingCount returns the number of entries waiting to be sequenced.
func (s *Store) PendingCount(ctx context.Context) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM pending").Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: pending count: %w", err)
	}
	return n, nil
}

// Lead tries to become, or checks that this store still is, the
// integrator. Leadership is the session advisory lock on a dedicated
// connection, kept open between calls: when leading, Lead pings it; when
// not, it tries pg_try_advisory_lock on it. If the connection died (so
// PostgreSQL released the lock), Lead reports false or an error and
// reconnects on the next call. It returns true while this store holds the
// lock.
func (s *Store) Lead(ctx context.Context) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	if err := s.check(); err != nil { // Close may have run meanwhile
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	if s.lockConn == nil {
		c, err := pgx.ConnectConfig(ctx, s.connCfg)
		if err != nil {
			return false, fmt.Errorf("postgres: lead: connect: %w", err)
		}
		s.lockConn = c
	}
	if s.leader != nil {
		if err := s.leader.Ping(ctx); err != nil {
			s.dropLeaderLocked("ping failed")
			return false, fmt.Errorf("postgres: lead: %w", err)
		}
		return true, nil
	}
	var ok bool
	if err := s.lockConn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", s.integratorKey).Scan(&ok); err != nil {
		s.closeLockConnLocked()
		return false, fmt.Errorf("postgres: lead: %w", err)
	}
	if ok {
		s.leader = s.lockConn
		s.log.Info("became the audit integrator")
	}
	return ok, nil
}

// Leading reports whether this store currently holds leadership (without
// checking the connection; Lead does).
func (s *Store) Leading() bool {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	return s.leader != nil
}

// Resign gives up leadership: it releases the lock and closes the lock
// connection. It is a no-op when not leading.
func (s *Store) Resign(ctx context.Context) error {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	if s.leader == nil {
		return nil
	}
	s.leader = nil
	c := s.lockConn
	s.lockConn = nil
	// Unlock explicitly: the server ends a closed session asynchronously,
	// so without this another replica could still find the lock held.
	_, uerr := c.Exec(ctx, "SELECT pg_advisory_unlock($1)", s.integratorKey)
	if err := errors.Join(uerr, c.Close(ctx)); err != nil {
		return fmt.Errorf("postgres: resign: %w", err)
	}
	s.log.Info("resigned as the audit integrator")
	return nil
}

// dropLeaderLocked forgets a dead leader connection. leaderMu is held.
func (s *Store) dropLeaderLocked(why string) {
	if s.leader == nil {
		return
	}
	s.leader = nil
	s.closeLockConnLocked()
	s.log.Warn("lost audit integrator leadership", "reason", why)
}

// closeLockConnLocked closes the lock connection. leaderMu is held.
func (s *Store) closeLockConnLocked() {
	if s.lockConn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	s.lockConn.Close(ctx) //nolint:errcheck // closing a broken or idle connection
	cancel()
	s.lockConn = nil
}

// SeqOf returns the Seq assigned to the entry with the given ID, or an
// error wrapping audit.ErrNotFound if it is not sequenced (yet).
func (s *Store) SeqOf(ctx context.Context, id string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var seq int64
	err := s.pool.QueryRow(ctx, "SELECT seq FROM entries WHERE id = $1", id).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("postgres: entry %q: %w", id, audit.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: entry %q: %w", id, err)
	}
	return seq, nil
}

// WaitSeq waits until the entry with the given ID is sequenced and
// returns its Seq. It wakes on the integrator's NOTIFY and re-checks every
// PollInterval; it returns ctx's error when ctx ends first.
func (s *Store) WaitSeq(ctx context.Context, id string) (int64, error) {
	for {
		wake := s.notify.wait(s.seqChan)
		seq, err := s.SeqOf(ctx, id)
		if !errors.Is(err, audit.ErrNotFound) {
			return seq, err
		}
		if err := s.sleep(ctx, wake); err != nil {
			return 0, fmt.Errorf("postgres: wait for entry %q: %w", id, err)
		}
	}
}

// WaitPending blocks until entries may have been enqueued (a NOTIFY from
// any replica), PollInterval passes, or ctx ends (its error is returned).
// The integrator calls it between batches when the queue is empty.
func (s *Store) WaitPending(ctx context.Context) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.sleep(ctx, s.notify.wait(s.pendingChan))
}

func (s *Store) sleep(ctx context.Context, wake <-chan struct{}) error {
	t := time.NewTimer(s.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-wake:
		return nil
	case <-t.C:
		return nil
	case <-s.quit:
		return audit.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}
