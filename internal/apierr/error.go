package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is an error with a Code and a message safe to show to the caller.
//
// A zero-Msg Error is a sentinel: errors.Is(err, &Error{Code: c}) matches
// any *Error of code c.
type Error struct {
	// Code classifies the error; it decides the status and wire type.
	Code Code
	// Msg says what was wrong, for the caller. It must never hold a
	// credential or a secret.
	Msg string
	// Rule names the policy rule that decided a refusal (data path).
	Rule string
	// Challenge is the WWW-Authenticate value of an authentication
	// failure (RFC 6750), set by the identity package.
	Challenge string
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// at least 1): how soon a retry of a 503 may succeed.
	RetryAfter time.Duration
	// Err is the cause, for logs; it is never written to the client.
	Err error
}

// New returns an *Error of code with msg.
func New(code Code, msg string) *Error { return &Error{Code: code, Msg: msg} }

// Errorf returns an *Error of code with a formatted message. %w is not
// special: the cause belongs in Error.Err (use Wrap).
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of code with msg whose cause is err.
func Wrap(code Code, msg string, err error) *Error { return &Error{Code: code, Msg: msg, Err: err} }

func (e *Error) Error() string {
	s := string(e.Code)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, sentinel) match any *Error of the sentinel's
// code, where a sentinel is an *Error with an empty Msg.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Code == e.Code
}

// CodeOf returns the Code of err: that of the first *Error in its chain,
// Internal for any other error, "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code.Known() {
		return e.Code
	}
	return Internal
}

// Body is the JSON shape of every error Warden writes:
// {"error":{"type","message","request_id","rule"}}.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the inside of Body.
type Detail struct {
	// Type is the Code's wire type.
	Type string `json:"type"`
	// Message says what was wrong.
	Message string `json:"message"`
	// RequestID is the X-Request-Id of the answer.
	RequestID string `json:"request_id,omitempty"`
	// Rule names the policy rule of a refusal.
	Rule string `json:"rule,omitempty"`
}

// internalMsg replaces the text of errors without a safe message.
const internalMsg = "internal error"

// Describe returns the status and body Write would answer err with.
func Describe(err error, requestID string) (int, Body) {
	var e *Error
	if !errors.As(err, &e) || !e.Code.Known() || e.Code == Internal {
		return Internal.Status(), Body{Detail{Type: Internal.Type(), Message: internalMsg, RequestID: requestID}}
	}
	return e.Code.Status(), Body{Detail{Type: e.Code.Type(), Message: e.Msg, RequestID: requestID, Rule: e.Rule}}
}

// Write answers with err: the status of its code, the JSON body, and
// Cache-Control: no-store; a WWW-Authenticate challenge when the error
// carries one. Any other error, or one of code Internal, is answered 500
// "internal error" — log it before calling Write, its text is not sent.
func Write(w http.ResponseWriter, requestID string, err error) {
	status, body := Describe(err, requestID)
	var e *Error
	if errors.As(err, &e) && e.Challenge != "" {
		w.Header().Set("WWW-Authenticate", e.Challenge)
	}
	if e != nil && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	b, _ := json.Marshal(body)
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Encoding")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
