package tlsutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadable is a value built from the contents of a few files, rebuilt
// when any of them changes. A failed rebuild keeps the previous value.
type reloadable[T any] struct {
	what  string // for logs and errors: "certificate", "client CA bundle" …
	files []string
	build func(contents [][]byte) (*T, error)

	mu   sync.Mutex // serialises reloads
	last [][]byte
	cur  atomic.Pointer[T]
}

// load reads the files and, if their contents differ from the last
// successful load, builds and installs the new value. It reports whether
// the value changed.
func (r *reloadable[T]) load() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	contents := make([][]byte, len(r.files))
	for i, f := range r.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return false, fmt.Errorf("%s: %w", r.what, err)
		}
		contents[i] = b
	}
	if r.last != nil && equalAll(r.last, contents) {
		return false, nil
	}
	v, err := r.build(contents)
	if err != nil {
		return false, fmt.Errorf("%s (%s): %w", r.what, strings.Join(r.files, ", "), err)
	}
	r.cur.Store(v)
	r.last = contents
	return true, nil
}

func (r *reloadable[T]) get() *T { return r.cur.Load() }

func equalAll(a, b [][]byte) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// keyPair builds a certificate from a cert and key file. The key must
// match the leaf (tls.X509KeyPair checks it).
func keyPair(certFile, keyFile string) *reloadable[tls.Certificate] {
	return &reloadable[tls.Certificate]{
		what:  "certificate",
		files: []string{certFile, keyFile},
		build: func(c [][]byte) (*tls.Certificate, error) {
			cert, err := tls.X509KeyPair(c[0], c[1])
			if err != nil {
				return nil, err
			}
			return &cert, nil
		},
	}
}

// certPool builds a CA pool from a PEM bundle; a bundle without any
// certificate is an error (an empty pool would trust nothing, silently).
func certPool(what, file string) *reloadable[x509.CertPool] {
	return &reloadable[x509.CertPool]{
		what:  what,
		files: []string{file},
		build: func(c [][]byte) (*x509.CertPool, error) {
			p := x509.NewCertPool()
			if !p.AppendCertsFromPEM(c[0]) {
				return nil, errors.New("no PEM certificate found")
			}
			return p, nil
		},
	}
}

// watcher reloads a set of reloadables when their files change.
type watcher struct {
	log      *slog.Logger
	poll     time.Duration
	debounce time.Duration
	items    []interface{ load() (bool, error) }
	files    []string
	changed  func() // called after any successful reload that changed a value
}

// run watches until ctx ends. It returns an error only if the watch
// cannot be set up; reload failures are logged and the previous values
// stay in service.
func (w *watcher) run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("tls: watch: %w", err)
	}
	bases := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range w.files {
		dirs[filepath.Dir(f)] = true
		bases[filepath.Base(f)] = true
	}
	for d := range dirs {
		if err := fw.Add(d); err != nil {
			fw.Close()
			return fmt.Errorf("tls: watch %s: %w", d, err)
		}
	}
	go w.loop(ctx, fw, bases)
	return nil
}

func (w *watcher) loop(ctx context.Context, fw *fsnotify.Watcher, bases map[string]bool) {
	defer fw.Close()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	poll := time.NewTicker(w.poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			// Kubernetes updates a secret volume by swapping the "..data"
			// symlink (and creating "..<timestamp>" directories); the
			// files themselves are symlinks through it.
			if n := filepath.Base(ev.Name); bases[n] || strings.HasPrefix(n, "..") {
				debounce.Reset(w.debounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			w.log.Warn("tls: file watch error; relying on the periodic re-read", "err", err)
		case <-debounce.C:
			w.reload()
		case <-poll.C:
			w.reload()
		}
	}
}

// reload re-reads every item; a failure keeps the previous value.
func (w *watcher) reload() {
	changedAny := false
	for _, it := range w.items {
		changed, err := it.load()
		if err != nil {
			w.log.Error("tls: reload failed; the previous certificate stays in service", "err", err)
			continue
		}
		changedAny = changedAny || changed
	}
	if changedAny {
		w.log.Info("tls: certificates reloaded", "files", strings.Join(w.files, ","))
		if w.changed != nil {
			w.changed()
		}
	}
}
