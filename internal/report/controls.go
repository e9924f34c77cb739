package report

// Control is one ISO/IEC 27001:2022 Annex A control the report has a
// section for, with what Warden enforces for it and what the section
// cannot prove.
type Control struct {
	ID, Title, Enforces, Limits string
}

// Controls are the report's sections, in order.
var Controls = []Control{
	{"A.5.15", "Access control",
		"Every request is decided by the ordered policy rules (allow, deny, require approval) before anything reaches a model server; the decision, the rule and the policy version are recorded with the request.",
		"Covers traffic through Warden only: a model server reachable without Warden is outside this evidence (network controls must prevent it)."},
	{"A.5.16", "Identity management",
		"Every admitted request carries a verified identity (OIDC token or API key); client-supplied identity headers are stripped; the upstream receives a short-lived signed assertion instead of the caller's token.",
		"Warden verifies identities the identity provider issued; the IdP's own joiner/mover/leaver process and group assignments are the IdP's controls and are not attested here."},
	{"A.5.17", "Authentication information",
		"API keys are stored only as hashes, shown once at creation, can expire and be revoked (effective immediately in every process); creation and revocation are audit entries; each use records the key id.",
		"OIDC credentials (passwords, MFA) are managed by the IdP and not visible to Warden. 'Last used' is the newest entry of the period using the key."},
	{"A.5.18", "Access rights",
		"Privileged operations need a time-boxed grant issued by reviewers; grants are scoped (routes, models, paths), expire on their own and can be revoked; every issue, use, revocation and expiry is recorded.",
		"Periodic access reviews of IdP groups are outside Warden."},
	{"A.5.28", "Collection of evidence",
		"Every call, refusal, approval transition, key and policy change is an entry of an append-only Merkle log; the report and its bundle are computed from those entries only, never from a derived index.",
		"Entries record metadata and hashes, not request or response bodies (unless the policy's log mode is full, masked)."},
	{"A.5.33", "Protection of records",
		"Entries are leaves of an RFC 6962 Merkle tree; checkpoints are signed (Ed25519) and, when configured, cosigned by independent witnesses; the whole log is verified offline (tree recomputed, every signature checked) for this report.",
		"Whoever holds the signing key can rewrite and re-sign the log; only witness cosignatures or checkpoints kept outside the operator's hands detect that. A witness refusal is an entry (witness.refused, the first of a streak) and an exception here; a witness that stays unreachable is only in the metrics and logs."},
	{"A.5.34", "Privacy and protection of PII",
		"Responses are masked before the caller sees them (JSON and SSE streams); the log keeps the rule, entity, location, count and a keyed fingerprint, never the original value; request parameters are logged as redacted by policy.",
		"Masking finds the entities its detectors know; PII in forms no detector recognises passes unmasked. Lawful basis and retention decisions are organisational."},
	{"A.8.2", "Privileged access rights",
		"Fine-tuning, export and admin routes require approval by reviewers other than the requester (separation of duties, no exception for any group), with a reason; refused self-approval attempts are recorded.",
		"Reviewers' group membership comes from the IdP."},
	{"A.8.3", "Information access restriction",
		"Requests the policy does not allow are refused with 403 and the rule that decided; nothing reaches the model server.",
		"Restrictions inside the model server (e.g. per-tenant data) are not visible to Warden."},
	{"A.8.5", "Secure authentication",
		"Missing, malformed, expired, wrongly-audienced, badly-signed tokens and unknown, revoked or expired API keys are refused with 401/400 and recorded with the reason; the token is never logged.",
		"Authentication strength at the IdP (MFA, password policy) is not attested here."},
	{"A.8.11", "Data masking",
		"Masking actions per entity, rule and route; a response that cannot be masked safely is withheld.",
		"A count says what was replaced, not what was missed."},
	{"A.8.12", "Data leakage prevention",
		"Responses that could not be masked are withheld (502) or cut with an error event; truncated streams drop held-back text instead of flushing it.",
		"Leakage through channels other than responses (e.g. the model server's own logs) is outside Warden."},
	{"A.8.15", "Logging",
		"Every admitted request has an admission entry written durably before the upstream sees it and exactly one terminal entry (completed with an outcome, or abandoned after a crash).",
		"Requests still open at the end of the segment are listed; they may complete after it."},
	{"A.8.16", "Monitoring activities",
		"Gateway starts and stops, unverified starts, background verification failures and checkpoint signing are recorded; so are every event an export sink refused for good (export.dead_lettered), every streak of witness refusals (witness.refused) and the export's delivery state per sink (export.status: cursor, lag, counters, every 15 minutes while exporting and at shutdown). Metrics expose the same for alerting.",
		"Lag is sampled (every 15 minutes and at shutdown), not continuous: a peak between two samples is in the metrics, not here. A witness refusing many checkpoints in a row is one entry (the first of the streak). A witness that is unreachable is not an entry (metrics and logs only). Alerts raised from the metrics are outside the log."},
	{"A.8.32", "Change management",
		"Every policy reload (file watch, SIGHUP or admin API) and every API key change is recorded with the actor, the old and new policy version (content hash) and whether it was applied; an applied policy change carries both canonical policy texts, so the diff summary below is recomputed from the log and each text is checked against its hash.",
		"The diff is of the canonical policy (rules, approval settings, defaults), not the YAML file's comments or layout. A policy larger than 128 KiB is recorded by its hash only (sources: absent), as are changes recorded before policy texts were logged. Who edited the file on disk is not known to Warden: the actor is what triggered the reload (file watch, SIGHUP, an admin)."},
}
