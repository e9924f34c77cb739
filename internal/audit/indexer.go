package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrIndexGap: IndexWriter.WriteIndex was given records that start beyond
// what the index holds. Nothing was written; the Indexer fills the gap from
// the log.
var ErrIndexGap = errors.New("audit: index gap")

// IndexWriter is a store's search index (copied columns, full text,
// mask-rule index), derived from the log and rebuildable from it at any
// time. Verification never reads it.
//
// Contract:
//   - IndexedSize returns the number of leading log records the index
//     holds: records [0, IndexedSize()) are indexed, nothing beyond.
//   - WriteIndex indexes consecutive records (Entry set) in one
//     transaction. Records below IndexedSize() are skipped (another writer
//     indexed them: replicas, a concurrent rebuild); if the first record
//     left starts beyond IndexedSize(), nothing is written and the error
//     wraps ErrIndexGap. It need not be durable (no fsync): a lost index
//     write is caught up from the log.
//   - ResetIndex empties the index (IndexedSize() becomes 0), recreating
//     its tables so that damage to them is gone too.
type IndexWriter interface {
	IndexedSize(ctx context.Context) (int64, error)
	WriteIndex(ctx context.Context, recs []Record) error
	ResetIndex(ctx context.Context) error
}

// Unindexed returns the records of recs an IndexWriter holding n records
// must still write: those from Seq n on. It is an error wrapping
// ErrIndexGap if they start beyond n. WriteIndex implementations call it
// inside their transaction.
func Unindexed(recs []Record, n int64) ([]Record, error) {
	for len(recs) > 0 && recs[0].Seq < n {
		recs = recs[1:]
	}
	if len(recs) > 0 && recs[0].Seq > n {
		return nil, fmt.Errorf("index holds %d records, given %d: %w", n, recs[0].Seq, ErrIndexGap)
	}
	return recs, nil
}

// LogReader is the part of a Store an Indexer reads to catch up.
type LogReader interface {
	Size(ctx context.Context) (int64, error)
	ReadRecords(ctx context.Context, from, to int64) ([]Record, error)
}

// Indexer keeps a search index up to date off the admission path. The
// store Feeds it the records it has just committed (already decoded: the
// Log sets Record.Entry), and one goroutine writes them to the index in
// large batches: at most every IndexerDelay, or sooner once IndexerBatch
// records wait. After each write it pauses three times as long as the
// write took, so under load it uses at most about a quarter of a core and
// lets records pile up into bigger (cheaper per entry) batches. What it could not keep in
// memory (more than IndexerMaxPending records waiting) or lost (a crash,
// a restart) it reads back from the log: CatchUp, which Search calls
// before every query, so a search sees every committed entry.
type Indexer struct {
	lr  LogReader
	w   IndexWriter
	log *slog.Logger

	mu sync.Mutex // serialises index writes

	pmu     sync.Mutex
	pending []Record
	dropped bool // records were not kept: CatchUp reads the log
	kick    chan struct{}

	quit, done chan struct{}
	closeOnce  sync.Once
	base       context.Context // canceled by Close: a write in progress stops
	stop       context.CancelFunc
}

// Tuning of the Indexer (variables so tests and benchmarks can change
// them before NewIndexer).
var (
	// IndexerDelay is the longest a fed record waits before it is indexed.
	IndexerDelay = 200 * time.Millisecond
	// IndexerBatch is the number of waiting records that triggers a write
	// before IndexerDelay.
	IndexerBatch = 8192
	// IndexerMaxPending is the number of records kept in memory; beyond it
	// they are dropped and read back from the log later.
	IndexerMaxPending = 1 << 16
)

// indexChunk is how many records CatchUp reads from the log per write.
const indexChunk = 5000

// NewIndexer starts an indexer writing to w and catching up from lr. It
// catches up with the log in the background right away (after a restart
// the index may lag the log).
func NewIndexer(lr LogReader, w IndexWriter, lg *slog.Logger) *Indexer {
	if lg == nil {
		lg = slog.Default()
	}
	x := &Indexer{lr: lr, w: w, log: lg, kick: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{}), dropped: true}
	x.base, x.stop = context.WithCancel(context.Background())
	go x.run()
	x.wake()
	return x
}

// Feed hands committed records (Entry set, consecutive) to the indexer.
// It never blocks on the index.
func (x *Indexer) Feed(recs []Record) {
	whole := true
	for _, r := range recs {
		whole = whole && r.Entry != nil
	}
	x.pmu.Lock()
	if !whole || len(x.pending)+len(recs) > IndexerMaxPending {
		x.dropped = true
	} else {
		x.pending = append(x.pending, recs...)
	}
	n := len(x.pending)
	x.pmu.Unlock()
	if n >= IndexerBatch {
		x.wake()
	}
}

func (x *Indexer) wake() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

func (x *Indexer) run() {
	defer close(x.done)
	t := time.NewTimer(IndexerDelay)
	defer t.Stop()
	for {
		select {
		case <-x.quit:
			return
		case <-x.kick:
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(x.base, time.Minute)
		if err := x.CatchUp(ctx); err != nil && !errors.Is(err, ErrClosed) && x.base.Err() == nil {
			x.log.Warn("audit: search index: catching up with the log failed (searches retry)", "err", err)
		}
		cancel()
		// Duty cycle: rest three times as long as the work took (at least
		// IndexerDelay), so under load the index uses at most a quarter of
		// a core and admissions keep the rest.
		rest := max(IndexerDelay, 3*time.Since(start))
		t.Reset(rest)
	}
}

// CatchUp indexes every record the log holds now: the fed records and,
// for what was dropped or lost, records read back from the log. An index
// that holds more records than the log (the log was restored from a
// backup) is reset and rebuilt.
func (x *Indexer) CatchUp(ctx context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pmu.Lock()
	fed, dropped := x.pending, x.dropped
	x.pending, x.dropped = nil, false
	x.pmu.Unlock()
	err := x.catchUp(ctx, fed, dropped)
	if err != nil {
		// Nothing fed is lost: the log has it.
		x.pmu.Lock()
		x.dropped = true
		x.pmu.Unlock()
	}
	return err
}

func (x *Indexer) catchUp(ctx context.Context, fed []Record, dropped bool) error {
	w, err := x.w.IndexedSize(ctx)
	if err != nil {
		return fmt.Errorf("audit: index: %w", err)
	}
	if dropped {
		fed = nil // read back from the log instead
	}
	var size int64
	if len(fed) == 0 || fed[0].Seq > w {
		if size, err = x.lr.Size(ctx); err != nil {
			return fmt.Errorf("audit: index: %w", err)
		}
		if w > size {
			x.log.Warn("audit: the search index holds more entries than the log (the log was restored?); rebuilding it",
				"indexed", w, "log", size)
			if err := x.w.ResetIndex(ctx); err != nil {
				return fmt.Errorf("audit: index: reset: %w", err)
			}
			w = 0
		}
	}
	// Fill from the log up to the first fed record (or the log's size).
	upto := size
	if len(fed) > 0 {
		upto = min(size, fed[0].Seq)
		if fed[0].Seq <= w {
			upto = w
		}
	}
	if w, err = x.fromLog(ctx, w, upto); err != nil {
		return err
	}
	for len(fed) > 0 && fed[0].Seq < w {
		fed = fed[1:]
	}
	for len(fed) > 0 {
		n := min(len(fed), IndexerBatch)
		if err := x.w.WriteIndex(ctx, fed[:n]); err != nil {
			return fmt.Errorf("audit: index [%d, %d): %w", fed[0].Seq, fed[0].Seq+int64(n), err)
		}
		fed = fed[n:]
	}
	return nil
}

// fromLog indexes records [from, to) read from the log; it returns the
// next record to index.
func (x *Indexer) fromLog(ctx context.Context, from, to int64) (int64, error) {
	for from < to {
		end := min(from+indexChunk, to)
		recs, err := x.lr.ReadRecords(ctx, from, end)
		if errors.Is(err, ErrNotFound) {
			recs, err = readAround(ctx, x.lr, from, end)
		}
		if err != nil {
			return from, fmt.Errorf("audit: index: read log: %w", err)
		}
		for i := range recs {
			if recs[i].Entry != nil {
				continue
			}
			if recs[i].Entry, err = ParseEntry(recs[i].Seq, recs[i].Data); err != nil {
				// The log verifies entries; an unparsable one is indexed
				// by nothing but its place, so it still shows in checks.
				recs[i].Entry = &Entry{Seq: recs[i].Seq}
			}
		}
		if err := x.w.WriteIndex(ctx, recs); err != nil {
			return from, fmt.Errorf("audit: index [%d, %d): %w", from, end, err)
		}
		from = end
	}
	return from, nil
}

// readAround reads records [from, to) one by one, standing in an empty
// entry for each one the log lacks (a damaged log, found by verification;
// the index still covers the rest, so searches keep working).
func readAround(ctx context.Context, lr LogReader, from, to int64) ([]Record, error) {
	out := make([]Record, 0, to-from)
	for seq := from; seq < to; seq++ {
		r, err := lr.ReadRecords(ctx, seq, seq+1)
		switch {
		case err == nil:
			out = append(out, r[0])
		case errors.Is(err, ErrNotFound):
			out = append(out, Record{Seq: seq, Entry: &Entry{Seq: seq}})
		default:
			return nil, err
		}
	}
	return out, nil
}

// Rebuild empties the index and indexes the whole log again; it returns
// the number of entries indexed.
func (x *Indexer) Rebuild(ctx context.Context) (int64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pmu.Lock()
	x.pending, x.dropped = nil, false
	x.pmu.Unlock()
	if err := x.w.ResetIndex(ctx); err != nil {
		return 0, fmt.Errorf("audit: index: reset: %w", err)
	}
	return BuildIndex(ctx, x.lr, x.w)
}

// Close stops the background writer. Records not yet indexed are caught
// up from the log at the next start.
func (x *Indexer) Close() {
	x.closeOnce.Do(func() {
		x.stop()
		close(x.quit)
	})
	<-x.done
}

// BuildIndex indexes the log's records [IndexedSize(), Size()) into w,
// reading them from lr; it returns the log size indexed. warden index
// check builds a reference index with it, warden index rebuild the real
// one (after ResetIndex).
func BuildIndex(ctx context.Context, lr LogReader, w IndexWriter) (int64, error) {
	size, err := lr.Size(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: index: %w", err)
	}
	from, err := w.IndexedSize(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: index: %w", err)
	}
	x := &Indexer{lr: lr, w: w}
	_, err = x.fromLog(ctx, from, size)
	return size, err
}
