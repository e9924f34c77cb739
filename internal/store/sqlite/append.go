package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog"
)

// Append stores the batch in one transaction and returns once it is
// durable: AppendNoFlush, then Flush.
func (s *Store) Append(ctx context.Context, b audit.Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	if err := s.AppendNoFlush(ctx, b); err != nil {
		return err
	}
	return s.Flush(ctx)
}

var _ audit.Flusher = (*Store)(nil)

// AppendNoFlush appends the batch to the frame file as one frame (one
// write, no SQLite transaction) and returns before it is durable: the
// next Flush makes it durable and visible to the store's reads
// (flush.go). A batch that does not start at the end of the log is an
// ErrConflict and writes nothing; after a failed write the store fails
// closed.
func (s *Store) AppendNoFlush(ctx context.Context, b audit.Batch) error {
	if len(b.Records) == 0 {
		return nil
	}
	if err := s.check(); err != nil {
		return err
	}
	first := b.Records[0].Seq
	last := first + int64(len(b.Records))
	for i, r := range b.Records {
		if r.Seq != first+int64(i) {
			return fmt.Errorf("sqlite: append: records not consecutive at %d: %w", r.Seq, audit.ErrConflict)
		}
	}
	if c := b.Head; c != nil && c.Size != last {
		return fmt.Errorf("sqlite: append [%d, %d): head of size %d", first, last, c.Size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: append [%d, %d): %w", first, last, err)
	}
	if s.tablesForTest {
		return s.appendTables(ctx, b, first, last)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkWrite(); err != nil {
		return err
	}
	if err := s.fl.err(); err != nil {
		return err
	}
	s.fl.wrote.Store(true) // reads stop at durable
	fb := &s.fb
	fb.FirstSeq, fb.HashStart, fb.Hashes = first, b.HashStart, b.Hashes
	fb.Records = fb.Records[:0]
	for _, r := range b.Records {
		fb.Records = append(fb.Records, r.Data)
	}
	fb.Head, fb.HeadHistory = nil, false
	if b.Head != nil {
		fb.Head, fb.HeadHistory = b.Head.Note, b.HeadHistory
	}
	err := s.fr.AppendBatch(fb)
	clear(fb.Records) // do not keep the batch's records alive
	fb.Hashes, fb.Head = nil, nil
	switch {
	case errors.Is(err, framelog.ErrChain):
		return fmt.Errorf("sqlite: append at %d but size is %d: %w (%v)", first, s.fl.committed, audit.ErrConflict, err)
	case errors.Is(err, framelog.ErrBatch):
		return fmt.Errorf("sqlite: append [%d, %d): %w", first, last, err)
	case err != nil:
		// A failed write: what reached the file is unknown, the frame
		// log refuses further writes, and the store fails closed;
		// unless the frame log could undo it (a full disk: framelog
		// cuts the partial frame off), then only this batch fails.
		if ferr := s.fr.Err(); ferr != nil {
			s.fl.failed.CompareAndSwap(nil, &ferr)
		}
		return fmt.Errorf("sqlite: append [%d, %d): %w", first, last, err)
	}
	s.fl.committed = last
	if b.Head != nil {
		s.fl.commitHead = b.Head.Note
		if b.HeadHistory {
			s.fl.history = append(s.fl.history, *b.Head)
		}
	}
	if s.idx != nil {
		// Fed by the Flush that makes them durable.
		s.fl.feed = append(s.fl.feed, b.Records)
	}
	return nil
}

// appendTables is the append path of schema version 2 (one SQLite
// transaction into the entries and hashes tables), kept for tests only:
// they build stores as the binaries before the frame file wrote them, to
// test the migration (tablesForTest).
func (s *Store) appendTables(ctx context.Context, b audit.Batch, first, last int64) error {
	var legacy []legacyCols
	if s.legacy {
		legacy = make([]legacyCols, len(b.Records))
		for i, r := range b.Records {
			e := r.Entry
			if e == nil {
				var err error
				if e, err = audit.ParseEntry(r.Seq, r.Data); err != nil {
					return fmt.Errorf("sqlite: append: %w", err)
				}
			}
			legacy[i] = legacyCols{id: e.ID, kind: e.Kind, timeNS: e.Time.UnixNano()}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkWrite(); err != nil {
		return err
	}
	if err := s.withRaw(ctx, func(r *rawConn) error {
		return r.txn(ctx, func() error { return s.appendTxn(ctx, r, b, first, last, legacy) })
	}); err != nil {
		return fmt.Errorf("sqlite: append [%d, %d): %w", first, last, err)
	}
	s.fl.committed = last
	s.fl.commits++
	if b.Head != nil {
		s.fl.commitHead = b.Head.Note
	}
	return nil
}

// appendTxn writes the batch inside the transaction r.txn opened: the
// size check, the records, their tree hashes and the batch's head (and a
// history checkpoint when one is due).
func (s *Store) appendTxn(ctx context.Context, r *rawConn, b audit.Batch, first, last int64, legacy []legacyCols) error {
	n, err := r.queryInt64(ctx, sizeQuery)
	if err != nil {
		return fmt.Errorf("size: %w", err)
	}
	if n != first {
		return fmt.Errorf("append at %d but size is %d: %w", first, n, audit.ErrConflict)
	}
	if b.HashStart != tlog.StoredHashCount(first) || int64(len(b.Hashes)) != tlog.StoredHashCount(last)-b.HashStart {
		return fmt.Errorf("%d hashes from %d do not fit the records", len(b.Hashes), b.HashStart)
	}
	head, cols := "INSERT INTO entries(seq, data)", 2
	if s.legacy {
		head, cols = "INSERT INTO entries(seq, data, id, time_ns, kind)", 5
	}
	if err := r.insert(ctx, head, cols, len(b.Records), func(i int, args []driver.Value) []driver.Value {
		rec := b.Records[i]
		args = append(args, rec.Seq, rec.Data)
		if s.legacy {
			args = append(args, legacy[i].id, legacy[i].timeNS, legacy[i].kind)
		}
		return args
	}); err != nil {
		return err
	}
	if err := r.insert(ctx, "INSERT INTO hashes(idx, hash)", 2, len(b.Hashes), func(i int, args []driver.Value) []driver.Value {
		return append(args, b.HashStart+int64(i), b.Hashes[i][:])
	}); err != nil {
		return fmt.Errorf("hashes: %w", err)
	}
	if c := b.Head; c != nil {
		if c.Size != last {
			return fmt.Errorf("head of size %d", c.Size)
		}
		if err := r.exec(ctx, `INSERT INTO head(id, size, note) VALUES (0, ?, ?)
			ON CONFLICT(id) DO UPDATE SET size = excluded.size, note = excluded.note`, c.Size, c.Note); err != nil {
			return fmt.Errorf("head: %w", err)
		}
		if b.HeadHistory {
			if err := r.exec(ctx, "INSERT INTO checkpoints(size, hash, time_ns, note) VALUES (?, ?, ?, ?)",
				c.Size, c.Hash[:], c.Time.UnixNano(), c.Note); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
		}
	}
	return nil
}

// legacyCols are a version-1 entries table's copied columns.
type legacyCols struct {
	id, kind string
	timeNS   int64
}

var _ audit.HeadKeeper = (*Store)(nil)

// Head returns the note of the head written with the newest batch, or
// nil if none was (a new store, or one written before heads were kept).
// On a writable store that is the newest flushed batch's head; it is
// kept in memory (read from the frames at Open, set by each Flush).
func (s *Store) Head(ctx context.Context) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.fl != nil {
		if p := s.fl.durableHead.Load(); p != nil {
			return *p, nil
		}
		return nil, nil
	}
	return s.loadHead(ctx)
}

// PutCheckpoint stores c; the same checkpoint again is a no-op, a
// different one at the same size is a conflict.
func (s *Store) PutCheckpoint(ctx context.Context, c audit.Checkpoint) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := s.putCheckpoint(ctx, c); err != nil {
		return err
	}
	return s.Flush(ctx)
}

func (s *Store) putCheckpoint(ctx context.Context, c audit.Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkWrite(); err != nil {
		return err
	}
	if err := s.fl.err(); err != nil {
		return err
	}
	s.fl.wrote.Store(true) // before the commit: reads stop at durable
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: put checkpoint %d: %w", c.Size, err)
	}
	defer tx.Rollback()
	var old audit.Checkpoint
	var h []byte
	var ns int64
	err = tx.QueryRowContext(ctx, "SELECT hash, time_ns, note FROM checkpoints WHERE size = ?", c.Size).Scan(&h, &ns, &old.Note)
	switch {
	case err == nil:
		if !bytes.Equal(h, c.Hash[:]) || !bytes.Equal(old.Note, c.Note) || ns != c.Time.UnixNano() {
			return fmt.Errorf("sqlite: put checkpoint %d: a different checkpoint of that size exists: %w", c.Size, audit.ErrConflict)
		}
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: put checkpoint %d: %w", c.Size, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO checkpoints(size, hash, time_ns, note) VALUES (?, ?, ?, ?)",
		c.Size, c.Hash[:], c.Time.UnixNano(), c.Note); err != nil {
		return fmt.Errorf("sqlite: put checkpoint %d: %w", c.Size, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: put checkpoint %d: commit: %w", c.Size, err)
	}
	s.fl.commits++
	return nil
}

// Checkpoints returns every checkpoint by ascending size (on a writable
// store: every flushed one). On a read-only store (what `warden verify`
// opens) it also returns the history heads kept in the frame file that
// the checkpoints table lacks or holds differently (frameHeads): the
// frames are the evidence and the table only a copy, so a verification
// checks every head the frames carry, not only those the table still
// lists. A writable store copies the heads the table lacks into it at
// Open (checkHistory) and returns those it holds differently, so that
// the verification at start-up checks them as `warden verify` does.
func (s *Store) Checkpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	cps, err := s.checkpoints(ctx, "SELECT size, hash, time_ns, note FROM checkpoints WHERE size <= ? ORDER BY size")
	if err != nil || len(s.hist) == 0 {
		return cps, err
	}
	return mergeHistory(cps, s.hist), nil
}

// LatestCheckpoint returns the checkpoint with the largest size (on a
// writable store: the largest flushed one).
func (s *Store) LatestCheckpoint(ctx context.Context) (audit.Checkpoint, error) {
	cps, err := s.checkpoints(ctx, "SELECT size, hash, time_ns, note FROM checkpoints WHERE size <= ? ORDER BY size DESC LIMIT 1")
	if err != nil {
		return audit.Checkpoint{}, err
	}
	if len(cps) == 0 {
		return audit.Checkpoint{}, fmt.Errorf("sqlite: latest checkpoint: %w", audit.ErrNotFound)
	}
	return cps[0], nil
}

func (s *Store) checkpoints(ctx context.Context, query string) ([]audit.Checkpoint, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return scanCheckpoints(ctx, s.r, query, s.limit())
}

// scanCheckpoints runs query, which selects size, hash, time_ns and note
// from the checkpoints table, on db.
func scanCheckpoints(ctx context.Context, db *sql.DB, query string, args ...any) ([]audit.Checkpoint, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: checkpoints: %w", err)
	}
	defer rows.Close()
	var out []audit.Checkpoint
	for rows.Next() {
		var c audit.Checkpoint
		var h []byte
		var ns int64
		if err := rows.Scan(&c.Size, &h, &ns, &c.Note); err != nil {
			return nil, fmt.Errorf("sqlite: checkpoints: %w", err)
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("sqlite: checkpoint %d: hash has %d bytes", c.Size, len(h))
		}
		c.Hash = tlog.Hash(h)
		c.Time = time.Unix(0, ns).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: checkpoints: %w", err)
	}
	return out, nil
}
