package identity

import (
	"crypto/sha256"
	"sync"
	"time"
	"unsafe"
)

// tokenCache holds verified principals keyed by the SHA-256 of the token,
// so a repeated token skips signature verification. The token itself is
// never stored. Entries live until min(token exp, verification +
// jwks_refresh); when full, the oldest insertion is evicted (FIFO: cheap,
// and a hot token is simply verified again).
type tokenCache struct {
	max int

	mu      sync.Mutex
	entries map[[32]byte]*cacheEntry
	order   [][32]byte // insertion ring
	next    int
}

type cacheEntry struct {
	p       *Principal
	issuer  string
	kid     string
	expires time.Time // when the entry stops being usable
}

func newTokenCache(max int) *tokenCache {
	if max <= 0 {
		return nil
	}
	return &tokenCache{max: max, entries: make(map[[32]byte]*cacheEntry, min(max, 1024))}
}

// get returns the cached entry for key if it has not expired at now.
func (c *tokenCache) get(key [32]byte, now time.Time) *cacheEntry {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	e := c.entries[key]
	if e != nil && !now.Before(e.expires) {
		delete(c.entries, key)
		e = nil
	}
	c.mu.Unlock()
	return e
}

func (c *tokenCache) put(key [32]byte, e *cacheEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		c.entries[key] = e
		return
	}
	if len(c.order) < c.max {
		c.order = append(c.order, key)
	} else {
		delete(c.entries, c.order[c.next])
		c.order[c.next] = key
		c.next = (c.next + 1) % c.max
	}
	c.entries[key] = e
}

// dropKeys forgets every entry verified with one of the given key ids of
// issuer: a key the IdP withdrew must stop working at once.
func (c *tokenCache) dropKeys(issuer string, kids []string) {
	if c == nil {
		return
	}
	gone := make(map[string]bool, len(kids))
	for _, k := range kids {
		gone[k] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.issuer == issuer && gone[e.kid] {
			delete(c.entries, k)
		}
	}
}

func (c *tokenCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// hashToken is SHA-256 of token without copying it to a []byte (tokens
// are up to 16 KB and this runs on every request). sha256 only reads.
func hashToken(token string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}
