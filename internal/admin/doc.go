// Package admin is the one home of every HTTP endpoint of Warden that is
// not the data path: the admin API on the admin listener — audit search,
// entries, proofs and checkpoints; approvals and grants; the policy, its
// history and reload; API keys; the identity assertion's public keys —
// and, as they come, recording replay, export status, reports and the
// web console. (The gateway server keeps /healthz, /readyz and /metrics
// beside it: they report on the server process and must answer with or
// without an admin API.) docs/admin-api.md is generated from its routes.
//
// Domain packages (audit, approval, policy, identity) offer plain Go
// services; this package maps them to HTTP, so that there is one error
// shape (package apierr: {"error":{"type","message","request_id"}}), one
// request id on every answer, one authentication path and one role check:
//
//   - a Route names its Role: Public, Authenticated, or a role held
//     through group membership — auditor, approver, admin (Config.Roles);
//   - Authenticators verify the caller (bearer tokens and API keys today;
//     browser sessions and client certificates plug in the same way);
//   - handlers return errors; the router writes them.
//
// Adding an endpoint is one Route in the file of its area; adding an
// area is one line in New (see there).
//
// It must never let a request reach a non-public endpoint when no
// authenticator is configured (without identity the admin API is
// closed), never answer an error with anything but its safe message, and
// never write a credential, an API key's hash or a wrapped cause to a
// response or a log line.
package admin
