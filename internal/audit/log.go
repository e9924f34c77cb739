package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Ref identifies an appended entry.
type Ref struct {
	// Seq is the entry's sequence number, or -1 when the store is a Queue
	// (the integrator assigns it later).
	Seq int64
	// ID is the entry ID.
	ID string
}

// ErrLogClosed: Append was called after Close.
var ErrLogClosed = errors.New("audit: log closed")

// Stats are counters of a Log, for metrics and tests.
type Stats struct {
	// Appends is the number of entries made durable.
	Appends int64
	// Batches is the number of store transactions that made them durable.
	Batches int64
	// Failures is the number of failed batches.
	Failures int64
	// Checkpoints is the number of checkpoints signed by this Log.
	Checkpoints int64
	// Flushes is the number of flushes that made batches durable apart
	// from their commit (a Flusher store; else 0).
	Flushes int64
	// Gathers is the number of batches cut under the moderate-rate
	// policy (decision 036, gathering while a flush runs); OwnFlushes
	// how many batches the writer flushed itself (of Flushes). Both stay
	// 0 while the flush pipeline is saturated (decision 040).
	Gathers, OwnFlushes int64
}

// Option configures Open.
type Option func(*Log)

// WithClock sets the clock used for entry and checkpoint times.
func WithClock(now func() time.Time) Option { return func(l *Log) { l.now = now } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(lg *slog.Logger) Option { return func(l *Log) { l.log = lg } }

// WithInstance sets Entry.Instance for entries that have none.
func WithInstance(name string) Option { return func(l *Log) { l.instance = name } }

// WithStartDetails adds details (e.g. the config version) to the
// gateway.started entry Open appends.
func WithStartDetails(d map[string]any) Option {
	return func(l *Log) { l.startDetails = d }
}

// Log is the audit log: it appends entries durably, maintains the Merkle
// tree, signs checkpoints and serves proofs. Safe for concurrent use.
type Log struct {
	st       Store
	q        Queue // nil unless the store is shared by replicas
	cfg      Config
	signer   note.Signer
	verifier note.Verifier
	now      func() time.Time
	log      *slog.Logger
	instance string

	startDetails map[string]any

	reqs   chan *appendReq
	ctl    chan chan struct{} // checkpoint now; closed when done
	quit   chan struct{}
	done   chan struct{} // closed when the writer (run) has stopped
	idone  chan struct{} // closed when the integrator has stopped (Queue stores)
	mu     sync.RWMutex  // guards closed
	closed bool
	busy   sync.WaitGroup // appends in flight
	bg     sync.WaitGroup // background verification
	// bgCancel stops the background verification (set before Open returns).
	bgCancel context.CancelFunc

	// Owned by the writer (or integrator) goroutine.
	tr     tree
	broken bool         // the store state must be reloaded before the next batch
	stored atomic.Int64 // size of the newest checkpoint in the store
	head   *headFile    // the head signed after every batch (SQLite)
	// keeper: the store commits each batch's signed head with it.
	keeper bool
	// fl is set when the store flushes apart from its commits (Flusher):
	// the writer hands each committed batch to flushLoop through flushes,
	// which flushes (one fdatasync for every batch committed meanwhile)
	// and answers; inflight counts the batches handed over and not yet
	// answered, flushDone is closed when flushLoop ends.
	fl        Flusher
	flushes   chan flushJob
	flushDone chan struct{}
	inflight  sync.WaitGroup
	slots     chan struct{} // taken per batch from commit to its answer
	// committing is set while the writer commits a batch it will hand
	// to flushLoop: a flush about to start waits for it.
	committing atomic.Bool
	// unflushed counts the batches handed to flushLoop whose flush has
	// not returned; flushed is signalled (capacity 1) when one returns.
	// The writer gathers appends while unflushed > 0 (gather).
	unflushed atomic.Int64
	// unanswered counts the batches handed to flushLoop and not yet
	// answered: at 0 the writer may flush a batch itself (run).
	unanswered atomic.Int64
	flushed    chan struct{}
	// flushAvg is the moving average of entries per flush, in 1/16ths
	// (noteFlush): below gatherSize the writer gathers (decision 040).
	flushAvg atomic.Int64
	// files feeds fileLoop the history checkpoints to copy to the
	// checkpoint file; filesDone is closed when it ends. fileMu guards
	// fileSize, the size of the checkpoint file's note.
	files     chan Checkpoint
	filesDone chan struct{}
	fileMu    sync.Mutex
	fileSize  int64

	latest atomic.Pointer[Checkpoint]
	grown  bell       // rung after every commit and checkpoint (Follow, WaitCheckpoint)
	agg    chunkCache // Aggregate's counts of whole chunks already read
	stats  struct {
		appends, batches, failures, checkpoints, flushes atomic.Int64
		gathers, ownFlushes                              atomic.Int64
	}

	// onCommit is the function OnCommit set (nil: none).
	onCommit atomic.Pointer[func([]Record)]

	// Verification result at Open.
	openReport Report
	openErr    error
}

// appendReq is one encoded entry handed to the writer. The writer (or
// flushLoop) answers it once with answer: res is written before done
// is signalled and read only after, so done carries no data and its
// channel is one object, not two (a buffered channel of an element with
// pointers allocates its buffer apart; decision 049). A waiter that gave
// up (its context ended) never reads res.
type appendReq struct {
	data []byte
	e    *Entry
	done chan struct{}
	res  appendRes
	// cb, for AppendAsync, is called with the result instead of done;
	// busy is then the Log's count of appends in flight, released after.
	cb   func(Ref, error)
	busy *sync.WaitGroup
}

// answer gives r its result and wakes its waiter, or calls its callback.
// Called once per request.
func (r *appendReq) answer(res appendRes) {
	if r.cb != nil {
		r.cb(res.ref, res.err)
		r.busy.Done()
		return
	}
	r.res = res
	r.done <- struct{}{}
}

// newAppendReq returns a request for data and e, ready to be answered.
func newAppendReq(data []byte, e *Entry) *appendReq {
	return &appendReq{data: data, e: e, done: make(chan struct{}, 1)}
}

type appendRes struct {
	ref Ref
	err error
}

// Open verifies the store and starts the log.
//
// The store is verified (see Verify) against its checkpoints and the
// checkpoint file: all of it, or with startup_verify: recent the recent
// window now and the rest in the background. If it does not verify, Open returns the *Divergence (wrapped)
// unless cfg.AllowUnverifiedStart; then it logs the divergence at error
// level and records it in the gateway.started entry it appends. Open then
// appends gateway.started and signs a checkpoint. The Log does not own
// st: close st after Log.Close.
func Open(ctx context.Context, st Store, cfg Config, signer note.Signer, verifier note.Verifier, opts ...Option) (*Log, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if signer == nil || verifier == nil {
		return nil, errors.New("audit: open: signer and verifier are required")
	}
	if signer.Name() != verifier.Name() || signer.KeyHash() != verifier.KeyHash() {
		return nil, errors.New("audit: open: signer and verifier are not the same key")
	}
	l := &Log{
		st: st, cfg: cfg, signer: signer, verifier: verifier,
		now: time.Now, log: slog.Default(),
		reqs: make(chan *appendReq, cfg.BatchMax), ctl: make(chan chan struct{}),
		quit: make(chan struct{}), done: make(chan struct{}), idone: make(chan struct{}),
		files: make(chan Checkpoint, 1), filesDone: make(chan struct{}),
	}
	for _, o := range opts {
		o(l)
	}
	l.q, _ = st.(Queue)
	if l.q == nil {
		_, l.keeper = st.(HeadKeeper)
	}
	if l.keeper {
		if fl, ok := st.(Flusher); ok {
			l.fl = fl
			l.flushes = make(chan flushJob, flushQueue)
			l.flushDone = make(chan struct{})
			l.slots = make(chan struct{}, flushSlots)
			l.flushed = make(chan struct{}, 1)
		}
	}

	// The newest of the checkpoint file, the head file and the head the
	// store committed with its last batch.
	external, source, err := ReadHeadFrom(ctx, st, cfg.CheckpointFile)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	vopt := VerifyOptions{External: external, ExternalSource: source, SingleWriter: l.q == nil}
	if cfg.StartupVerify == "recent" {
		size, err := st.Size(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: open: %w", err)
		}
		vopt.From = max(0, size-cfg.StartupVerifyWindow)
	}
	rep, verr := Verify(ctx, st, verifier, vopt)
	var div *Divergence
	switch {
	case verr == nil:
		l.log.Info("audit: store verified", "entries", rep.Size, "checkpoints", rep.Checkpoints,
			"unsigned_tail", rep.UnsignedTail, "elapsed", rep.Elapsed)
		if rep.UnsignedTail > 0 {
			l.log.Warn("audit: entries after the last checkpoint (crash recovery); signing them now",
				"from", rep.Latest.Size, "to", rep.Size)
		}
	case errors.As(verr, &div) && cfg.AllowUnverifiedStart:
		l.log.Error("audit: THE AUDIT STORE DOES NOT VERIFY; starting anyway because allow_unverified_start is set",
			"divergence", div.Msg, "seq", div.Seq, "checkpoint_size", div.CheckpointSize)
	case errors.As(verr, &div):
		return nil, fmt.Errorf("audit: open: the audit store does not verify (set audit.allow_unverified_start to start anyway): %w", verr)
	default:
		return nil, fmt.Errorf("audit: open: %w", verr)
	}
	l.openReport, l.openErr = rep, verr
	if verr == nil && external != nil {
		// The file's head (signed after the last batch) joins the store's
		// history, so proofs and witnesses can use it.
		if c, err := OpenCheckpoint(external, verifier); err == nil {
			if err := st.PutCheckpoint(ctx, c); err != nil && !errors.Is(err, ErrConflict) {
				return nil, fmt.Errorf("audit: open: store the checkpoint file's head: %w", err)
			}
		}
	}
	if verr != nil {
		// Appending is only possible if nothing beyond the entries is in
		// the way (hashes left by entries deleted from the tail).
		size, err := st.Size(ctx)
		if err != nil {
			return nil, fmt.Errorf("audit: open: %w", err)
		}
		if _, err := st.ReadHashes(ctx, []int64{tlog.StoredHashCount(size)}); err == nil {
			return nil, fmt.Errorf("audit: open: cannot continue this store even with allow_unverified_start: it holds tree hashes beyond its %d entries; archive it and start a new one: %w", size, verr)
		}
	}

	if err := l.reload(ctx); err != nil {
		return nil, err
	}
	if l.q == nil && cfg.CheckpointFile != "" {
		h, err := openHeadFile(HeadPath(cfg.CheckpointFile))
		if err != nil {
			return nil, fmt.Errorf("audit: open: %w", err)
		}
		l.head = h
	}
	go l.fileLoop()
	if l.fl != nil {
		go l.flushLoop()
	}
	go l.run()
	if l.q != nil {
		go l.integrate()
	} else {
		close(l.idone)
	}

	details := map[string]any{
		"verified_entries": rep.Size - rep.From,
		"verified_from":    rep.From,
		"unsigned_tail":    rep.UnsignedTail,
		"unverified_start": verr != nil,
	}
	if div != nil {
		details["divergence"] = div.Msg
	}
	if verr == nil {
		closedBefore, abandoned, err := l.abandonOpen(ctx)
		if err != nil {
			l.Close(ctx)
			return nil, fmt.Errorf("audit: open: close requests a crash left open: %w", err)
		}
		details[detailClosedBefore], details["abandoned"] = closedBefore, abandoned
	} else {
		// A store that does not verify may miss records: pairing is not
		// attempted, and without closed_before the next start scans all.
		l.log.Warn("audit: unverified start: admissions a crash left open are not closed this time")
	}
	for k, v := range l.startDetails {
		if _, ok := details[k]; !ok {
			details[k] = v
		}
	}
	if _, err := l.Append(ctx, &Entry{Kind: KindGatewayStarted, Details: details}); err != nil {
		l.Close(ctx)
		return nil, fmt.Errorf("audit: open: record start: %w", err)
	}
	if l.q == nil {
		l.checkpointNow(ctx)
	}
	if verr == nil && rep.From > 0 {
		bctx, cancel := context.WithCancel(context.Background())
		l.bgCancel = cancel
		l.bg.Add(1)
		go l.verifyInBackground(bctx, vopt.External)
	}
	return l, nil
}

// verifyInBackground runs the full verification after a start that
// verified only the recent entries. A divergence is logged at error level
// and recorded as an audit.verify_failed entry.
func (l *Log) verifyInBackground(ctx context.Context, external []byte) {
	defer l.bg.Done()
	rep, err := Verify(ctx, l.st, l.verifier, VerifyOptions{External: external, SingleWriter: l.q == nil})
	var div *Divergence
	switch {
	case err == nil:
		l.log.Info("audit: background verification passed", "entries", rep.Size, "elapsed", rep.Elapsed)
	case errors.As(err, &div):
		l.log.Error("audit: BACKGROUND VERIFICATION FAILED: the audit store was tampered with",
			"divergence", div.Msg, "seq", div.Seq, "checkpoint_size", div.CheckpointSize)
		if _, aerr := l.Append(ctx, &Entry{Kind: KindVerifyFailed, Details: map[string]any{
			"divergence": div.Msg, "seq": div.Seq, "checkpoint_size": div.CheckpointSize,
		}}); aerr != nil {
			l.log.Error("audit: record verification failure", "err", aerr)
		}
	case ctx.Err() != nil:
	default:
		l.log.Error("audit: background verification", "err", err)
	}
}

// reload reads the tree state and latest checkpoint from the store. In
// an unverified start the stored hashes may be damaged; then the tree is
// recomputed from the entries.
func (l *Log) reload(ctx context.Context) error {
	// Batches still being flushed are not in the store's reads yet.
	l.inflight.Wait()
	size, err := l.st.Size(ctx)
	if err != nil {
		return fmt.Errorf("audit: reload: %w", err)
	}
	tr, err := loadTree(ctx, l.st, size)
	if err != nil {
		if l.openErr == nil {
			return err
		}
		if tr, err = rebuildTree(ctx, l.st, size); err != nil {
			return err
		}
	}
	l.tr = tr
	c, err := l.st.LatestCheckpoint(ctx)
	switch {
	case err == nil:
		l.stored.Store(c.Size)
		if cur := l.latest.Load(); cur == nil || cur.Size < c.Size || cur.Size > tr.n {
			l.latest.Store(&c)
		}
	case errors.Is(err, ErrNotFound):
		l.stored.Store(0)
	default:
		return fmt.Errorf("audit: reload: %w", err)
	}
	if l.keeper {
		// A batch whose commit reported an error may have committed,
		// head included: that head is the tree's signed note, so the
		// next checkpoint of this size reuses it instead of signing a
		// second note of one size.
		if note, err := l.st.(HeadKeeper).Head(ctx); err == nil && note != nil {
			if h, err := OpenCheckpoint(note, l.verifier); err == nil && h.Size == tr.n {
				if cur := l.latest.Load(); cur == nil || cur.Size != h.Size {
					l.latest.Store(&h)
				}
			}
		}
	}
	l.broken = false
	return nil
}

// rebuildTree recomputes the tree of size n from the entry bytes.
func rebuildTree(ctx context.Context, st Store, n int64) (tree, error) {
	var tr tree
	for from := int64(0); from < n; from += verifyChunk {
		recs, err := st.ReadRecords(ctx, from, min(from+verifyChunk, n))
		if err != nil {
			return tree{}, fmt.Errorf("audit: rebuild tree: %w", err)
		}
		for _, r := range recs {
			tr.add(r.Data)
		}
	}
	return tr, nil
}

// Append makes e durable and returns its Ref. It fills e.V, e.ID (if
// empty), e.Time (if zero) and e.Instance (if empty). It returns only once
// the entry is committed and fsynced (or, on a Queue store, durably
// enqueued); concurrent appends share a transaction. An error means the
// entry may not be durable: the caller must fail closed. The log keeps a
// copy of e, not e: the caller may reuse e once Append has returned.
func (l *Log) Append(ctx context.Context, e *Entry) (Ref, error) {
	data, err := l.prepare(e)
	if err != nil {
		return Ref{}, err
	}
	// One allocation for the request and the log's copy of the entry,
	// which the writer, the indexer and the exporter read after Append
	// has returned (on a timeout, even while the caller goes on).
	r := &ownedReq{ent: *e}
	r.req = appendReq{data: data, e: &r.ent, done: make(chan struct{}, 1)}
	if err := l.hold(); err != nil {
		return Ref{}, err
	}
	defer l.busy.Done()
	return l.submit(ctx, &r.req)
}

// AppendAsync hands e to the log as Append does, without waiting for it
// to be durable: it returns once the writer has taken e (or with an
// error if ctx ends first, the log is closed or e cannot be encoded;
// then done is never called). done is called exactly once with what
// Append would have returned — after the same fdatasync, or with the
// failure — from the log's own goroutine, so it must be quick and must
// not block or call the Log. Close waits for the entries handed over
// this way to be answered. For entries the caller need not wait for
// (the gateway's request.completed, decision 049): a goroutine parked
// per entry and woken by the writer cost more than the callback.
func (l *Log) AppendAsync(ctx context.Context, e *Entry, done func(Ref, error)) error {
	data, err := l.prepare(e)
	if err != nil {
		return err
	}
	r := &ownedReq{ent: *e}
	r.req = appendReq{data: data, e: &r.ent, cb: done, busy: &l.busy}
	if err := l.hold(); err != nil {
		return err
	}
	select {
	case l.reqs <- &r.req:
		return nil // answer releases busy
	case <-ctx.Done():
		l.busy.Done()
		return fmt.Errorf("audit: append: %w", ctx.Err())
	case <-l.done:
		l.busy.Done()
		return ErrLogClosed
	}
}

// hold counts an append in flight (Close waits for it), or returns
// ErrLogClosed once Close has begun. The caller calls l.busy.Done.
func (l *Log) hold() error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrLogClosed
	}
	l.busy.Add(1)
	return nil
}

// ownedReq is an appendReq with the entry it points to.
type ownedReq struct {
	req appendReq
	ent Entry
}

// appendInOrder appends es in this order: all are handed to the writer
// before the first is waited for, so its group commit takes many of them
// to one flush. It returns at the first failure (the entries after it
// may still become durable; the caller fails closed).
func (l *Log) appendInOrder(ctx context.Context, es []*Entry) ([]Ref, error) {
	reqs := make([]*appendReq, len(es))
	for i, e := range es {
		data, err := l.prepare(e)
		if err != nil {
			return nil, err
		}
		cp := *e
		reqs[i] = newAppendReq(data, &cp)
	}
	if err := l.hold(); err != nil {
		return nil, err
	}
	defer l.busy.Done()
	for _, r := range reqs {
		select {
		case l.reqs <- r:
		case <-ctx.Done():
			return nil, fmt.Errorf("audit: append: %w", ctx.Err())
		case <-l.done:
			return nil, ErrLogClosed
		}
	}
	refs := make([]Ref, len(reqs))
	for i, r := range reqs {
		select {
		case <-r.done:
			res := r.res
			if res.err != nil {
				return nil, res.err
			}
			refs[i] = res.ref
		case <-ctx.Done():
			// The entry may still become durable; the caller fails closed.
			return nil, fmt.Errorf("audit: append: %w", ctx.Err())
		}
	}
	return refs, nil
}

// submit hands one encoded entry to the writer and waits for it (Append,
// and Close after the log is marked closed).
func (l *Log) submit(ctx context.Context, r *appendReq) (Ref, error) {
	select {
	case l.reqs <- r:
	case <-ctx.Done():
		return Ref{}, fmt.Errorf("audit: append: %w", ctx.Err())
	case <-l.done:
		return Ref{}, ErrLogClosed
	}
	select {
	case <-r.done:
		return r.res.ref, r.res.err
	case <-ctx.Done():
		// The entry may still become durable; the caller fails closed.
		return Ref{}, fmt.Errorf("audit: append: %w", ctx.Err())
	}
}

// prepare fills e's version, id, time and instance and returns its
// canonical encoding.
func (l *Log) prepare(e *Entry) ([]byte, error) {
	e.V = SchemaVersion
	if e.ID == "" {
		id, err := newEntryID()
		if err != nil {
			return nil, fmt.Errorf("audit: append: %w", err)
		}
		e.ID = id
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	if e.Instance == "" {
		e.Instance = l.instance
	}
	return Marshal(e)
}

// Latest returns the latest checkpoint (zero before the first).
func (l *Log) Latest() Checkpoint {
	if c := l.latest.Load(); c != nil {
		return *c
	}
	return Checkpoint{}
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{
		Appends:     l.stats.appends.Load(),
		Batches:     l.stats.batches.Load(),
		Failures:    l.stats.failures.Load(),
		Checkpoints: l.stats.checkpoints.Load(),
		Flushes:     l.stats.flushes.Load(),
		Gathers:     l.stats.gathers.Load(),
		OwnFlushes:  l.stats.ownFlushes.Load(),
	}
}

// StartReport returns what verification found at Open, and the
// divergence if the log started unverified.
func (l *Log) StartReport() (Report, error) { return l.openReport, l.openErr }

// Verifier returns the checkpoint verifier key.
func (l *Log) Verifier() note.Verifier { return l.verifier }

// Store returns the underlying store.
func (l *Log) Store() Store { return l.st }

// Close stops accepting appends, waits for those in flight, appends
// gateway.stopped, signs a final checkpoint and stops the writer. It does
// not close the store.
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	if l.bgCancel != nil {
		l.bgCancel()
	}
	l.bg.Wait()
	l.busy.Wait()
	e := &Entry{V: SchemaVersion, Kind: KindGatewayStopped, Time: l.now().UTC(), Instance: l.instance}
	var err error
	if id, uerr := newEntryID(); uerr == nil {
		e.ID = id
		var data []byte
		if data, err = Marshal(e); err == nil {
			_, err = l.submit(ctx, newAppendReq(data, e))
		}
	} else {
		err = uerr
	}
	l.checkpointNow(ctx)
	close(l.quit)
	<-l.done
	<-l.idone
	if l.head != nil {
		l.head.close()
	}
	if err != nil {
		return fmt.Errorf("audit: close: record stop: %w", err)
	}
	return nil
}

// Probe reports whether the store answers, without recording anything:
// it reads the log's size. The readiness check uses it to learn that a
// store which failed appends is back.
func (l *Log) Probe(ctx context.Context) error {
	if _, err := l.st.Size(ctx); err != nil {
		return fmt.Errorf("audit: probe: %w", err)
	}
	return nil
}
