package apierr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// HeaderRequestID carries the request id, in requests and answers.
const HeaderRequestID = "X-Request-Id"

// Request ids: a client-supplied X-Request-Id is kept when it is 8 to 128
// characters of [A-Za-z0-9._:-]; anything else is replaced with a
// generated id, so a hostile header can neither forge log lines nor grow
// without bound.
const (
	minRequestIDLen = 8
	maxRequestIDLen = 128
)

// WellFormedRequestID reports whether a client-supplied id may be kept.
func WellFormedRequestID(s string) bool {
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

// NewRequestID returns 16 random bytes as 32 hex characters.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestID returns the id for r: its X-Request-Id when well formed
// (fromClient true), otherwise a new one.
func RequestID(r *http.Request) (id string, fromClient bool) {
	if id := r.Header.Get(HeaderRequestID); id != "" && WellFormedRequestID(id) {
		return id, true
	}
	return NewRequestID(), false
}

type reqIDKey struct{}

// RequestIDFrom returns the request id WithRequestID stored in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(reqIDKey{}).(string)
	return id
}

// WithRequestID gives every request through h an id (see RequestID),
// sets it as the answer's X-Request-Id and makes it available to h with
// RequestIDFrom. A request that already has one in its context keeps it.
func WithRequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if RequestIDFrom(r.Context()) != "" {
			h.ServeHTTP(w, r)
			return
		}
		id, _ := RequestID(r)
		w.Header().Set(HeaderRequestID, id)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqIDKey{}, id)))
	})
}

// WriteRequest is Write with the request id of r's context.
func WriteRequest(w http.ResponseWriter, r *http.Request, err error) {
	Write(w, RequestIDFrom(r.Context()), err)
}
