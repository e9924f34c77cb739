// Package approval implements human approval of high-risk requests
// (ISO/IEC 27001:2022 A.8.2 privileged access rights, A.5.18 access
// rights): one-time approvals of a single request and time-boxed,
// scoped, revocable just-in-time grants.
//
// # Model
//
// A [Request] is created either by the gateway (a policy rule with
// action require_approval; see [Service.Check]) or by a person through
// the admin API ([Service.RequestGrant], POST /v1/approvals in
// internal/admin, grants only). It
// carries a frozen copy of the policy's ApprovalSetting, so a policy
// reload never changes the rules for a request already in flight.
//
// States and transitions, all checked in one place (machine.go):
//
//	pending  --approve (threshold met)--> approved
//	pending  --deny--------------------> denied      (deny wins, at once)
//	pending  --cancel (requester)------> cancelled
//	pending  --TTL elapsed-------------> expired
//	approved --used by the bound request> used       (one_time, exactly once)
//	approved --unused for TTL----------> expired     (one_time)
//	approved --grant_duration elapsed--> expired     (grant)
//	approved --revoke------------------> revoked     (grant)
//
// # Guarantees
//
//   - Separation of duties without exceptions: the requester (same issuer
//     and subject) can never approve or deny their own request, whatever
//     their groups — admins included.
//   - A reviewer must belong to one of the setting's reviewer groups,
//     reviews a request once, and must give a reason. The requester must
//     give a justification (see below for gateway-created requests).
//   - MinApprovals approvals are needed; with OnePerGroup they must come
//     from distinct reviewer groups (a reviewer in several groups counts
//     for one of them: the check is a bipartite matching). One deny
//     decides the request as denied, whatever approvals it already has.
//   - A one-time approval is bound to the principal (issuer+subject),
//     method, normalised path, route, model and body SHA-256 of the
//     request that asked, and is consumed atomically exactly once.
//   - Every transition appends an audit entry before it commits; if the
//     append fails the transition fails (fail closed). Entry kinds:
//     approval.requested, approval.reviewed, approval.approved,
//     approval.denied, approval.expired, approval.cancelled,
//     approval.used, grant.active, grant.revoked, grant.expired.
//     The entry is written before the store commits, so evidence never
//     lags the effect; if the commit itself then fails (the database
//     died between the two), the log holds an entry for a transition
//     that did not happen, and the stored request still shows the truth.
//   - Transitions are race-free: each runs inside one store transaction
//     holding the request's row (SQLite: the single writer connection;
//     PostgreSQL: SELECT … FOR UPDATE).
//   - Requests live in the store, so a restart keeps pending requests
//     pending. Expiry is applied lazily on every read and by a periodic
//     sweeper ([Service.Run]); each expiry is an audit entry.
//   - Held callers are woken across replicas: in-process on every
//     transition, and through the store's change feed (PostgreSQL
//     LISTEN/NOTIFY) with a slow poll as a fallback.
//
// # Justification of gateway-created requests
//
// A request created by the gateway takes its justification from the
// caller's X-Warden-Justification header (GateRequest.Justification;
// trimmed, at most 1000 bytes). Without it the justification is
// "requested by gateway": the request itself, bound by its hash, is the
// thing justified, and reviewers can deny a request they find
// insufficiently explained.
//
// # Grants and policy
//
// An approved grant appears in the policy input ([Service.ActiveGrantsFor],
// only when its scope covers the call)
// as policy.Grant{ID, Scope: <approval setting name>, Expires}, so a
// rule can say has_grant("fine-tune"). Revocation takes effect on the
// next request: positive grant lookups always read the store; only "this
// principal holds no grant" is cached briefly.
//
// # The gate, as the gateway uses it
//
//	out, err := svc.Check(ctx, g)             // g: approval.GateRequest
//	if err == nil && out.Decision == approval.Pending && setting.Mode == policy.ApprovalHold {
//		hctx, cancel := context.WithTimeout(ctx, setting.HoldTimeout)
//		out, err = svc.HoldAlive(hctx, g, out.ApprovalID, 15*time.Second,
//			func() { w.WriteHeader(http.StatusProcessing) })
//		cancel()
//	}
//	// err: 503 (fail closed); Denied: 403; Pending: 202 + Retry-After;
//	// Proceed: forward, recording out.ApprovalID / out.GrantID.
//
// An identical retry (same principal, method, path, route, model, body
// hash) of a pending one-time request finds the same request; once it is
// approved, the next identical call consumes it; a denied request answers
// identical retries with Denied until its TTL would have ended, after
// which a retry opens a new request. A hold that times out returns the
// Pending outcome, so the caller can retry as in async mode.
//
// # Notifications
//
// Webhooks (Config.Webhooks) receive every transition they subscribe to
// as JSON (generic: Notification; slack: {"text": …}), signed with
// HMAC-SHA256 when a secret is set (see HeaderSignature), with an
// idempotency key (HeaderDelivery) that is the same on every retry.
// Deliveries are retried with exponential backoff on network errors,
// 5xx, 408 and 429, up to WebhookMaxAttempts; two workers deliver
// concurrently, so receivers must not rely on order (use the event time
// and the approval state). The queue is bounded (WebhookQueueSize): when
// it is full the notification is dropped, logged at error level and
// counted (warden_approval_webhooks_total{outcome="dropped"}); approval
// itself never depends on a notification.
//
// # Visibility
//
// A request is visible to its requester and to the members of its
// reviewer groups ([Request.VisibleTo], [Service.GetVisible]); to anyone
// else it does not exist (not found). This package offers Go services
// only: internal/admin maps them to HTTP.
//
// # What it must never do
//
// It never logs or stores a credential; webhook secrets are used only to
// sign. Notifications never block a transition or the gate: they go
// through a bounded queue and are dropped (logged and counted) when it
// is full.
package approval
