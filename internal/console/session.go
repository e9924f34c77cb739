package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/websession"
)

// maxMemorySessions bounds the in-memory session table; the oldest
// session is dropped when it is full, so a flood of logins cannot
// exhaust memory.
const maxMemorySessions = 10000

// StoredSession is one logged-in browser as a SessionStore keeps it
// (see websession.Record: the hash of the cookie, never the cookie).
type StoredSession = websession.Record

// SessionStore keeps console sessions server-side, so that they survive
// a restart and are shared by replicas: the SQLite store of the data
// directory or the PostgreSQL store of the audit log (see
// internal/store). Lifetimes are enforced by the console on every read,
// and by Sweep.
type SessionStore interface {
	// CreateSession stores a new session.
	CreateSession(ctx context.Context, s StoredSession) error
	// GetSession returns the session of hash, or nil (and no error)
	// when there is none.
	GetSession(ctx context.Context, hash []byte) (*StoredSession, error)
	// TouchSession sets the last activity of a session.
	TouchSession(ctx context.Context, hash []byte, lastSeen time.Time) error
	// DeleteSession removes a session (logout, or expired); removing an
	// absent one is no error.
	DeleteSession(ctx context.Context, hash []byte) error
	// SweepSessions removes every session last seen before idleBefore or
	// created before createdBefore, and returns how many it removed.
	SweepSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error)
	// CountSessions is the number of stored sessions (expired ones not
	// yet swept included).
	CountSessions(ctx context.Context) (int64, error)
}

// sessions applies the lifetimes over a SessionStore.
type sessions struct {
	st       SessionStore
	idle     time.Duration
	absolute time.Duration
	now      func() time.Time
	log      *slog.Logger
}

func newSessions(st SessionStore, idle, absolute time.Duration, now func() time.Time, log *slog.Logger) *sessions {
	if st == nil {
		st = NewMemorySessions()
	}
	if log == nil {
		log = slog.Default()
	}
	return &sessions{st: st, idle: idle, absolute: absolute, now: now, log: log}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashID is the store key of a cookie value.
func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// create starts a session for p and returns its cookie value.
func (s *sessions) create(ctx context.Context, p *identity.Principal) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	id := randomToken()
	now := s.now()
	if err := s.st.CreateSession(ctx, StoredSession{Hash: hashID(id), Principal: b, Created: now, LastSeen: now}); err != nil {
		return "", err
	}
	return id, nil
}

// touchEvery is how stale the stored last activity may get before a read
// writes it again: at most a minute (or a tenth of the idle time), so a
// busy console does not write on every click. A session may thus end up
// to that much before its idle time is over, never after.
func (s *sessions) touchEvery() time.Duration {
	return min(time.Minute, s.idle/10)
}

// get returns the principal of a live session, refreshing its idle
// timer when touch is set; nil when the id is unknown, the session has
// expired, or the store fails (fail closed: the browser is sent to the
// login).
func (s *sessions) get(ctx context.Context, id string, touch bool) *identity.Principal {
	k := hashID(id)
	ss, err := s.st.GetSession(ctx, k)
	if err != nil {
		s.log.Error("console: session store", "err", err)
		return nil
	}
	if ss == nil {
		return nil
	}
	now := s.now()
	if s.expired(ss, now) {
		if err := s.st.DeleteSession(ctx, k); err != nil {
			s.log.Error("console: session store", "err", err)
		}
		return nil
	}
	var p identity.Principal
	if err := json.Unmarshal(ss.Principal, &p); err != nil {
		s.log.Error("console: stored session unreadable", "err", err)
		return nil
	}
	if touch && now.Sub(ss.LastSeen) >= s.touchEvery() {
		if err := s.st.TouchSession(ctx, k, now); err != nil {
			s.log.Error("console: session store", "err", err)
		}
	}
	return &p
}

// remove ends a session (logout).
func (s *sessions) remove(ctx context.Context, id string) error {
	return s.st.DeleteSession(ctx, hashID(id))
}

// sweep removes the expired sessions.
func (s *sessions) sweep(ctx context.Context) (int64, error) {
	now := s.now()
	return s.st.SweepSessions(ctx, now.Add(-s.idle), now.Add(-s.absolute))
}

// len is the number of sessions stored.
func (s *sessions) len() int {
	n, err := s.st.CountSessions(context.Background())
	if err != nil {
		return -1
	}
	return int(n)
}

func (s *sessions) expired(ss *StoredSession, now time.Time) bool {
	return now.Sub(ss.LastSeen) >= s.idle || now.Sub(ss.Created) >= s.absolute
}

// MemorySessions is a SessionStore in memory: a restart logs everyone
// out and replicas do not share it. It is the store when Options has
// none (tests, a console without a database). It holds at most 10 000
// sessions; the oldest is dropped when it is full.
type MemorySessions struct {
	mu sync.Mutex
	m  map[[32]byte]StoredSession
}

// NewMemorySessions returns an empty in-memory store.
func NewMemorySessions() *MemorySessions { return &MemorySessions{m: map[[32]byte]StoredSession{}} }

func key(h []byte) (k [32]byte) { copy(k[:], h); return k }

// CreateSession implements SessionStore.
func (m *MemorySessions) CreateSession(_ context.Context, s StoredSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.m) >= maxMemorySessions {
		all := make([][32]byte, 0, len(m.m))
		for k := range m.m {
			all = append(all, k)
		}
		sort.Slice(all, func(i, j int) bool { return m.m[all[i]].Created.Before(m.m[all[j]].Created) })
		delete(m.m, all[0])
	}
	m.m[key(s.Hash)] = s
	return nil
}

// GetSession implements SessionStore.
func (m *MemorySessions) GetSession(_ context.Context, hash []byte) (*StoredSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[key(hash)]
	if !ok || len(hash) != 32 {
		return nil, nil
	}
	return &s, nil
}

// TouchSession implements SessionStore.
func (m *MemorySessions) TouchSession(_ context.Context, hash []byte, lastSeen time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.m[key(hash)]; ok {
		s.LastSeen = lastSeen
		m.m[key(hash)] = s
	}
	return nil
}

// DeleteSession implements SessionStore.
func (m *MemorySessions) DeleteSession(_ context.Context, hash []byte) error {
	m.mu.Lock()
	delete(m.m, key(hash))
	m.mu.Unlock()
	return nil
}

// SweepSessions implements SessionStore.
func (m *MemorySessions) SweepSessions(_ context.Context, idleBefore, createdBefore time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, s := range m.m {
		if !s.LastSeen.After(idleBefore) || !s.Created.After(createdBefore) {
			delete(m.m, k)
			n++
		}
	}
	return n, nil
}

// CountSessions implements SessionStore.
func (m *MemorySessions) CountSessions(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.m)), nil
}
