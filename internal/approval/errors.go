package approval

import (
	"errors"
	"fmt"
)

// Code classifies errors for callers; the admin API maps each code to an
// HTTP status in one place (httpStatus).
type Code string

// Error codes.
const (
	// CodeInvalid: the input is malformed or incomplete (400).
	CodeInvalid Code = "invalid"
	// CodeUnauthenticated: no verified identity (401).
	CodeUnauthenticated Code = "unauthenticated"
	// CodeForbidden: the actor may not do this (403): self-approval,
	// not a reviewer, not the requester.
	CodeForbidden Code = "forbidden"
	// CodeNotFound: no such request (404).
	CodeNotFound Code = "not_found"
	// CodeConflict: the request is not in a state that allows this (409):
	// already decided, already reviewed by this reviewer, already open.
	CodeConflict Code = "conflict"
	// CodeInternal: a store or audit failure (500).
	CodeInternal Code = "internal"
)

// Error is an error with a Code and a message safe to show to the actor.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return "approval: " + e.Msg }

// Is makes errors.Is(err, ErrNotFound) (etc.) match any *Error of the
// same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Code == e.Code
}

// Sentinels for errors.Is; they match any *Error of their code.
var (
	ErrInvalid         = &Error{Code: CodeInvalid}
	ErrUnauthenticated = &Error{Code: CodeUnauthenticated}
	ErrForbidden       = &Error{Code: CodeForbidden}
	ErrNotFound        = &Error{Code: CodeNotFound}
	ErrConflict        = &Error{Code: CodeConflict}
)

// ErrDuplicate is returned by Store.Insert when another open request has
// the same OpenKey.
var ErrDuplicate = errors.New("approval: an open request with the same key exists")

// ErrStale is returned by an update function to abort a transaction
// without changes (the request moved on meanwhile); it is not an error
// for the caller.
var errStale = errors.New("approval: stale")

func errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the Code of err (CodeInternal for errors without one).
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
