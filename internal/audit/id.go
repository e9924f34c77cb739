package audit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// newEntryID returns a new entry id: a UUIDv7 (RFC 9562) in its
// canonical string form, made as github.com/google/uuid's NewV7 makes
// it — 48 bits of Unix milliseconds, then 12 bits of sub-millisecond time
// kept strictly increasing (so ids sort in the order they were made),
// then 62 random bits — in one allocation (the string) instead of two:
// it reads the random bytes with crypto/rand.Read into the stack (uuid
// reads them through an io.Reader, which makes its UUID escape).
func newEntryID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[8:]); err != nil {
		return "", fmt.Errorf("entry id: %w", err)
	}
	ms, seq := v7Time()
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | 0x0f&byte(seq>>8) // version 7
	u[7] = byte(seq)
	u[8] = u[8]&0x3f | 0x80 // variant 10 (RFC 9562)
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:]), nil
}

var (
	v7Mu   sync.Mutex
	v7Last int64 // ms<<12 | seq of the last id
	v7Now  = time.Now
)

// v7Time returns the millisecond and 12-bit sequence of the next id:
// the sub-millisecond time in units of 256 ns, or the last id's plus one
// when the clock has not moved past it.
func v7Time() (ms, seq int64) {
	v7Mu.Lock()
	defer v7Mu.Unlock()
	nano := v7Now().UnixNano()
	ms = nano / 1e6
	seq = (nano - ms*1e6) >> 8
	now := ms<<12 + seq
	if now <= v7Last {
		now = v7Last + 1
		ms, seq = now>>12, now&0xfff
	}
	v7Last = now
	return ms, seq
}
