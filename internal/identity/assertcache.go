package identity

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultAssertionCacheSize bounds the assertions Asserter.Assertion keeps
// for reuse (one per principal and audience).
const DefaultAssertionCacheSize = 4096

// assertionCache maps (principal, audience) to a signed assertion and the
// time until which it may be handed out again. Bounded: when full, expired
// entries are dropped, then arbitrary ones (map order), so a flood of
// distinct principals costs signatures, never memory.
type assertionCache struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]cachedAssertion
}

type cachedAssertion struct {
	token    string
	reuseTil time.Time
}

func newAssertionCache(max int) *assertionCache {
	return &assertionCache{max: max, m: make(map[[32]byte]cachedAssertion)}
}

func (c *assertionCache) get(k [32]byte, now time.Time) (string, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || !now.Before(e.reuseTil) {
		return "", false
	}
	return e.token, true
}

func (c *assertionCache) put(k [32]byte, token string, reuseTil, now time.Time) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for k2, e := range c.m {
			if !now.Before(e.reuseTil) {
				delete(c.m, k2)
			}
		}
		for k2 := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k2)
		}
	}
	c.m[k] = cachedAssertion{token: token, reuseTil: reuseTil}
}

func (c *assertionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// assertionKey hashes every principal field an assertion carries, and the
// audience, each length-prefixed so no two different tuples collide by
// concatenation.
func assertionKey(p *Principal, audience string) [32]byte {
	h := sha256.New()
	var n [8]byte
	put := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put(audience)
	put(p.Issuer)
	put(p.Subject)
	put(string(p.Kind))
	put(p.Email)
	put(p.Name)
	put(p.AuthMethod)
	binary.BigEndian.PutUint64(n[:], uint64(len(p.Groups)))
	h.Write(n[:])
	for _, g := range p.Groups {
		put(g)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}
