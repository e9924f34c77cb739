package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// run is the single writer: it batches concurrent appends into one store
// transaction (group commit: one fsync for many admissions) and signs
// checkpoints. On a Queue store it batches appends into one Enqueue
// instead, and the integrator sequences and signs.
func (l *Log) run() {
	defer close(l.done)
	tick := time.NewTicker(l.cfg.CheckpointInterval)
	defer tick.Stop()
	tickC, ctl := tick.C, l.ctl
	if l.q != nil {
		tickC, ctl = nil, nil
	}
	for {
		select {
		case r := <-l.reqs:
			batch := []*appendReq{r}
			idle := false
			if l.fl != nil {
				// The moderate-rate policy (decision 036) only while
				// the flushes of late covered fewer entries than a
				// gathered batch holds; a saturated pipeline keeps
				// decision 026's (decision 040).
				if l.unsaturated() {
					l.stats.gathers.Add(1)
					batch = l.gather(batch)
					// Nothing between commit and answer: flushLoop
					// is idle, done with the head file and the
					// answers. Only for tiny flushes: from a few
					// entries up, the commit overlapping the flush
					// saves more than the hand-off costs.
					idle = l.unanswered.Load() == 0 && l.tinyFlushes()
				}
				// A bounded number of batches between commit and
				// answer: while they wait, appends gather into the
				// next batch instead of many small transactions.
				l.slots <- struct{}{}
				l.committing.Store(true)
			}
			// Let appenders that were just answered submit again before
			// the batch is cut: bigger batches, same latency.
			runtime.Gosched()
		drain:
			for len(batch) < l.cfg.BatchMax {
				select {
				case r := <-l.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			// A small batch with nothing in flight is flushed and
			// answered here: handing it to flushLoop would only add a
			// wake-up, there is no earlier flush to overlap with.
			if !l.commit(batch, idle && len(batch) < l.gatherSize()) && l.fl != nil {
				l.committing.Store(false)
				<-l.slots
			}
		case <-tickC:
			if l.tr.n > l.stored.Load() {
				l.checkpoint()
			}
		case done := <-ctl:
			if l.tr.n > l.stored.Load() || l.latest.Load() == nil {
				l.checkpoint()
			}
			l.inflight.Wait()
			close(done)
		case <-l.quit:
			l.inflight.Wait()
			if l.fl != nil {
				close(l.flushes)
				<-l.flushDone
			}
			close(l.files)
			<-l.filesDone
			return
		}
	}
}

// gatherMax is the batch size from which the writer commits a batch while
// an earlier one is being flushed (decision 036).
const gatherMax = 64

// gatherSize is gatherMax, or batch_max if that is smaller.
func (l *Log) gatherSize() int { return min(gatherMax, l.cfg.BatchMax) }

// flushAvgShift sets the weight of one flush in flushAvg: 1/16, so that
// in a saturated closed loop (flushes of 0 to 256 entries, ~130 on
// average with 256 writers) the average stays well above gatherMax, and
// after the load drops it follows within a few tens of flushes.
const flushAvgShift = 4

// noteFlush adds a flush of n entries to flushAvg, the moving average of
// entries per flush in 1/16ths (flushLoop's flushes and the writer's own).
func (l *Log) noteFlush(n int) {
	for {
		old := l.flushAvg.Load()
		next := old + (int64(n)<<flushAvgShift-old)>>flushAvgShift
		if l.flushAvg.CompareAndSwap(old, next) {
			return
		}
	}
}

// unsaturated reports whether the flushes of late covered fewer entries
// on average than gatherSize: the moderate rates where gathering and the
// writer's own flush turn many small transactions into one (decision
// 036). In a saturated pipeline (flushes of more than gatherSize entries
// on average: the 256-writer closed loop) batches are large already,
// and gathering there only stopped the writer committing during a flush
// and, at the start of each wave of answers, made it flush small
// batches itself with no commit overlapping the fdatasync (decision
// 040).
func (l *Log) unsaturated() bool {
	return l.flushAvg.Load() < int64(l.gatherSize())<<flushAvgShift
}

// ownFlushMax is the average flush size (entries) under which the writer
// flushes a small batch itself when nothing is in flight (decision 040):
// at 2000-4000 requests/s (2-11 entries per flush) that saves flushLoop's
// hand-off per batch; with 64 waiting connections (20-50 per flush) it
// ended the commit/flush overlap and cost more flushes per append.
const ownFlushMax = 16

// tinyFlushes reports whether the flushes of late averaged fewer than
// ownFlushMax entries.
func (l *Log) tinyFlushes() bool {
	return l.flushAvg.Load() < ownFlushMax<<flushAvgShift
}

// gather adds to batch the appends that arrive while a committed batch
// is waiting for its flush or being flushed, until that flush returns or
// the batch holds gatherSize appends (decision 036). A batch committed
// during a flush cannot be answered before the next flush anyway, so at
// moderate rates committing it as soon as it is cut only splits the
// arrivals of one flush into many small transactions, each paying a
// signature, BEGIN/COMMIT, the head's row and the WAL's locks; gathered,
// they share one commit (about one per flush) and lose only that
// commit's time. Under load the batch reaches gatherSize during the
// flush and is committed at once, as before (the flush pipeline of
// decision 026). The wait is bounded by the flush in progress.
func (l *Log) gather(batch []*appendReq) []*appendReq {
	for l.unflushed.Load() > 0 && len(batch) < l.gatherSize() {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		case <-l.flushed:
		}
	}
	return batch
}

// checkpointNow asks the writer to sign a checkpoint now and waits.
func (l *Log) checkpointNow(ctx context.Context) {
	done := make(chan struct{})
	stopped := l.done // the goroutine that serves ctl
	if l.q != nil {
		stopped = l.idone
	}
	select {
	case l.ctl <- done:
		select {
		case <-done:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	case <-stopped:
	}
}

// commit makes one batch durable and answers its requests, or, on a
// Flusher, commits it and hands it to flushLoop (then it reports true)
// unless flushHere is set: then it flushes it itself (flushLoop must
// have nothing in flight).
func (l *Log) commit(batch []*appendReq, flushHere bool) (handedOff bool) {
	fail := func(err error) {
		l.stats.failures.Add(1)
		for _, r := range batch {
			r.answer(appendRes{err: err})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.WriteTimeout)
	defer cancel()
	if l.q != nil {
		l.enqueue(ctx, batch, fail)
		return false
	}
	if l.broken {
		if err := l.reload(ctx); err != nil {
			fail(fmt.Errorf("audit: append: store unavailable: %w", err))
			return false
		}
	}
	first := l.tr.n
	next := l.tr.clone()
	b := Batch{HashStart: tlog.StoredHashCount(first), Records: make([]Record, len(batch))}
	for i, r := range batch {
		seq := first + int64(i)
		r.e.Seq = seq
		b.Records[i] = Record{Seq: seq, Data: r.data, Entry: r.e}
		b.Hashes = append(b.Hashes, next.add(r.data)...)
	}
	// No acknowledged entry in an unsigned tail: on a HeadKeeper the
	// batch's tree head is signed first and committed with the records,
	// one transaction and one flush for both (decision 018).
	var head Checkpoint
	inTxn := l.keeper && !skipBatchSigning.Load()
	pipelined := inTxn && l.fl != nil && !flushHere
	if inTxn {
		var err error
		if head, err = SignCheckpoint(l.signer, next.n, next.root(), l.now()); err != nil {
			l.log.Error("audit: signing the batch's checkpoint failed", "size", next.n, "err", err)
			fail(fmt.Errorf("audit: append [%d, %d): sign: %w", first, next.n, err))
			return false
		}
		b.Head = &head
		b.HeadHistory = next.n-l.stored.Load() >= int64(l.cfg.CheckpointEvery)
	}
	var err error
	if pipelined {
		err = l.fl.AppendNoFlush(ctx, b)
	} else {
		err = l.st.Append(ctx, b)
		if l.fl != nil {
			l.stats.flushes.Add(1)
			l.stats.ownFlushes.Add(1)
			l.noteFlush(len(batch))
		}
	}
	if err != nil {
		// The outcome is unknown (a commit may have succeeded before the
		// error): reload the state from the store before the next batch.
		l.broken = true
		l.log.Error("audit: append failed", "from", first, "count", len(batch), "err", err)
		fail(fmt.Errorf("audit: append [%d, %d): %w", first, first+int64(len(batch)), err))
		return false
	}
	l.tr = next
	l.stats.batches.Add(1)
	l.stats.appends.Add(int64(len(batch)))
	if b.HeadHistory {
		l.stored.Store(head.Size)
	}
	if pipelined {
		// Committed, not yet durable: flushLoop answers once it is,
		// while this goroutine commits the next batch.
		l.inflight.Add(1)
		l.unflushed.Add(1)
		l.unanswered.Add(1)
		l.committing.Store(false)
		l.flushes <- flushJob{batch: batch, recs: b.Records, first: first, head: head, history: b.HeadHistory}
		return true
	}
	if inTxn {
		l.keptHead(head, b.HeadHistory)
	} else if !skipBatchSigning.Load() {
		// The batch's tree head is signed and kept before anyone is
		// answered. The entries are durable either way; if the head
		// cannot be kept the appends fail and their callers fail closed.
		if err := l.signHead(ctx); err != nil {
			l.log.Error("audit: signing the batch's checkpoint failed", "size", l.tr.n, "err", err)
			fail(fmt.Errorf("audit: append [%d, %d): durable but not signed: %w", first, l.tr.n, err))
			l.grown.ring()
			return false
		}
	}
	for i, r := range batch {
		r.answer(appendRes{ref: Ref{Seq: first + int64(i), ID: r.e.ID}})
	}
	l.fedCommit(b.Records)
	l.grown.ring()
	if !inTxn && l.tr.n-l.stored.Load() >= int64(l.cfg.CheckpointEvery) {
		l.checkpoint()
	}
	return false
}

// keptHead follows a batch whose head the store committed with it: the
// head becomes Latest and is copied into the head file beside the
// checkpoint file; a head that joined the history is copied to the
// checkpoint file by fileLoop. Both copies are written before the
// batch is answered (head file) or after it (checkpoint file), neither
// is synced on this path: the store's copy is the durable one (ReadHead
// reads both), and a killed process leaves its writes in the page cache.
func (l *Log) keptHead(c Checkpoint, history bool) {
	l.setLatest(c)
	l.stats.checkpoints.Add(1)
	if l.head != nil {
		if err := l.head.write(c.Note, false); err != nil {
			l.log.Warn("audit: head file (the store keeps the head)", "size", c.Size, "err", err)
		}
	}
	if history {
		if l.cfg.CheckpointFile != "" {
			// Coalesce: only the newest checkpoint matters to the file.
			for {
				select {
				case l.files <- c:
					return
				default:
					select {
					case <-l.files:
					default:
					}
				}
			}
		}
	}
}

// flushQueue bounds the committed batches waiting for flushLoop.
const flushQueue = 64

// flushSlots bounds the batches between their commit and their answer.
const flushSlots = 3

// flushWait bounds how long a flush waits for the batch being committed.
const flushWait = 5 * time.Millisecond

// flushJob is a batch committed by the writer and not yet durable.
type flushJob struct {
	batch   []*appendReq
	recs    []Record // for OnCommit
	first   int64
	head    Checkpoint
	history bool
}

// flushLoop makes committed batches durable and answers them (decision
// 026): it takes every batch waiting, flushes once (the store's Flush
// covers every commit before it), then does for each batch, in order,
// what the writer does after a flushing Append: the head becomes Latest
// and is copied to the head file, then the appends are answered. A
// failed flush fails the batches it was to cover; the store then fails
// every later write, so appends keep failing closed.
func (l *Log) flushLoop() {
	defer close(l.flushDone)
	ctx := context.Background()
	for j := range l.flushes {
		jobs := []flushJob{j}
	more:
		for {
			select {
			case j, ok := <-l.flushes:
				if !ok {
					break more
				}
				jobs = append(jobs, j)
			default:
				break more
			}
		}
		// The writer is committing a batch: wait for it (at most
		// flushWait), so one fdatasync covers it too (more entries per
		// flush when the flush is slower than a commit).
		if l.committing.Load() {
			t := time.NewTimer(flushWait)
		wait:
			for {
				select {
				case j, ok := <-l.flushes:
					if !ok {
						break wait
					}
					jobs = append(jobs, j)
					if !l.committing.Load() {
						break wait
					}
				case <-t.C:
					break wait
				}
			}
			t.Stop()
		}
		err := l.fl.Flush(ctx)
		l.stats.flushes.Add(1)
		n := 0
		for _, j := range jobs {
			n += len(j.batch)
		}
		l.noteFlush(n)
		// The writer may commit what gathered meanwhile (gather) while
		// these batches are answered.
		l.unflushed.Add(-int64(len(jobs)))
		select {
		case l.flushed <- struct{}{}:
		default:
		}
		if err != nil {
			last := jobs[len(jobs)-1]
			l.log.Error("audit: flush failed", "from", jobs[0].first, "to", last.first+int64(len(last.batch)), "err", err)
		}
		for _, j := range jobs {
			if err != nil {
				l.stats.failures.Add(1)
				for _, r := range j.batch {
					r.answer(appendRes{err: fmt.Errorf("audit: append [%d, %d): flush: %w", j.first, j.first+int64(len(j.batch)), err)})
				}
				continue
			}
			l.keptHead(j.head, j.history)
			for i, r := range j.batch {
				r.answer(appendRes{ref: Ref{Seq: j.first + int64(i), ID: r.e.ID}})
			}
			l.fedCommit(j.recs) // durable and answered, as OnCommit says
		}
		l.grown.ring()
		l.unanswered.Add(-int64(len(jobs)))
		for range jobs {
			<-l.slots
			l.inflight.Done()
		}
	}
}

// fileLoop writes history checkpoints to the checkpoint file off the
// append path (temp file, fsync, rename, directory fsync: milliseconds).
func (l *Log) fileLoop() {
	defer close(l.filesDone)
	for c := range l.files {
		l.writeCheckpointFile(c)
	}
}

// writeCheckpointFile replaces the checkpoint file with c unless it holds
// a larger tree already (fileLoop and checkpoint both write it).
func (l *Log) writeCheckpointFile(c Checkpoint) {
	l.fileMu.Lock()
	defer l.fileMu.Unlock()
	if c.Size < l.fileSize {
		return
	}
	if err := writeFileAtomic(l.cfg.CheckpointFile, c.Note); err != nil {
		l.log.Error("audit: checkpoint file", "size", c.Size, "err", err)
		return
	}
	l.fileSize = c.Size
}

// storeHistory adds c to the store's checkpoint history and the
// checkpoint file; it reports whether the store took it (failures are
// logged, and the next trigger retries).
func (l *Log) storeHistory(c Checkpoint) bool {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.WriteTimeout)
	defer cancel()
	if err := l.st.PutCheckpoint(ctx, c); err != nil {
		l.log.Error("audit: checkpoint: store", "size", c.Size, "err", err)
		return false
	}
	if l.cfg.CheckpointFile != "" {
		l.writeCheckpointFile(c)
	}
	l.stored.Store(c.Size)
	return true
}

// setLatest makes c the latest checkpoint unless a larger one is.
func (l *Log) setLatest(c Checkpoint) {
	for {
		cur := l.latest.Load()
		if cur != nil && cur.Size > c.Size {
			return
		}
		if l.latest.CompareAndSwap(cur, &c) {
			return
		}
	}
}

// skipBatchSigning is set only by the benchmark that measures what
// signing every batch costs, and its test (export_test.go).
var skipBatchSigning atomic.Bool

// signHead signs the tree after a batch and keeps the signed note where
// a deleted tail would be noticed: in the head file beside the checkpoint
// file (one fdatasync, see head.go), or, without a checkpoint file, in
// the store. It becomes
// Latest. The store's checkpoint history gets a copy every
// checkpoint_every entries or checkpoint_interval (see checkpoint), so
// the history stays small while every batch is signed.
func (l *Log) signHead(ctx context.Context) error {
	c, err := SignCheckpoint(l.signer, l.tr.n, l.tr.root(), l.now())
	if err != nil {
		return err
	}
	if l.head == nil {
		if err := l.st.PutCheckpoint(ctx, c); err != nil {
			return err
		}
		l.stored.Store(c.Size)
	} else if err := l.head.write(c.Note, true); err != nil {
		return err
	}
	l.latest.Store(&c)
	l.stats.checkpoints.Add(1)
	return nil
}

// enqueue makes a batch durable on a Queue store, unsequenced.
func (l *Log) enqueue(ctx context.Context, batch []*appendReq, fail func(error)) {
	p := make([]Pending, len(batch))
	for i, r := range batch {
		p[i] = Pending{ID: r.e.ID, Data: r.data, Entry: r.e}
	}
	if err := l.q.Enqueue(ctx, p); err != nil {
		l.log.Error("audit: enqueue failed", "count", len(batch), "err", err)
		fail(fmt.Errorf("audit: enqueue %d entries: %w", len(batch), err))
		return
	}
	l.stats.batches.Add(1)
	l.stats.appends.Add(int64(len(batch)))
	for _, r := range batch {
		r.answer(appendRes{ref: Ref{Seq: -1, ID: r.e.ID}})
	}
}

// checkpoint stores a checkpoint of the current tree in the store's
// history and the checkpoint file: the batch's signed head when there is
// one, else a new signature. Failures are logged; the next trigger
// retries.
func (l *Log) checkpoint() {
	// The newest batch's head (Latest) once it is flushed.
	l.inflight.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.WriteTimeout)
	defer cancel()
	if l.broken {
		if err := l.reload(ctx); err != nil {
			l.log.Error("audit: checkpoint: store unavailable", "err", err)
			return
		}
	}
	c := l.Latest()
	fresh := c.Note == nil || c.Size != l.tr.n
	if fresh {
		var err error
		if c, err = SignCheckpoint(l.signer, l.tr.n, l.tr.root(), l.now()); err != nil {
			l.log.Error("audit: checkpoint", "err", err)
			return
		}
		l.stats.checkpoints.Add(1)
	}
	if !l.storeHistory(c) {
		return
	}
	l.setLatest(c)
	l.grown.ring()
}

// writeFileAtomic replaces path with data durably (temp file, fsync,
// rename, fsync of the directory).
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".checkpoint-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
