package recording

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErasureLog records erasures durably (in the audit log, as
// recording.erased entries) before the keys are destroyed, so the log
// never lacks an erasure that happened. If RecordErasure fails, nothing is
// destroyed.
type ErasureLog interface {
	RecordErasure(ctx context.Context, e Erased) error
}

// Erased describes one erased recording.
type Erased struct {
	ID        string
	RequestID string
	Principal string
	StartedAt time.Time
	Digest    Digest
	Erasure
}

// Options configure a Recorder. Blobs, Catalog and Keys are required.
type Options struct {
	Blobs   BlobStore
	Catalog Catalog
	Keys    *Keyring
	// Mode is Strict (default) or BestEffort.
	Mode FailureMode
	// SpillDir holds spill files (default os.TempDir()).
	SpillDir string
	// SpillThreshold, MemoryBudget, MaxSize, ProbeInterval, ProbeTimeout,
	// SaveTimeout, Retention and SweepInterval are as in Config (zero
	// values take Config's defaults; Retention 0 disables the sweeper).
	SpillThreshold int
	MemoryBudget   int64
	MaxSize        int64
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SaveTimeout    time.Duration
	Retention      time.Duration
	SweepInterval  time.Duration
	// StripHeaders are further header names never recorded (the identity
	// assertion header, configured API-key headers).
	StripHeaders []string
	// ErasureLog, when set, records every erasure before it happens.
	ErasureLog ErasureLog
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives operational messages (never content or keys).
	Logger *slog.Logger
}

// Recorder captures, stores, reads and erases recordings.
type Recorder struct {
	blobs   BlobStore
	cat     Catalog
	keys    *Keyring
	mode    FailureMode
	spill   string
	thresh  int
	budget  *budget
	maxSize int64
	probeIv time.Duration
	probeTo time.Duration
	saveTo  time.Duration
	retain  time.Duration
	sweepIv time.Duration
	strip   []string // canonical names
	elog    ErasureLog
	now     func() time.Time
	log     *slog.Logger

	health atomic.Pointer[health]
	kick   chan struct{}
	// builds hands captures to the builder goroutines (GOMAXPROCS of
	// them, at least 2), which build objects: CPU-bound work on
	// goroutines whose stacks have already grown, instead of growing a
	// fresh completion goroutine's stack for every recording.
	builds   chan *buildJob
	builders int
	queue    chan *commitReq
	linger   time.Duration // commitLinger
	// buildersDone is closed when the last builder has stopped
	// (buildersLeft counts them down): the committer then commits what
	// is queued and stops.
	buildersDone chan struct{}
	buildersLeft atomic.Int32
	// full wakes the lingering committer when a full batch is queued.
	full    chan struct{}
	encs    sync.Pool
	closing atomic.Bool
	closer  io.Closer // the object store, when Open opened it
	stop    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

type health struct {
	ok bool
	// at is when the probe (or failure) that set it happened, on the
	// real monotonic clock (Options.Now is for timestamps only).
	at  time.Time
	err error
}

// New returns a Recorder after one synchronous probe of the stores, and
// starts its background prober (and sweeper, with a retention period).
// Close stops them.
func New(opts Options) (*Recorder, error) {
	if opts.Blobs == nil || opts.Catalog == nil || opts.Keys == nil {
		return nil, errors.New("recording: New needs Blobs, Catalog and Keys")
	}
	d := Config{
		Mode: opts.Mode, SpillThreshold: opts.SpillThreshold, MemoryBudget: opts.MemoryBudget,
		MaxSize: opts.MaxSize, ProbeInterval: opts.ProbeInterval, ProbeTimeout: opts.ProbeTimeout,
		SaveTimeout: opts.SaveTimeout, SweepInterval: opts.SweepInterval, Retention: opts.Retention,
	}
	d.SetDefaults()
	if d.Mode != Strict && d.Mode != BestEffort {
		return nil, fmt.Errorf("recording: mode must be strict or best_effort, not %q", d.Mode)
	}
	r := &Recorder{
		blobs: opts.Blobs, cat: opts.Catalog, keys: opts.Keys, mode: d.Mode,
		spill: opts.SpillDir, thresh: d.SpillThreshold, budget: &budget{max: d.MemoryBudget},
		maxSize: d.MaxSize, probeIv: d.ProbeInterval, probeTo: d.ProbeTimeout, saveTo: d.SaveTimeout,
		retain: d.Retention, sweepIv: d.SweepInterval, strip: canonicalNames(opts.StripHeaders), elog: opts.ErasureLog,
		now: opts.Now, log: opts.Logger,
		kick:   make(chan struct{}, 1),
		builds: make(chan *buildJob), builders: max(2, runtime.GOMAXPROCS(0)), linger: commitLinger,
		queue:        make(chan *commitReq, commitQueue),
		buildersDone: make(chan struct{}), full: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.spill == "" {
		r.spill = os.TempDir()
	} else if err := os.MkdirAll(r.spill, 0o700); err != nil {
		return nil, fmt.Errorf("recording: spill dir: %w", err)
	}
	r.probe(context.Background())
	r.wg.Add(2 + r.builders)
	r.buildersLeft.Store(int32(r.builders))
	go r.prober()
	go r.committer()
	for range r.builders {
		go r.builder()
	}
	if r.retain > 0 {
		r.wg.Add(1)
		go r.sweeper()
	}
	return r, nil
}

// Close stops the background work after committing the recordings
// already queued. A Finish after Close fails.
func (r *Recorder) Close() error {
	r.stopped.Do(func() {
		r.closing.Store(true)
		close(r.stop)
	})
	r.wg.Wait()
	if r.closer != nil {
		return r.closer.Close()
	}
	return nil
}

// Mode is the failure mode.
func (r *Recorder) Mode() FailureMode { return r.mode }

// probe checks the object store, the catalogue and the spill directory,
// and records the result.
func (r *Recorder) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.probeTo)
	defer cancel()
	err := r.blobs.Probe(ctx)
	if err == nil {
		err = r.cat.Probe(ctx)
	}
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(r.spill, ".warden-probe-*"); err == nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	prev := r.health.Load()
	r.health.Store(&health{ok: err == nil, at: time.Now(), err: err})
	if err != nil && (prev == nil || prev.ok) {
		r.log.Error("recording store unavailable", "err", err, "mode", string(r.mode))
	} else if err == nil && prev != nil && !prev.ok {
		r.log.Info("recording store available again")
	}
}

func (r *Recorder) prober() {
	defer r.wg.Done()
	t := time.NewTicker(r.probeIv)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
		r.probe(context.Background())
	}
}

// saveFailed marks the store unhealthy until the next successful probe,
// and asks for that probe now.
func (r *Recorder) saveFailed(err error) {
	r.health.Store(&health{ok: false, at: time.Now(), err: err})
	r.log.Warn("recording failed", "err", err)
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Ready reports whether the store can accept a recording now: the last
// probe succeeded, no save has failed since, and the probe is recent
// (3×probe_interval+probe_timeout). It reads cached state only.
func (r *Recorder) Ready() error {
	h := r.health.Load()
	if h == nil {
		return ErrUnavailable
	}
	if !h.ok {
		return fmt.Errorf("%w: %v", ErrUnavailable, h.err)
	}
	if age := time.Since(h.at); age > 3*r.probeIv+r.probeTo {
		return fmt.Errorf("%w: no successful probe for %s", ErrUnavailable, age.Round(time.Millisecond))
	}
	return nil
}

// Reserve starts a capture for a request about to be forwarded. At level
// off it returns (nil, nil). In strict mode it returns an error wrapping
// ErrUnavailable when Ready fails: the caller must then refuse the
// request (503) without forwarding it. In best-effort mode it always
// returns a capture. It does no I/O.
func (r *Recorder) Reserve(info Info) (*Capture, error) {
	switch info.Level {
	case LevelOff, "":
		return nil, nil
	case LevelMetadata, LevelFull:
	default:
		return nil, fmt.Errorf("recording: level %q", info.Level)
	}
	if info.RequestID == "" {
		return nil, errors.New("recording: Reserve without a request id")
	}
	if r.mode == Strict {
		if err := r.Ready(); err != nil {
			return nil, err
		}
	}
	if info.Start.IsZero() {
		info.Start = r.now()
	}
	c := &Capture{r: r, info: info, id: r.newID(), lineBeg: true}
	c.bufs[0] = spillBuffer{dir: r.spill, threshold: r.thresh, budget: r.budget}
	c.marks = &c.bufs[0]
	if info.Level == LevelFull {
		c.bufs[1] = spillBuffer{dir: r.spill, threshold: r.thresh, budget: r.budget, encrypt: true}
		c.body = &c.bufs[1]
	}
	return c, nil
}

// newID returns a recording id that sorts by creation time: 13 hex digits
// of Unix milliseconds and 20 random hex digits.
func (r *Recorder) newID() string {
	// Built in one buffer: one allocation (the string) instead of three.
	var t [8]byte
	var b [10]byte
	binary.BigEndian.PutUint64(t[:], uint64(max(r.now().UnixMilli(), 0)))
	rand.Read(b[:])
	var id [16 + 20]byte
	hex.Encode(id[:16], t[:])
	hex.Encode(id[16:], b[:])
	return string(id[3:])
}

// IDPrefix is the time part of the recording ids made at t (its Unix
// millisecond): every id made at t or later sorts after it, every id made
// before t before it, so it bounds Filter.AfterID and Filter.BeforeID.
func IDPrefix(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(max(t.UnixMilli(), 0)))
	return hex.EncodeToString(b[:])[3:]
}

// meta builds the recording's header from the capture.
func (r *Recorder) meta(c *Capture) (*Meta, []byte) {
	m := &Meta{
		V: FormatVersion, ID: c.id, RequestID: c.info.RequestID, Principal: c.info.Principal,
		Route: c.info.Route, Level: c.info.Level, StartedAt: c.info.Start.UTC(),
		DurationNS: max(c.lastAt, c.headerAt, c.since()),
	}
	m.Request = RequestMeta{
		Method: c.req.Method, Scheme: c.req.Scheme, Host: c.req.Host, Path: c.req.Path, Query: redactQuery(c.req.RawQuery),
		Header: c.reqHeader, BodySize: int64(len(c.req.Body)),
	}
	var reqBody []byte
	switch {
	case len(c.req.Body) == 0:
		m.Request.Body = BodyNone
	case c.info.Level != LevelFull:
		m.Request.Body = BodyOmitted
	case c.info.RawRequest:
		m.Request.Body, reqBody = BodyRaw, c.req.Body
	case c.info.Redact != nil:
		red, err := c.info.Redact(c.req.Body)
		if err != nil {
			// Never fall back to the raw body.
			r.log.Warn("recording: request body redaction failed; body omitted", "request_id", c.info.RequestID, "err", err)
			m.Request.Body = BodyOmitted
		} else {
			m.Request.Body, reqBody = BodyRedacted, red
		}
	default:
		m.Request.Body = BodyOmitted
	}
	m.Response = ResponseMeta{
		Status: c.status, Header: c.header, HeaderAtNS: c.headerAt,
		BodySize: c.size, SSE: c.sse, Events: c.events, Marks: c.nMarks,
	}
	switch {
	case c.size == 0:
		m.Response.Body = BodyNone
	case c.body == nil:
		m.Response.Body = BodyOmitted
	default:
		m.Response.Body = BodyFull
	}
	if !c.sse {
		m.Response.Events = 0
	}
	return m, reqBody
}
