package approval

import (
	"errors"

	"github.com/wardenhq/warden/internal/apierr"
)

// Code classifies errors for callers. The codes are those of package
// apierr, the one vocabulary of Warden's HTTP answers; the admin API
// maps them to statuses there, in one place.
type Code = apierr.Code

// Error codes an approval operation returns.
const (
	// CodeInvalid: the input is malformed or incomplete (400).
	CodeInvalid = apierr.BadRequest
	// CodeUnauthenticated: no verified identity (401).
	CodeUnauthenticated = apierr.Unauthenticated
	// CodeForbidden: the actor may not do this (403): self-approval,
	// not a reviewer, not the requester.
	CodeForbidden = apierr.Forbidden
	// CodeNotFound: no such request (404).
	CodeNotFound = apierr.NotFound
	// CodeConflict: the request is not in a state that allows this (409):
	// already decided, already reviewed by this reviewer, already open.
	CodeConflict = apierr.Conflict
	// CodeInternal: a store or audit failure (500).
	CodeInternal = apierr.Internal
)

// Error is an error with a Code and a message safe to show to the actor
// (an apierr.Error).
type Error = apierr.Error

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
	return apierr.Errorf(code, format, args...)
}

// CodeOf returns the Code of err (CodeInternal for errors without one).
func CodeOf(err error) Code {
	if err == nil {
		return CodeInternal
	}
	return apierr.CodeOf(err)
}
