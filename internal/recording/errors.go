package recording

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: no recording (or stored object) with that id.
	ErrNotFound = errors.New("recording: not found")
	// ErrUnavailable: the store cannot accept a recording now. In strict
	// mode the caller must refuse the request before forwarding it.
	ErrUnavailable = errors.New("recording: store unavailable")
	// ErrErased: the recording's data key was destroyed; its content can
	// no longer be read. The digest (in the catalogue and the audit log)
	// remains.
	ErrErased = errors.New("recording: erased")
	// ErrExists: Put of an id that is already stored.
	ErrExists = errors.New("recording: already exists")
)

// CorruptError reports a recording whose stored bytes do not authenticate
// or do not match the digest the catalogue or the audit log committed to:
// a flipped byte, a truncated or swapped object, a damaged key. Use
// errors.As to tell it from an outage.
type CorruptError struct {
	// ID is the recording id.
	ID string
	// Reason says what did not verify.
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("recording %s: corrupt: %s", e.ID, e.Reason)
}

// IsCorrupt reports whether err is (or wraps) a *CorruptError.
func IsCorrupt(err error) bool {
	var ce *CorruptError
	return errors.As(err, &ce)
}
