package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// Target is one sink with its delivery settings.
type Target struct {
	// Name identifies the sink in metrics, logs and status. Required,
	// unique.
	Name string
	// Sink delivers the batches. Required.
	Sink Sink
	// Cursor keeps the sink's position. Required.
	Cursor Cursor
	// Filter selects entries (nil: all). Checkpoints always pass.
	Filter *Filter
	// DeadLetter is the dead-letter file. Required.
	DeadLetter string
	// DropParams leaves request parameters (and the embedded entry) out.
	DropParams bool
	// BatchMax caps events per batch. Default 500.
	BatchMax int
	// BatchBytes caps the JSON bytes per batch. Default 1 MiB.
	BatchBytes int
	// BatchWait is how long a batch waits to fill once it has an event.
	// Default 200ms.
	BatchWait time.Duration
	// BackoffMin and BackoffMax bound the exponential backoff between
	// failed attempts (with jitter). Defaults 100ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// CatchupMinRate and CatchupFactor limit how fast the sink reads the
	// log, in positions (entries and checkpoints) per second: to
	// max(CatchupMinRate, CatchupFactor × the log's growth rate), so a
	// sink catching up after an outage leaves the data path its CPU
	// while one that follows the log is never slowed (see throttle.go).
	// Defaults DefaultCatchupMinRate and DefaultCatchupFactor; a negative
	// CatchupMinRate removes the limit.
	CatchupMinRate float64
	CatchupFactor  float64
	// CursorInterval is how often the cursor is saved while batches are
	// delivered: after a batch once this long has passed since the last
	// save, when it has passed with nothing more to deliver, and when
	// delivery stops. A crash re-sends what was delivered
	// since the last save (at-least-once; receivers de-duplicate on the
	// event uid) and never skips anything. Default 1s; negative: after
	// every batch.
	CursorInterval time.Duration
}

func (t *Target) setDefaults() {
	if t.BatchMax <= 0 {
		t.BatchMax = 500
	}
	if t.BatchBytes <= 0 {
		t.BatchBytes = 1 << 20
	}
	if t.BatchWait <= 0 {
		t.BatchWait = 200 * time.Millisecond
	}
	if t.BackoffMin <= 0 {
		t.BackoffMin = 100 * time.Millisecond
	}
	if t.BackoffMax < t.BackoffMin {
		t.BackoffMax = max(30*time.Second, t.BackoffMin)
	}
	if t.CatchupMinRate == 0 {
		t.CatchupMinRate = DefaultCatchupMinRate
	}
	if t.CursorInterval == 0 {
		t.CursorInterval = DefaultCursorInterval
	}
	if t.CatchupFactor < 1 {
		// Below 1 a sink behind would never catch up.
		t.CatchupFactor = DefaultCatchupFactor
	}
}

// DefaultCursorInterval is Target.CursorInterval's default: a saved
// position per second and sink instead of one per batch (a write to the
// log's database, in the gateway).
const DefaultCursorInterval = time.Second

// Options configure an Exporter.
type Options struct {
	// Origin is the log's origin (checkpoint key name). Required.
	Origin string
	// ProductVersion is Warden's version (metadata.product.version).
	ProductVersion string
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// StatusInterval is how often lag is recomputed. Default 1s.
	StatusInterval time.Duration
	// Evidence, when set, records dead letters in the audit log
	// (export.dead_lettered).
	Evidence Evidence
}

// Exporter delivers the log to its targets, each independently: a slow
// or dead sink delays only itself.
type Exporter struct {
	src     Source
	opts    Options
	log     *slog.Logger
	metrics *metrics
	runners []*runner
	// events caches mapped entry events (without a frontier) for the
	// other sinks, by seq*2 + (1 if parameters are dropped); mapMu makes
	// one sink map while the others wait for its result (mapShared).
	events *ring[Event]
	mapMu  sync.Mutex
	// growth is the log's growth rate, for the catch-up limit.
	growth growthRate
}

// Status is one sink's delivery state.
type Status struct {
	Sink string `json:"sink"`
	// Cursor is the next position to deliver.
	Cursor int64 `json:"cursor"`
	// LagEntries is the number of committed entries at or after Cursor.
	LagEntries int64 `json:"lag_entries"`
	// LagSeconds is the age of the oldest entry read and not delivered.
	LagSeconds   float64   `json:"lag_seconds"`
	Delivered    int64     `json:"delivered"`
	Failed       int64     `json:"failed"`
	DeadLettered int64     `json:"dead_lettered"`
	Filtered     int64     `json:"filtered"`
	LastDelivery time.Time `json:"last_delivery,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	// signed is the size of the newest checkpoint the sink has settled
	// in this session (0: none). The cursor cannot say: a checkpoint of
	// size N sits at position N, where the cursor already is once entry
	// N-1 is delivered, and it often goes in the next batch.
	signed int64
}

// New checks the targets and returns an Exporter; Run starts it.
func New(src Source, opts Options, targets ...Target) (*Exporter, error) {
	if src == nil {
		return nil, errors.New("export: a source is required")
	}
	if opts.Origin == "" {
		return nil, errors.New("export: the log origin is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = time.Second
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("export: metrics: %w", err)
	}
	x := &Exporter{src: src, opts: opts, log: opts.Logger, metrics: m, events: newRing[Event](2 * cacheSlots)}
	seen := map[string]bool{}
	for _, t := range targets {
		switch {
		case t.Name == "":
			return nil, errors.New("export: a target has no name")
		case seen[t.Name]:
			return nil, fmt.Errorf("export: two targets are named %q", t.Name)
		case t.Sink == nil || t.Cursor == nil || t.DeadLetter == "":
			return nil, fmt.Errorf("export: target %q needs a sink, a cursor and a dead-letter file", t.Name)
		}
		seen[t.Name] = true
		t.setDefaults()
		x.runners = append(x.runners, &runner{
			x: x, t: t, dl: &deadLetter{path: t.DeadLetter, ev: opts.Evidence},
			mapper: Mapper{Origin: opts.Origin, ProductVersion: opts.ProductVersion, DropParams: t.DropParams},
			log:    opts.Logger.With("sink", t.Name),
		})
	}
	return x, nil
}

// Run delivers until ctx ends, then closes the sinks. It returns nil
// after a cancellation: delivery errors are retried, never returned.
func (x *Exporter) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	gctx, stopGrowth := context.WithCancel(ctx)
	defer stopGrowth()
	go x.watchGrowth(gctx)
	for _, r := range x.runners {
		wg.Add(1)
		go func() { defer wg.Done(); r.run(ctx) }()
	}
	wg.Wait()
	var errs []error
	for _, r := range x.runners {
		if err := r.t.Sink.Close(); err != nil {
			errs = append(errs, fmt.Errorf("export: close %s: %w", r.t.Name, err))
		}
		if err := r.dl.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Status returns every sink's state, in target order.
func (x *Exporter) Status() []Status {
	out := make([]Status, len(x.runners))
	for i, r := range x.runners {
		r.mu.Lock()
		out[i] = r.st
		r.mu.Unlock()
	}
	return out
}

// runner delivers to one target.
type runner struct {
	x      *Exporter
	t      Target
	dl     *deadLetter
	mapper Mapper
	log    *slog.Logger

	mu      sync.Mutex
	st      Status
	pending time.Time // time of the oldest read, undelivered entry

	bucket bucket // catch-up limit (session goroutine only)

	// batch is the slice collect fills, reused from batch to batch once
	// deliver has returned (session goroutine only; sinks do not keep
	// the slice, see Sink).
	batch []Event
}

func (r *runner) run(ctx context.Context) {
	r.mu.Lock()
	r.st.Sink = r.t.Name
	r.mu.Unlock()
	go r.watchLag(ctx)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		r.noteError(err)
		r.log.Error("export: delivery stopped; resuming from the cursor", "err", err)
		if !sleep(ctx, r.backoff(attempt)) {
			return
		}
	}
}

type followed struct {
	it  Item
	err error
}

// session delivers from the cursor until an error or ctx ends.
func (r *runner) session(ctx context.Context) error {
	next, err := r.t.Cursor.Load(ctx)
	if err != nil {
		return err
	}
	fr, err := loadFrontier(ctx, r.x.src, next)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.st.Cursor = next
	r.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan followed, 2*r.t.BatchMax)
	go func() {
		defer close(items)
		for it, err := range r.x.src.Follow(ctx, next) {
			select {
			case items <- followed{it, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	pos, saved, savedAt := next, next, r.x.opts.Now()
	// Whatever ends the session, the position delivered so far is saved
	// (ctx may be done: the save gets a few seconds of its own).
	defer func() {
		if pos != saved {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := r.t.Cursor.Save(sctx, pos); err != nil {
				r.log.Warn("export: saving the cursor at the end of delivery failed; the events since the last save will be sent again", "cursor", pos, "saved", saved, "err", err)
			}
		}
	}()
	for {
		// A position delivered but not saved is saved once the interval
		// has passed even if nothing more comes: collect returns empty
		// at that moment (idle), and the save below runs.
		var idle <-chan time.Time
		var idleTimer *time.Timer
		if pos != saved && r.t.CursorInterval > 0 {
			idleTimer = time.NewTimer(max(r.t.CursorInterval-r.x.opts.Now().Sub(savedAt), 0))
			idle = idleTimer.C
		}
		batch, after, err := r.collect(ctx, items, &fr, pos, idle)
		if idleTimer != nil {
			idleTimer.Stop()
		}
		if err != nil {
			return err
		}
		var signed int64
		if len(batch) > 0 {
			if err := r.deliver(ctx, batch); err != nil {
				return err
			}
			for i := range batch {
				if batch[i].IsCheckpoint() {
					signed = max(signed, batch[i].Seq)
				}
			}
		}
		taken := after - pos
		pos = after
		if now := r.x.opts.Now(); pos != saved && (r.t.CursorInterval < 0 || now.Sub(savedAt) >= r.t.CursorInterval) {
			if err := r.t.Cursor.Save(ctx, pos); err != nil {
				return err
			}
			saved, savedAt = pos, now
		}
		r.mu.Lock()
		r.st.Cursor = pos
		r.st.signed = max(r.st.signed, signed)
		r.pending = time.Time{}
		r.mu.Unlock()
		if err := r.throttle(ctx, int(taken)); err != nil {
			return err
		}
	}
}

// collect reads the next batch: it blocks for the first item (or until
// idle fires), then takes more until the batch is full or BatchWait has
// passed. It returns the mapped events and the position after them.
func (r *runner) collect(ctx context.Context, items <-chan followed, fr *frontier, pos int64, idle <-chan time.Time) ([]Event, int64, error) {
	clear(r.batch) // the last batch is delivered: let its events go
	batch := r.batch[:0]
	defer func() { r.batch = batch }()
	size := 0
	var timer <-chan time.Time
	for len(batch) < r.t.BatchMax && size < r.t.BatchBytes {
		var f followed
		var ok bool
		select {
		case f, ok = <-items:
		case <-timer:
			return batch, pos, nil
		case <-idle:
			return batch, pos, nil
		case <-ctx.Done():
			return nil, pos, ctx.Err()
		}
		if !ok {
			if err := ctx.Err(); err != nil {
				return nil, pos, err
			}
			return nil, pos, errors.New("export: the log stopped following without an error")
		}
		if f.err != nil {
			return nil, pos, fmt.Errorf("export: follow the log from %d: %w", pos, f.err)
		}
		if timer == nil {
			timer = time.After(r.t.BatchWait)
		}
		var snap []tlog.Hash
		if len(batch) == 0 {
			snap = fr.snapshot()
		}
		ev, include, err := r.item(f.it, fr, snap)
		if err != nil {
			return nil, pos, err
		}
		if f.it.Checkpoint != nil {
			pos = f.it.Checkpoint.Size
		} else {
			pos = f.it.Entry.Seq + 1
		}
		if include {
			batch = append(batch, ev)
			size += len(ev.JSON)
		}
	}
	return batch, pos, nil
}

// item checks one item's position, advances the frontier and maps it.
// include is false for an entry the filter leaves out.
func (r *runner) item(it Item, fr *frontier, snap []tlog.Hash) (Event, bool, error) {
	if cp := it.Checkpoint; cp != nil {
		if cp.Size != fr.n {
			return Event{}, false, fmt.Errorf("export: the log yielded a checkpoint of size %d at position %d", cp.Size, fr.n)
		}
		if fr.root() != cp.Hash {
			r.x.metrics.mismatches.WithLabelValues(r.t.Name).Inc()
			r.log.Error("export: AUDIT LOG INCONSISTENT: a signed checkpoint does not match the entries exported before it; exporting it anyway for the receivers to see",
				"checkpoint_size", cp.Size)
		}
		ev, err := r.mapper.Checkpoint(*cp, snap)
		return ev, err == nil, err
	}
	e := it.Entry
	if e == nil {
		return Event{}, false, errors.New("export: the log yielded an empty item")
	}
	if e.Seq != fr.n {
		return Event{}, false, fmt.Errorf("export: the log yielded entry %d at position %d", e.Seq, fr.n)
	}
	data := it.Data
	if data == nil {
		var err error
		if data, err = audit.Marshal(e); err != nil {
			return Event{}, false, err
		}
	}
	r.mu.Lock()
	if r.pending.IsZero() {
		r.pending = e.Time
	}
	r.mu.Unlock()
	if r.t.Filter != nil {
		// The filter sees the entry as decoded (CEL over its fields).
		if it.fed {
			var err error
			if it, err = it.settled(); err != nil {
				return Event{}, false, err
			}
			e = it.Entry
		}
		fr.add(tlog.RecordHash(data))
		ok, err := r.t.Filter.Match(e, data)
		if err != nil {
			r.x.metrics.filterErrors.WithLabelValues(r.t.Name).Inc()
			r.log.Warn("export: filter failed; delivering the entry", "seq", e.Seq, "err", err)
		}
		if !ok {
			r.x.metrics.filtered.WithLabelValues(r.t.Name).Inc()
			r.mu.Lock()
			r.st.Filtered++
			r.mu.Unlock()
			return Event{}, false, nil
		}
	}
	ev, err := r.x.mapShared(&r.mapper, e, data, it.fed)
	if err != nil {
		return Event{}, false, err
	}
	if r.t.Filter == nil {
		// The mapping hashed the entry; the sinks share that hash.
		fr.add(ev.leaf)
	}
	if snap != nil {
		if ev, err = withFrontier(ev, snap); err != nil {
			return Event{}, false, err
		}
	}
	return ev, true, nil
}

// mapShared maps entry e without a frontier, once for every sink with
// the same DropParams: sinks that follow the log together (the usual
// case) would otherwise each map it, as they reach it at the same time.
// One mapping at a time; the loser of a race waits and finds the
// winner's event in the cache.
//
// fed: e is the entry as the log appended it (Item.fed), mapped with
// Mapper.entryFed.
func (x *Exporter) mapShared(m *Mapper, e *audit.Entry, data []byte, fed bool) (Event, error) {
	key := 2 * e.Seq
	if m.DropParams {
		key++
	}
	if ev, ok := x.events.get(key); ok {
		return ev, nil
	}
	x.mapMu.Lock()
	defer x.mapMu.Unlock()
	if ev, ok := x.events.get(key); ok {
		return ev, nil
	}
	var ev Event
	var err error
	if fed {
		ev, err = m.entryFed(e, data)
	} else {
		ev, err = m.Entry(e, data, nil)
	}
	if err != nil {
		return Event{}, err
	}
	x.events.put(key, ev)
	return ev, nil
}

// deliver sends batch until every event is settled, retrying with
// backoff. It returns only an error that stops the session (ctx ended, the
// dead-letter file failed).
func (r *runner) deliver(ctx context.Context, batch []Event) error {
	attempt := 0
	for len(batch) > 0 {
		ack, err := r.t.Sink.Send(ctx, batch)
		n := min(max(ack.Settled, 0), len(batch))
		if n > 0 {
			var dead []Event
			var reasons []string
			for _, rj := range ack.Rejected {
				if rj.Index >= 0 && rj.Index < n {
					dead = append(dead, batch[rj.Index])
					reasons = append(reasons, rj.Reason)
				}
			}
			if len(dead) > 0 {
				var eerr *evidenceError
				if derr := r.dl.write(r.t.Name, r.x.opts.Now(), dead, reasons); errors.As(derr, &eerr) {
					r.log.Error("export: the audit log did not take a dead-letter entry; the dead-letter file has the event", "err", derr)
				} else if derr != nil {
					return derr
				}
				r.x.metrics.deadLettered.WithLabelValues(r.t.Name).Add(float64(len(dead)))
				for i, ev := range dead {
					r.log.Warn("export: receiver refused an event; written to the dead-letter file", "uid", ev.UID, "reason", reasons[i])
				}
			}
			r.x.metrics.delivered.WithLabelValues(r.t.Name).Add(float64(n - len(dead)))
			r.mu.Lock()
			r.st.Delivered += int64(n - len(dead))
			r.st.DeadLettered += int64(len(dead))
			r.st.LastDelivery = r.x.opts.Now()
			r.mu.Unlock()
			batch = batch[n:]
			attempt = 0
		}
		if len(batch) == 0 {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("export: %s settled %d of %d events without an error", r.t.Name, n, n+len(batch))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.x.metrics.failed.WithLabelValues(r.t.Name).Inc()
		r.noteError(err)
		d := r.backoff(attempt)
		var se *SinkError
		if errors.As(err, &se) && se.RetryAfter > d {
			d = min(se.RetryAfter, r.t.BackoffMax)
		}
		r.log.Warn("export: delivery failed; retrying", "err", err, "pending", len(batch), "retry_in", d)
		if !sleep(ctx, d) {
			return ctx.Err()
		}
		attempt++
	}
	return nil
}

func (r *runner) noteError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Failed++
	r.st.LastError = err.Error()
	r.st.LastErrorAt = r.x.opts.Now()
}

// backoff returns the delay before retry attempt (0-based): exponential
// from BackoffMin to BackoffMax, with up to 25% jitter.
func (r *runner) backoff(attempt int) time.Duration {
	d := r.t.BackoffMin
	for i := 0; i < attempt && d < r.t.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.t.BackoffMax)
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// watchLag recomputes the lag gauges every StatusInterval.
func (r *runner) watchLag(ctx context.Context) {
	t := time.NewTicker(r.x.opts.StatusInterval)
	defer t.Stop()
	for {
		size, err := r.x.src.Size(ctx)
		r.mu.Lock()
		if err == nil {
			r.st.LagEntries = max(size-r.st.Cursor, 0)
		}
		r.st.LagSeconds = 0
		if !r.pending.IsZero() {
			r.st.LagSeconds = max(r.x.opts.Now().Sub(r.pending).Seconds(), 0)
		}
		lagE, lagS := r.st.LagEntries, r.st.LagSeconds
		r.mu.Unlock()
		r.x.metrics.lagEntries.WithLabelValues(r.t.Name).Set(float64(lagE))
		r.x.metrics.lagSeconds.WithLabelValues(r.t.Name).Set(lagS)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
