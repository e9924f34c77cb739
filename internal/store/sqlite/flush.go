package sqlite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wardenhq/warden/internal/audit"
)

// flusher makes the writer's appends durable apart from the appends
// themselves (audit.Flusher, decisions 026 and 042). Batches go to the
// frame file without a sync (AppendNoFlush); Flush fdatasyncs it
// (framelog's Sync), and the WAL too when the database has commits of
// its own to make durable (PutCheckpoint, the frames_base marker). What
// follows describes the WAL, which is still how those commits are made
// durable.
//
// The writer connection commits The writer connection commits
// with synchronous=NORMAL: SQLite writes the transaction's WAL frames and
// returns without an fsync. Flush then fdatasyncs the WAL file, which
// holds every frame committed before it (the WAL is written in order and
// its checksum chain makes recovery stop at the first frame that did not
// reach the disk, so what survives a power loss is always a prefix of the
// commits). With synchronous=FULL SQLite did the same fdatasync inside the
// commit; doing it here lets the log's writer commit the next batch while
// the previous one is being flushed.
//
// Until a Flush covers a commit, the store's own reads do not show it:
// Size, ReadRecords, ReadHashes, the checkpoints and Head stop at the
// durable watermark, so nothing this process reads (the exporter, the
// witness submitter, searches, proofs) can reach an entry that a power
// loss could still take back.
type flusher struct {
	walPath string
	dbPath  string

	// committed is the size after the newest append, and its head note,
	// the history heads to copy into the checkpoints table and the
	// records to feed the indexer: guarded by Store.mu (the writer's
	// lock), read by Flush under it.
	committed  int64
	commitHead []byte
	history    []audit.Checkpoint
	feed       [][]audit.Record
	commits    int64 // SQLite transactions committed
	flushed    int64 // commits covered by the newest successful Flush (guarded by mu)

	mu  sync.Mutex // one Flush at a time; guards wal and historyFull
	wal *os.File
	// historyFull: copying history heads into the checkpoints table
	// failed for a full disk and has not succeeded since (warned once,
	// not at every flush).
	historyFull bool

	// wrote is set before this store's first commit: from then on reads
	// stop at durable (before, they show the file as it is).
	wrote       atomic.Bool
	durable     atomic.Int64 // records durable and visible to reads
	durableHead atomic.Pointer[[]byte]
	failed      atomic.Pointer[error] // a failed flush: the store is unusable
}

// errFlushFailed wraps the first flush error; the store refuses writes
// after it (fsync errors leave the page cache in an unknown state).
var errFlushFailed = errors.New("sqlite: an earlier flush of the audit log failed; the store must be reopened")

// diskFull reports a SQLite error saying the disk or quota is full
// (SQLITE_FULL), or a full-disk errno.
func diskFull(err error) bool {
	var se *msqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL {
		return true
	}
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (f *flusher) err() error {
	if p := f.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", errFlushFailed, *p)
	}
	return nil
}

// Flush makes every batch (and checkpoint) committed before it was called
// durable, and visible through the store's reads. After an error every
// later call on the store fails (reopen it).
func (s *Store) Flush(ctx context.Context) error {
	if err := s.checkWrite(); err != nil {
		return err
	}
	f := s.fl
	f.mu.Lock() // lock order: fl.mu, then s.mu (Close takes them apart)
	defer f.mu.Unlock()
	if err := s.check(); err != nil {
		return err // closed while waiting
	}
	s.mu.Lock()
	n, head, feed, commits, history := f.committed, f.commitHead, f.feed, f.commits, f.history
	f.feed, f.history = nil, nil
	s.mu.Unlock()
	if commits == f.flushed && f.durable.Load() == n {
		return nil
	}
	if s.fr != nil && f.durable.Load() != n {
		// Every frame appended up to n (and perhaps more) is durable
		// after it; reads still stop at n.
		if err := s.fr.Sync(); err != nil {
			f.failed.CompareAndSwap(nil, &err)
			return fmt.Errorf("sqlite: flush: %w", err)
		}
	}
	if commits != f.flushed {
		if err := f.syncWAL(); err != nil {
			f.failed.CompareAndSwap(nil, &err)
			return fmt.Errorf("sqlite: flush %s: %w", f.walPath, err)
		}
	}
	if len(history) > 0 {
		// The history heads are durable in their frames; the table's
		// copy is committed without a sync (Open catches it up).
		err := s.insertCheckpoints(ctx, history)
		if err == nil && f.historyFull {
			f.historyFull = false
			slog.Info("audit: copying checkpoints into the database works again")
		}
		if err != nil {
			if !diskFull(err) {
				f.failed.CompareAndSwap(nil, &err)
				return fmt.Errorf("sqlite: flush: %w", err)
			}
			// A full disk: the heads are durable in their frames, which
			// (preallocated, decision 044) may still take appends when
			// SQLite cannot. They are tried again at the next flush
			// (and Open catches the table up), as the frames' own
			// full-disk error does not fail the store either.
			s.mu.Lock()
			f.history = append(history, f.history...)
			s.mu.Unlock()
			if !f.historyFull {
				f.historyFull = true
				slog.Warn("audit: copying checkpoints into the database failed (disk full); retried at every flush, warned once until it works again", "err", err)
			}
		}
	}
	if head != nil {
		f.durableHead.Store(&head)
	}
	f.durable.Store(n)
	f.flushed = commits
	if s.idx != nil {
		for _, recs := range feed {
			s.idx.Feed(recs)
		}
	}
	return nil
}

// syncWAL fdatasyncs the WAL file. The file stays open between flushes;
// if the path now names another file (SQLite removes the WAL only after
// checkpointing all of it into the synced database file), the database
// file is synced too and the new WAL is opened.
//
// The open WAL still linked (an fstat, where it is known: Linux) is the
// common case and skips the stat of the path (decision 040): SQLite
// never renames or hard-links its WAL, it deletes it, which leaves the
// open file with no link; then the path is looked at as below.
func (f *flusher) syncWAL() error {
	if f.wal != nil {
		if n, ok := links(f.wal); ok && n > 0 {
			return fdatasync(f.wal)
		}
	}
	fi, err := os.Stat(f.walPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if f.wal != nil {
			f.wal.Close()
			f.wal = nil
		}
		return syncPath(f.dbPath)
	case err != nil:
		return err
	}
	if f.wal != nil {
		if cur, err := f.wal.Stat(); err != nil || !os.SameFile(cur, fi) {
			f.wal.Close()
			f.wal = nil
			if err := syncPath(f.dbPath); err != nil {
				return err
			}
		}
	}
	if f.wal == nil {
		if f.wal, err = os.OpenFile(f.walPath, os.O_RDWR, 0); err != nil {
			return err
		}
	}
	return fdatasync(f.wal)
}

func syncPath(path string) error {
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = fdatasync(fh)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// close closes the WAL's file; a Flush after it fails (the store is
// closed first).
func (f *flusher) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.wal == nil {
		return nil
	}
	err := f.wal.Close()
	f.wal = nil
	return err
}

// limit is the number of records reads may see: once this store has
// committed anything, the durable watermark; before that (and on a
// read-only store) everything, so verification at Open sees the file as
// it is, damage included. The watermark only moves after an fdatasync,
// so a read racing a commit cannot see the commit early (the bound is the
// same whether it is taken before or after the read's SQL).
func (s *Store) limit() int64 {
	const all = 1<<63 - 1
	if s.fl == nil || !s.fl.wrote.Load() {
		return all
	}
	return s.fl.durable.Load()
}
