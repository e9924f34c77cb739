package export

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

var (
	keyOnce    sync.Once
	skey, vkey string
)

// testKeys returns the signer and verifier of a key made once per test
// binary, named warden-audit.
func testKeys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if skey, vkey, err = note.GenerateKey(rand.Reader, "warden-audit"); err != nil {
			panic(err)
		}
	})
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

// memLog is an in-memory Source: entries with their Merkle hashes and
// signed checkpoints, appended by the test, followed by the exporter.
type memLog struct {
	signer note.Signer

	mu      sync.Mutex
	items   []Item
	data    [][]byte
	hashes  []tlog.Hash
	wake    chan struct{}
	failAt  int64 // Follow yields an error when reaching this position once (-1: never)
	follows int
}

func newMemLog(t testing.TB) *memLog {
	s, _ := testKeys(t)
	return &memLog{signer: s, wake: make(chan struct{}), failAt: -1}
}

var _ Source = (*memLog)(nil)

// append adds entries of kind request.completed (or the given entries).
func (l *memLog) append(t testing.TB, es ...*audit.Entry) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range es {
		n := int64(len(l.data))
		e.V, e.Seq = audit.SchemaVersion, n
		if e.ID == "" {
			e.ID = fmt.Sprintf("id-%d", n)
		}
		if e.Time.IsZero() {
			e.Time = time.Now().UTC()
		}
		data, err := audit.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(n, data, l.reader())
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.data = append(l.data, data)
		cp := *e
		l.items = append(l.items, Item{Entry: &cp, Data: data})
	}
	l.notify()
}

// checkpoint signs the current tree.
func (l *memLog) checkpoint(t testing.TB) audit.Checkpoint {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := int64(len(l.data))
	// A second checkpoint at the same size carries the same UID
	// (CheckpointUID is by size), which JetStream de-duplicates, so the
	// memory log signs a size once: a test that stopped its steady load
	// right after that load's own checkpoint (1 run in 25) would
	// otherwise expect one event more than the stream keeps.
	if k := len(l.items); k > 0 && l.items[k-1].Checkpoint != nil && l.items[k-1].Checkpoint.Size == n {
		return *l.items[k-1].Checkpoint
	}
	h, err := tlog.TreeHash(n, l.reader())
	if err != nil {
		t.Fatal(err)
	}
	c, err := audit.SignCheckpoint(l.signer, n, h, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l.items = append(l.items, Item{Checkpoint: &c})
	l.notify()
	return c
}

// reader reads the stored hashes (l.mu held).
func (l *memLog) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

// steadyLoad appends a request entry every 2 ms (a checkpoint every 25)
// until the returned stop function is called.
func (l *memLog) steadyLoad(t testing.TB) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-quit:
				return
			default:
			}
			l.append(t, sampleRequest(i))
			if i%25 == 24 {
				l.checkpoint(t)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() { close(quit); <-done }
}

func (l *memLog) notify() {
	close(l.wake)
	l.wake = make(chan struct{})
}

// fill appends n request entries, signing a checkpoint every every
// entries and at the end.
func (l *memLog) fill(t testing.TB, n, every int) {
	for i := 0; i < n; i++ {
		l.append(t, sampleRequest(i))
		if (i+1)%every == 0 {
			l.checkpoint(t)
		}
	}
	if n%every != 0 {
		l.checkpoint(t)
	}
}

func sampleRequest(i int) *audit.Entry {
	kinds := []string{audit.KindRequestAdmitted, audit.KindRequestCompleted, audit.KindRequestDenied, audit.KindConfigChanged}
	e := sampleEntries(kinds[i%len(kinds)])[0]
	e.ID = ""
	e.RequestID = fmt.Sprintf("req-%d", i)
	e.Time = time.Now().UTC()
	return e
}

func pos(it Item) int64 {
	if it.Checkpoint != nil {
		return it.Checkpoint.Size
	}
	return it.Entry.Seq
}

func (l *memLog) Follow(ctx context.Context, from int64) iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		l.mu.Lock()
		l.follows++
		i := 0
		for i < len(l.items) && pos(l.items[i]) < from {
			i++
		}
		l.mu.Unlock()
		for {
			l.mu.Lock()
			var batch []Item
			if i < len(l.items) {
				batch = append(batch, l.items[i:]...)
			}
			wake := l.wake
			failAt := l.failAt
			l.mu.Unlock()
			for _, it := range batch {
				if failAt >= 0 && pos(it) >= failAt {
					l.mu.Lock()
					l.failAt = -1
					l.mu.Unlock()
					yield(Item{}, errors.New("memlog: injected follow failure"))
					return
				}
				if !yield(it, nil) {
					return
				}
				i++
			}
			if len(batch) > 0 {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
		}
	}
}

func (l *memLog) ReadHashes(ctx context.Context, idx []int64) ([]tlog.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("memlog: no hash %d", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *memLog) Size(ctx context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.data)), nil
}
