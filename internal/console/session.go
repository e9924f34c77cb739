package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// maxSessions bounds the session table; the oldest session is dropped
// when it is full, so a flood of logins cannot exhaust memory.
const maxSessions = 10000

// session is one logged-in browser.
type session struct {
	p        *identity.Principal
	created  time.Time
	lastSeen time.Time
}

// sessions is the in-memory session table, keyed by the SHA-256 of the
// cookie value so that the table never holds a usable credential.
type sessions struct {
	mu       sync.Mutex
	m        map[[32]byte]*session
	idle     time.Duration
	absolute time.Duration
	now      func() time.Time
}

func newSessions(idle, absolute time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, idle: idle, absolute: absolute, now: now}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for p and returns its cookie value.
func (s *sessions) create(p *identity.Principal) string {
	id := randomToken()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.m) >= maxSessions {
		var oldestK [32]byte
		var oldest *session
		for k, v := range s.m {
			if oldest == nil || v.created.Before(oldest.created) {
				oldestK, oldest = k, v
			}
		}
		delete(s.m, oldestK)
	}
	s.m[sha256.Sum256([]byte(id))] = &session{p: p, created: now, lastSeen: now}
	return id
}

// get returns the principal of a live session, refreshing its idle
// timer when touch is set; nil when the id is unknown or the session
// has expired.
func (s *sessions) get(id string, touch bool) *identity.Principal {
	k := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[k]
	if ss == nil {
		return nil
	}
	if s.expired(ss, now) {
		delete(s.m, k)
		return nil
	}
	if touch {
		ss.lastSeen = now
	}
	return ss.p
}

// remove ends a session (logout).
func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.m, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

// len is the number of sessions held (for tests).
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.lastSeen) >= s.idle || now.Sub(ss.created) >= s.absolute
}

func (s *sessions) sweepLocked(now time.Time) {
	for k, v := range s.m {
		if s.expired(v, now) {
			delete(s.m, k)
		}
	}
}
