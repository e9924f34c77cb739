package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Change reports one reload attempt: a new version took effect, or the
// reload failed (Err set) and the old version stays.
type Change struct {
	// Old is the version before the reload.
	Old string `json:"old"`
	// New is the version after; equal to Old when Err is set.
	New string `json:"new"`
	// Actor is who or what triggered it: "sighup", "file-watch",
	// "admin:<subject>", or "signal:<name>" for other signals.
	Actor string `json:"actor"`
	// At is when the reload was attempted.
	At time.Time `json:"at"`
	// Err is why the reload failed; the old policy is still in force.
	Err error `json:"-"`
	// OldPolicy is the policy before the reload; NewPolicy the one
	// installed (nil when Err is set). Their Canonical forms are the
	// evidence of what changed.
	OldPolicy, NewPolicy *Policy `json:"-"`
}

// Changed reports whether the reload installed a different version.
func (c Change) Changed() bool { return c.Err == nil && c.Old != c.New }

// Engine holds the policy in force and replaces it atomically on reload.
// A policy that fails to load is never installed.
type Engine struct {
	path     string
	debounce time.Duration
	log      *slog.Logger
	now      func() time.Time
	check    func(*Policy) error

	cur atomic.Pointer[Policy]

	mu        sync.Mutex // serialises reloads and guards listeners
	listeners []func(Change)
}

// EngineOption configures an Engine.
type EngineOption func(*Engine)

// WithDebounce sets how long Watch waits after the last file event
// before reloading (default 200ms).
func WithDebounce(d time.Duration) EngineOption { return func(e *Engine) { e.debounce = d } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) EngineOption { return func(e *Engine) { e.log = l } }

// WithClock sets the clock used for Change.At (default time.Now).
func WithClock(now func() time.Time) EngineOption { return func(e *Engine) { e.now = now } }

// WithCheck adds a check every policy must pass before it is installed,
// at start and on each reload (for example that the masking profiles it
// names exist). A policy failing the check is treated like one that does
// not load: NewEngine fails, Reload keeps the old policy.
func WithCheck(check func(*Policy) error) EngineOption { return func(e *Engine) { e.check = check } }

// NewEngine loads the policy at path. It fails if the policy does not
// load, so a gateway never starts with no or half a policy.
func NewEngine(path string, opts ...EngineOption) (*Engine, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	e := &Engine{path: abs, debounce: 200 * time.Millisecond, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(e)
	}
	p, err := e.load()
	if err != nil {
		return nil, err
	}
	e.cur.Store(p)
	return e, nil
}

// load loads and checks the file.
func (e *Engine) load() (*Policy, error) {
	p, err := LoadFile(e.path)
	if err != nil {
		return nil, err
	}
	if e.check != nil {
		if err := e.check(p); err != nil {
			var le *LoadError
			if errors.As(err, &le) {
				return nil, err // names the file already
			}
			return nil, fmt.Errorf("policy: %s: %w", e.path, err)
		}
	}
	for _, w := range p.Warnings() {
		e.log.Warn("policy: "+w, "file", e.path, "version", p.Version())
	}
	return p, nil
}

// Current returns the policy in force. Use one *Policy for a whole
// request so the decision and its audit entry name the same version.
func (e *Engine) Current() *Policy { return e.cur.Load() }

// Path returns the absolute path of the policy file.
func (e *Engine) Path() string { return e.path }

// OnChange registers f to be called after each reload that installed a
// new version or failed. Reloads that find the same version do not
// call it. Callbacks run synchronously, in registration order, on the
// reloading goroutine; they must not call Reload.
func (e *Engine) OnChange(f func(Change)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listeners = append(e.listeners, f)
}

// Reload reads and loads the file again. On success the new policy is
// in force when Reload returns; on error the old one stays and the error
// is both returned and reported in the Change.
func (e *Engine) Reload(actor string) (Change, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.cur.Load()
	old := cur.Version()
	c := Change{Old: old, New: old, Actor: actor, At: e.now(), OldPolicy: cur}
	p, err := e.load()
	if err != nil {
		c.Err = err
		e.log.Warn("policy reload failed; keeping the previous version", "path", e.path, "actor", actor, "version", old, "err", err)
	} else {
		c.New, c.NewPolicy = p.Version(), p
		e.cur.Store(p)
		if c.New != old {
			e.log.Info("policy reloaded", "path", e.path, "actor", actor, "old", old, "new", c.New)
		}
	}
	if c.Err != nil || c.New != c.Old {
		for _, f := range e.listeners {
			f(c)
		}
	}
	return c, err
}

// Watch reloads the policy when its file changes, until ctx is done.
// It watches the file's directory, because editors and Kubernetes
// ConfigMaps replace files by rename; events are debounced. It returns
// an error only if the watch cannot be set up.
func (e *Engine) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy: watch: %w", err)
	}
	dir := filepath.Dir(e.path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("policy: watch %s: %w", dir, err)
	}
	go e.watchLoop(ctx, w)
	return nil
}

func (e *Engine) watchLoop(ctx context.Context, w *fsnotify.Watcher) {
	defer w.Close()
	base := filepath.Base(e.path)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			// "..data" is the symlink Kubernetes swaps to update a
			// mounted ConfigMap.
			if n := filepath.Base(ev.Name); n == base || n == "..data" {
				timer.Reset(e.debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			e.log.Warn("policy file watch error", "path", e.path, "err", err)
		case <-timer.C:
			e.Reload("file-watch") //nolint:errcheck // reported via log and OnChange
		}
	}
}

// ReloadOnSignal reloads the policy whenever the process receives one of
// sigs (default SIGHUP), until ctx is done. It registers the handler
// before returning and reloads on a separate goroutine. The actor is
// "sighup" for SIGHUP and "signal:<name>" otherwise.
func (e *Engine) ReloadOnSignal(ctx context.Context, sigs ...os.Signal) {
	if len(sigs) == 0 {
		sigs = []os.Signal{syscall.SIGHUP}
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				actor := "signal:" + s.String()
				if s == syscall.SIGHUP {
					actor = "sighup"
				}
				e.Reload(actor) //nolint:errcheck // reported via log and OnChange
			}
		}
	}()
}
