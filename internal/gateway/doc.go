// Package gateway is Warden's data path: the reverse proxy in front of
// the model servers. For each request it normalises the path, routes it,
// reads the body once (bounded), verifies the caller (identity), decides
// (policy), runs the approval gate when the decision asks for one, makes
// the admission durable (audit), forwards the request with a signed
// identity assertion instead of the caller's credential, masks the
// response as it streams back (mask), and records how the call ended.
// It wires the domain packages through small interfaces it defines
// (Authenticator, Asserter, PolicySource, ApprovalGate, AuditLog,
// Maskers); Server runs it and the admin listener (whose API lives in
// internal/admin).
//
// # The guarantee
//
// No byte of a request reaches the upstream before its request.admitted
// entry is durable in the audit log (committed and fsynced, or durably
// queued on PostgreSQL): the body is read in full first, every check runs
// on it, and the proxy starts only after Append returned. Every answer
// the gateway itself writes — refusals and failures — is the one JSON
// error shape of internal/apierr with the request id, and no secret is
// in it. With audit.enabled: false (benchmarks only) nothing is recorded
// and the guarantee is void; Warden logs so at start-up.
//
// # What happens on each failure
//
//   - Path or body: an ambiguous path (dot segments, encoded slashes) is
//     400 bad_request, a body over limits.max_request_body 413, malformed
//     JSON on an openai route 400 with the byte offset — nothing is
//     forwarded; a malformed body is recorded as request.refused.
//   - Identity: no, malformed or invalid credential is 401/400 with an RFC
//     6750 challenge (unauthenticated, invalid_request, invalid_token);
//     an identity provider that cannot be reached yet is 503
//     temporarily_unavailable. Recorded as request.refused. Never
//     forwarded.
//   - Policy: a deny (or a rule that fails to evaluate, or an input beyond
//     the policy's bounds) is 403 forbidden naming the rule; recorded as
//     request.denied. A masking profile the decision names but the
//     configuration lacks is 500 masking_failed: without it the caller
//     would see unmasked data.
//   - Approval: without a workflow, 403 approval_required; denied, 403
//     forbidden; pending, 202 with the approval id (async, or a hold that
//     timed out; recorded as request.pending_approval); the approval store
//     unavailable, 503 approval_required — fail closed, not forwarded.
//   - Audit: if request.admitted cannot be made durable within 10s, 503
//     audit_unavailable and the request is not forwarded. Refusal records
//     are best effort (the request is refused either way). The terminal
//     request.completed is appended in the background once the caller has
//     the answer; if it fails, the admission stays visibly incomplete.
//   - Upstream: unreachable or failing before headers, 502
//     upstream_unavailable; no headers within timeouts.upstream_header,
//     504 upstream_timeout. A failure after the answer started cuts the
//     stream. The outcome (upstream_error, upstream_timeout,
//     client_aborted, truncated) is in request.completed.
//   - Assertion: signed (or reused, see identity.Asserter.Assertion) in
//     the admission step, before request.admitted; if it cannot be signed,
//     500 internal_error, recorded as request.refused (assertion_failed),
//     and nothing is forwarded. The request id travels upstream in
//     X-Request-Id, not in the assertion; every answer carries exactly
//     one X-Request-Id, the gateway's.
//   - Body types: on openai routes the known JSON fields are type-checked
//     before policy, in the same pass that derives the policy facts
//     (policy.CheckOpenAIBodyFacts): 400 bad_request naming the
//     field, recorded as request.refused (invalid_field_type).
//   - Masking: a response that cannot be masked safely is withheld — 502
//     masking_failed before any byte was sent, or the stream is cut, never
//     flushing held-back text — and request.completed says
//     masking_failed. The raw values masking removed are never recorded.
//
// It must never forward a request whose admission is not durable, pass
// the caller's credential or spoofable identity headers upstream, log or
// answer with a secret, or import the CLI or the admin package.
package gateway
