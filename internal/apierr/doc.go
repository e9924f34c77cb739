// Package apierr is the one vocabulary of errors Warden answers over HTTP
// — on the data path and on the admin listener alike — with the one JSON
// shape they are written in and the request id that ties every answer to
// its log lines and audit entries:
//
//	{"error":{"type":"forbidden","message":"…","request_id":"3f0c…","rule":"…"}}
//
// A [Code] names a kind of error. The table in code.go is the only place
// that says which HTTP status and which wire "type" a code answers with;
// packages return an [*Error] carrying a code and a message that is safe
// to show, and the HTTP layer ([Write]) does the rest. Errors that carry
// no code (store failures, bugs) are answered 500 "internal error": their
// text may describe internals and is never written to the client.
//
// It must never write a credential, a secret or a wrapped cause to a
// response: only Error.Msg, which the caller vouches for, reaches the
// client. It imports nothing of Warden, so every package may use it.
package apierr
