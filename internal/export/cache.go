package export

import (
	"sync"

	"github.com/wardenhq/warden/internal/audit"
)

// cacheSlots is how many recent entries (and mapped events) are kept for
// the other sinks: sinks that follow the log together — the usual case —
// read, decode and map each entry once; a sink further behind than this
// reads the store itself.
const cacheSlots = 8192

// ring is a fixed-size cache of values by sequence number: slot seq %
// len. Safe for concurrent use.
type ring[V any] struct {
	mu    sync.Mutex
	keys  []int64
	vals  []V
	valid []bool
}

func newRing[V any](n int) *ring[V] {
	return &ring[V]{keys: make([]int64, n), vals: make([]V, n), valid: make([]bool, n)}
}

func (r *ring[V]) get(key int64) (V, bool) {
	i := int(key % int64(len(r.keys)))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.valid[i] && r.keys[i] == key {
		return r.vals[i], true
	}
	var zero V
	return zero, false
}

func (r *ring[V]) put(key int64, v V) {
	i := int(key % int64(len(r.keys)))
	r.mu.Lock()
	r.keys[i], r.vals[i], r.valid[i] = key, v, true
	r.mu.Unlock()
}

// update replaces the value of key, if the slot still holds key.
func (r *ring[V]) update(key int64, v V) {
	i := int(key % int64(len(r.keys)))
	r.mu.Lock()
	if r.valid[i] && r.keys[i] == key {
		r.vals[i] = v
	}
	r.mu.Unlock()
}

// readEntry is an entry as read from the store: decoded (read-only from
// then on: every sink shares it) with its canonical bytes. A fed entry
// (LogSource.Feed) holds the entry as the log appended it until its
// first use settles it into the decoded form.
type readEntry struct {
	e    *audit.Entry
	data []byte
	fed  bool
}
