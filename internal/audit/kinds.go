package audit

import (
	"slices"
	"strings"
)

// Kinds of entries: the catalogue of everything Warden writes to the log.
// Every kind written anywhere is one of these constants (TestKindCatalogue
// fails for a kind literal outside this file), and every constant has a
// row in catalogue below, so a consumer (export mapping, report, console)
// can enumerate the kinds and know what each means.
const (
	// KindRequestAdmitted: a request passed identity, policy and approval
	// and is about to be forwarded (durable before the upstream sees it).
	KindRequestAdmitted = "request.admitted"
	// KindRequestCompleted: the terminal entry of an admitted request,
	// with its Outcome.
	KindRequestCompleted = "request.completed"
	// KindRequestAbandoned: the terminal entry written at start-up for an
	// admission that a crash left without request.completed.
	KindRequestAbandoned = "request.abandoned"
	// KindRequestDenied: policy denied the request (never forwarded).
	KindRequestDenied = "request.denied"
	// KindRequestRefused: Warden refused the request before admission
	// (bad credential, malformed body, store or approval unavailable, …).
	KindRequestRefused = "request.refused"
	// KindRequestPendingApproval: the request needs an approval and was
	// answered 202 with the approval id (async mode, or hold timed out).
	KindRequestPendingApproval = "request.pending_approval"

	// KindApprovalRequested .. KindApprovalUsed are the approval request
	// life cycle (internal/approval).
	KindApprovalRequested = "approval.requested"
	KindApprovalReviewed  = "approval.reviewed"
	KindApprovalApproved  = "approval.approved"
	KindApprovalDenied    = "approval.denied"
	KindApprovalExpired   = "approval.expired"
	KindApprovalCancelled = "approval.cancelled"
	KindApprovalUsed      = "approval.used"
	// KindApprovalReviewRefused: a review the rules refused (the requester
	// approving their own request, a reviewer outside the reviewer
	// groups); the request is unchanged, the attempt is evidence.
	KindApprovalReviewRefused = "approval.review_refused"
	// KindGrantActive, KindGrantRevoked, KindGrantExpired are the life
	// cycle of a time-boxed grant (internal/approval).
	KindGrantActive  = "grant.active"
	KindGrantRevoked = "grant.revoked"
	KindGrantExpired = "grant.expired"

	// KindConfigChanged: a configuration change (policy file, API keys),
	// applied or refused, with old and new versions and the actor.
	KindConfigChanged = "config.changed"
	// KindGatewayStarted and KindGatewayStopped bracket a gateway run.
	KindGatewayStarted = "gateway.started"
	KindGatewayStopped = "gateway.stopped"
	// KindVerifyFailed records that a background verification of the log
	// (startup_verify: recent) found a divergence.
	KindVerifyFailed = "audit.verify_failed"
	// KindRecordingErased: a session recording was erased (its key
	// destroyed), written before the erasure happens.
	KindRecordingErased = "recording.erased"

	// KindExportDeadLettered: an export sink's receiver refused an event
	// for good; it went to the dead-letter file. Details: sink, uid, seq,
	// kind and reason of the refused event — never its body. Not written
	// for a refused export.dead_lettered event (no loop).
	KindExportDeadLettered = "export.dead_lettered"
	// KindExportStatus: the export's delivery state, per sink (cursor,
	// lag in entries and seconds, delivered, failed and dead-lettered
	// counts), written periodically and at shutdown.
	KindExportStatus = "export.status"
	// KindWitnessRefused: a witness refused (the log was rolled back or
	// rewritten since it cosigned) or rejected (configuration) a
	// checkpoint. Details: witness, size, result, reason. Written once
	// per streak of refusals of a witness, so a refusal of the checkpoint
	// that covers this entry cannot loop.
	KindWitnessRefused = "witness.refused"
)

// Category groups kinds for reports and counts.
type Category string

// Categories of entry kinds.
const (
	// CategoryRequest: the data path (admissions, terminal entries, refusals).
	CategoryRequest Category = "request"
	// CategoryApproval: approval requests and grants.
	CategoryApproval Category = "approval"
	// CategoryConfig: configuration changes.
	CategoryConfig Category = "config"
	// CategoryLifecycle: gateway start and stop.
	CategoryLifecycle Category = "lifecycle"
	// CategoryIntegrity: findings about the log itself.
	CategoryIntegrity Category = "integrity"
	// CategoryRecording: session recordings.
	CategoryRecording Category = "recording"
	// CategoryMonitoring: the delivery of the log's evidence (export,
	// witnesses).
	CategoryMonitoring Category = "monitoring"
)

// KindInfo describes one entry kind of the catalogue.
type KindInfo struct {
	// Kind is the entry kind, e.g. "request.completed".
	Kind string `json:"kind"`
	// Category groups the kind.
	Category Category `json:"category"`
	// Terminal is true for the kinds that close an admitted request
	// (exactly one per request.admitted).
	Terminal bool `json:"terminal,omitempty"`
	// Description says when the kind is written.
	Description string `json:"description"`
	// Writer names the package that writes it.
	Writer string `json:"writer"`
}

// catalogue is the one table of entry kinds.
var catalogue = []KindInfo{
	{KindRequestAdmitted, CategoryRequest, false, "a request passed identity, policy and approval; durable before it is forwarded", "gateway"},
	{KindRequestCompleted, CategoryRequest, true, "terminal entry of an admitted request: outcome, status, bytes, durations, masking actions, SHA-256 of what the caller received", "gateway"},
	{KindRequestAbandoned, CategoryRequest, true, "terminal entry written at start-up for an admission a crash left open", "audit"},
	{KindRequestDenied, CategoryRequest, false, "policy denied the request; it was not forwarded", "gateway"},
	{KindRequestRefused, CategoryRequest, false, "Warden refused the request before admission (credential, malformed input, unavailable store or approval service)", "gateway"},
	{KindRequestPendingApproval, CategoryRequest, false, "the request needs an approval; answered 202 with the approval id", "gateway"},
	{KindApprovalRequested, CategoryApproval, false, "an approval request was opened", "approval"},
	{KindApprovalReviewed, CategoryApproval, false, "a reviewer approved, short of the required number of approvals", "approval"},
	{KindApprovalApproved, CategoryApproval, false, "an approval request reached its required approvals", "approval"},
	{KindApprovalDenied, CategoryApproval, false, "a reviewer denied an approval request", "approval"},
	{KindApprovalExpired, CategoryApproval, false, "an approval request was not decided, or not used, in time", "approval"},
	{KindApprovalCancelled, CategoryApproval, false, "the requester cancelled an approval request", "approval"},
	{KindApprovalUsed, CategoryApproval, false, "an approved one-time request was used by a call", "approval"},
	{KindApprovalReviewRefused, CategoryApproval, false, "a review was refused (self-approval, not a reviewer); the request is unchanged", "approval"},
	{KindGrantActive, CategoryApproval, false, "a time-boxed grant became active", "approval"},
	{KindGrantRevoked, CategoryApproval, false, "a grant was revoked before it expired", "approval"},
	{KindGrantExpired, CategoryApproval, false, "a grant's duration elapsed", "approval"},
	{KindConfigChanged, CategoryConfig, false, "a configuration change (policy, API keys), applied or refused, with versions and actor", "cmd/warden, admin"},
	{KindGatewayStarted, CategoryLifecycle, false, "the gateway started; what verification of the store found", "audit"},
	{KindGatewayStopped, CategoryLifecycle, false, "the gateway stopped cleanly", "audit"},
	{KindVerifyFailed, CategoryIntegrity, false, "background verification found the store tampered with", "audit"},
	{KindRecordingErased, CategoryRecording, false, "a session recording is being erased (recorded before its key is destroyed)", "recording (erasure log)"},
	{KindExportDeadLettered, CategoryMonitoring, false, "an export sink refused an event for good; it went to the dead-letter file (sink, uid, seq, kind, reason; never the event)", "export (dead-letter file)"},
	{KindExportStatus, CategoryMonitoring, false, "export delivery state per sink: cursor, lag in entries and seconds, delivered, failed and dead-lettered counts (periodic and at shutdown)", "cmd/warden (export)"},
	{KindWitnessRefused, CategoryMonitoring, false, "a witness refused or rejected a checkpoint (once per streak of refusals)", "witness (submitter)"},
}

// Kinds returns the catalogue of entry kinds, sorted by kind.
func Kinds() []KindInfo {
	out := slices.Clone(catalogue)
	slices.SortFunc(out, func(a, b KindInfo) int { return strings.Compare(a.Kind, b.Kind) })
	return out
}

// LookupKind returns the catalogue row of kind.
func LookupKind(kind string) (KindInfo, bool) {
	for _, k := range catalogue {
		if k.Kind == kind {
			return k, true
		}
	}
	return KindInfo{}, false
}

// IsTerminal reports whether kind closes an admitted request.
func IsTerminal(kind string) bool {
	k, ok := LookupKind(kind)
	return ok && k.Terminal
}
