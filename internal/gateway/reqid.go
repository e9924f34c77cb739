package gateway

import (
	"crypto/rand"
	"encoding/hex"
)

// Request ids: a client-supplied X-Request-Id is kept when it is 8 to 128
// characters of [A-Za-z0-9._:-] (and recorded as client-supplied);
// anything else is replaced with a generated id.
const (
	minRequestIDLen = 8
	maxRequestIDLen = 128
)

func wellFormedRequestID(s string) bool {
	if len(s) < minRequestIDLen || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID returns 16 random bytes as 32 hex characters.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
