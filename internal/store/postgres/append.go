package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// Append stores the batch (records and hashes) in one transaction and
// deletes the batch's entries from the pending queue in the same
// transaction. It returns once the transaction is committed (durable:
// synchronous_commit is on).
//
// While this store leads (see Lead), Append runs on the leader connection,
// so a leader that lost its connection cannot commit. Otherwise it takes
// the integrator lock for the transaction only, failing with
// audit.ErrConflict if another session leads. Under that lock it checks
// that the batch starts at the current size; an entry ID already in the
// log is also a conflict.
func (s *Store) Append(ctx context.Context, b audit.Batch) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(b.Records) == 0 {
		return nil
	}
	first := b.Records[0].Seq
	rows, err := s.prepare(b)
	if err != nil {
		return fmt.Errorf("postgres: append at %d: %w", first, err)
	}
	if s.cfg.WriteTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.WriteTimeout)
		defer cancel()
	}
	s.leaderMu.Lock()
	if s.leader != nil {
		err = s.appendTx(ctx, s.leader, b, rows)
		if err != nil && s.leader.IsClosed() {
			s.dropLeaderLocked("connection lost during append")
		}
		s.leaderMu.Unlock()
	} else {
		s.leaderMu.Unlock()
		err = s.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
			return s.appendTx(ctx, c.Conn(), b, rows)
		})
	}
	if err != nil {
		return fmt.Errorf("postgres: append %d records at %d: %w", len(b.Records), first, err)
	}
	s.log.Debug("appended", "from", first, "n", len(b.Records))
	if s.idx != nil {
		s.idx.Feed(b.Records)
	}
	return nil
}

// entryRow is what one record adds to the entries table (the search
// index is written after the commit, by the indexer: index.go).
type entryRow struct {
	seq        int64
	id         string
	data, leaf []byte
	timeNS     int64
	kind       string
}

// prepare checks the batch's shape and derives the copied columns.
func (s *Store) prepare(b audit.Batch) ([]entryRow, error) {
	first := b.Records[0].Seq
	out := make([]entryRow, len(b.Records))
	for i, r := range b.Records {
		if r.Seq != first+int64(i) {
			return nil, fmt.Errorf("record %d has seq %d, not consecutive: %w", i, r.Seq, audit.ErrConflict)
		}
		e := r.Entry
		if e == nil {
			var err error
			if e, err = audit.ParseEntry(r.Seq, r.Data); err != nil {
				return nil, err
			}
		}
		if e.ID == "" {
			return nil, fmt.Errorf("record %d has no entry ID", r.Seq)
		}
		leaf := tlog.RecordHash(r.Data)
		row := entryRow{
			seq: r.Seq, id: noNUL(e.ID), data: r.Data, leaf: leaf[:],
			timeNS: e.Time.UnixNano(), kind: noNUL(e.Kind),
		}
		out[i] = row
	}
	return out, nil
}

// maxSearchText caps the text indexed for one entry (a tsvector is
// limited to 1 MB).
const maxSearchText = 256 << 10

// noNUL replaces NUL, which PostgreSQL text cannot hold, in the search
// copies of fields. (The canonical bytes in data are kept exactly.)
func noNUL(s string) string {
	if !strings.Contains(s, "\x00") {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

var entryColumns = []string{"seq", "id", "data", "leaf_hash", "time_ns", "kind"}

func (s *Store) appendTx(ctx context.Context, c *pgx.Conn, b audit.Batch, rows []entryRow) error {
	first := b.Records[0].Seq
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	var locked bool
	if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", s.integratorKey).Scan(&locked); err != nil {
		return fmt.Errorf("integrator lock: %w", err)
	}
	if !locked {
		return fmt.Errorf("another replica is the integrator: %w", audit.ErrConflict)
	}
	var size int64
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(seq) + 1, 0) FROM entries").Scan(&size); err != nil {
		return fmt.Errorf("size: %w", err)
	}
	if size != first {
		return fmt.Errorf("batch starts at %d but the log has %d records: %w", first, size, audit.ErrConflict)
	}
	// Checked after the size, so a stale batch is reported as a conflict.
	if b.HashStart != tlog.StoredHashCount(first) {
		return fmt.Errorf("hash start %d, want %d for seq %d", b.HashStart, tlog.StoredHashCount(first), first)
	}
	if want := tlog.StoredHashCount(first+int64(len(rows))) - b.HashStart; int64(len(b.Hashes)) != want {
		return fmt.Errorf("%d hashes for %d records, want %d", len(b.Hashes), len(rows), want)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"entries"}, entryColumns, pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := &rows[i]
		return []any{r.seq, r.id, r.data, r.leaf, r.timeNS, r.kind}, nil
	}))
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("an entry of the batch is already in the log: %w", audit.ErrConflict)
		}
		return fmt.Errorf("insert entries: %w", err)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"hashes"}, []string{"idx", "hash"}, pgx.CopyFromSlice(len(b.Hashes), func(i int) ([]any, error) {
		return []any{b.HashStart + int64(i), b.Hashes[i][:]}, nil
	}))
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("hashes of the batch are already stored: %w", audit.ErrConflict)
		}
		return fmt.Errorf("insert hashes: %w", err)
	}
	ids := make([]string, len(rows))
	for i := range rows {
		ids[i] = rows[i].id
	}
	if _, err := tx.Exec(ctx, "DELETE FROM pending WHERE id = ANY($1)", ids); err != nil {
		return fmt.Errorf("dequeue: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", s.seqChan, fmt.Sprint(first+int64(len(rows)))); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("commit: %w", errors.Join(err, audit.ErrConflict))
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
