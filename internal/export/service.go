package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Lease elects the one exporting replica when several gateways share a
// PostgreSQL log (postgres.ExportStore). Lead returns true while this
// replica holds the lease; Resign gives it up.
type Lease interface {
	Lead(ctx context.Context) (bool, error)
	Resign(ctx context.Context) error
}

// Positions reads every sink's saved cursor (for status on a replica
// that does not export).
type Positions interface {
	Positions(ctx context.Context) (map[string]int64, error)
}

// ServiceOptions configure a Service.
type ServiceOptions struct {
	// Options are the exporter's.
	Options
	// Targets builds the sinks; called each time this replica starts
	// exporting (the exporter closes them when it stops). Required.
	Targets func() ([]Target, error)
	// Sinks are the configured sink names, in order (for status).
	Sinks []string
	// Lease, when set, gates exporting: only while Lead is true.
	Lease Lease
	// LeaseCheck is how often Lead is called. Default 1s.
	LeaseCheck time.Duration
	// Positions reads saved cursors for status when not exporting.
	Positions Positions
}

// Service runs the exporter for the gateway: always, or (with a Lease)
// only on the replica holding it, starting and stopping as the lease
// moves. It never blocks the data path: it only reads the log.
type Service struct {
	src  Source
	opts ServiceOptions

	mu        sync.Mutex
	x         *Exporter // the running exporter, nil when not exporting
	since     time.Time
	lastErr   string
	stopping  chan struct{}
	stopOnce  sync.Once
	drainTo   int64
	drainDone chan struct{}
}

// Report is the export status of this replica.
type Report struct {
	// Exporting is true when this replica delivers (with PostgreSQL,
	// when it holds the export lease).
	Exporting bool `json:"exporting"`
	// Since is when it started exporting.
	Since time.Time `json:"since,omitzero"`
	// LogSize is the number of committed entries.
	LogSize int64 `json:"log_size"`
	// Error is the last failure to start exporting (building a sink,
	// the lease), if any.
	Error string `json:"error,omitempty"`
	// Sinks are each sink's cursor, lag and counters.
	Sinks []Status `json:"sinks"`
}

// NewService returns a Service; Run starts it.
func NewService(src Source, opts ServiceOptions) (*Service, error) {
	if src == nil || opts.Targets == nil {
		return nil, errors.New("export: a source and targets are required")
	}
	if opts.LeaseCheck <= 0 {
		opts.LeaseCheck = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{src: src, opts: opts, stopping: make(chan struct{})}, nil
}

// Run exports until ctx ends or Drain completes.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stopping:
			s.waitDrained(ctx)
			cancel()
		case <-ctx.Done():
		}
	}()
	if s.opts.Lease == nil {
		return s.export(ctx)
	}
	for ctx.Err() == nil {
		lead, err := s.opts.Lease.Lead(ctx)
		if err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("export: lease check failed", "err", err)
			s.noteErr(err)
		}
		if lead {
			// Export until the lease is lost (checked every LeaseCheck) or
			// ctx ends.
			xctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- s.export(xctx) }()
			lost := false
			for !lost {
				select {
				case <-ctx.Done():
					lost = true
				case err := <-done:
					done <- err
					lost = true
				case <-time.After(s.opts.LeaseCheck):
					if ok, err := s.opts.Lease.Lead(ctx); !ok {
						if ctx.Err() == nil {
							s.opts.Logger.Warn("export: lost the export lease; stopping", "err", err)
						}
						lost = true
					}
				}
			}
			stop()
			if err := <-done; err != nil {
				s.noteErr(err)
			}
			if ctx.Err() != nil {
				rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				s.opts.Lease.Resign(rctx) //nolint:errcheck // closing: the session ends anyway
				rcancel()
				return nil
			}
		}
		if !sleep(ctx, s.opts.LeaseCheck) {
			return nil
		}
	}
	return nil
}

// export builds the targets and runs one exporter until ctx ends.
func (s *Service) export(ctx context.Context) error {
	var x *Exporter
	for x == nil {
		ts, err := s.opts.Targets()
		if err == nil {
			x, err = New(s.src, s.opts.Options, ts...)
			if err != nil {
				for _, t := range ts {
					t.Sink.Close()
				}
			}
		}
		if err != nil {
			s.noteErr(err)
			s.opts.Logger.Error("export: cannot start; retrying", "err", err)
			if !sleep(ctx, 5*time.Second) {
				return nil
			}
		}
	}
	s.mu.Lock()
	s.x, s.since, s.lastErr = x, s.opts.Now(), ""
	s.mu.Unlock()
	err := x.Run(ctx)
	s.mu.Lock()
	s.x = nil
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func (s *Service) noteErr(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
}

// Drain asks Run to stop once every sink has the log's entries up to its
// size and a checkpoint signing them (the log is closed: everything is
// signed), or when ctx ends, and waits for that.
func (s *Service) Drain(ctx context.Context) {
	size, err := s.src.Size(ctx)
	if err != nil {
		size = 0
	}
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.drainTo = size
		s.drainDone = make(chan struct{})
		s.mu.Unlock()
		close(s.stopping)
	})
	s.mu.Lock()
	done := s.drainDone
	s.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// waitDrained returns once every sink reached drainTo (or nothing is
// exporting, or ctx ends).
func (s *Service) waitDrained(ctx context.Context) {
	s.mu.Lock()
	to, done := s.drainTo, s.drainDone
	s.mu.Unlock()
	defer close(done)
	for {
		s.mu.Lock()
		x := s.x
		s.mu.Unlock()
		if x == nil {
			return
		}
		caught := true
		for _, st := range x.Status() {
			// Every entry before to, and the checkpoint that signs them:
			// without it the receiver holds entries it cannot verify.
			if st.Cursor < to || st.signed < to {
				caught = false
			}
		}
		if caught {
			return
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return
		}
	}
}

// Status reports this replica's view: the live status of each sink when
// it exports, or the saved cursors when it does not.
func (s *Service) Status(ctx context.Context) (Report, error) {
	size, err := s.src.Size(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("export: status: %w", err)
	}
	s.mu.Lock()
	x, rep := s.x, Report{Since: s.since, Error: s.lastErr, LogSize: size}
	s.mu.Unlock()
	if x != nil {
		rep.Exporting = true
		rep.Sinks = x.Status()
		for i := range rep.Sinks {
			rep.Sinks[i].LagEntries = max(size-rep.Sinks[i].Cursor, 0)
		}
		return rep, nil
	}
	rep.Since = time.Time{}
	var pos map[string]int64
	if s.opts.Positions != nil {
		if pos, err = s.opts.Positions.Positions(ctx); err != nil {
			return Report{}, fmt.Errorf("export: status: %w", err)
		}
	}
	for _, name := range s.opts.Sinks {
		c := pos[name]
		rep.Sinks = append(rep.Sinks, Status{Sink: name, Cursor: c, LagEntries: max(size-c, 0)})
	}
	return rep, nil
}
