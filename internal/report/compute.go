package report

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// Names the report matches in entries' details.
const (
	whatPolicy         = "policy"
	whatAPIKey         = "api_key"
	authMethodAPIKey   = "api_key"
	noneKey            = "(none)"
	decisionTimeMedian = "decision_time_median"
)

// The kinds the report reads, from the audit catalogue.
const (
	kindPending       = audit.KindRequestPendingApproval
	kindAbandoned     = audit.KindRequestAbandoned
	kindApproved      = audit.KindApprovalApproved
	kindDenied        = audit.KindApprovalDenied
	kindExpired       = audit.KindApprovalExpired
	kindCancelled     = audit.KindApprovalCancelled
	kindUsed          = audit.KindApprovalUsed
	kindReviewRefused = audit.KindApprovalReviewRefused
	kindGrantActive   = audit.KindGrantActive
	kindGrantRevoked  = audit.KindGrantRevoked
)

// Computed is what Compute derives from entries: everything in a report
// that the entries alone determine. VerifyBundle recomputes it from the
// bundled entries and compares it with the report JSON.
type Computed struct {
	Sections      []Section
	Daily         []Day
	Scope         Scope
	PeriodEntries int64
	FirstSeq      int64
	LastSeq       int64
}

// Compute derives the figures, exceptions, samples (without proofs) and
// per-day counts of the period from the segment's entries, which must be
// consecutive and ascending by Seq. Entries outside the period are used
// only to find the terminal entry of a request admitted in it and the
// request of an approval decided in it.
func Compute(entries []*audit.Entry, p Period, seed uint64) Computed {
	c := newCounter(p)
	for _, e := range entries {
		c.Add(e)
	}
	out := c.Result(seed)
	if len(entries) > 0 {
		base := entries[0].Seq
		_ = fillSamples(context.Background(), out.Sections, func(seq int64) (*audit.Entry, error) {
			return entries[seq-base], nil
		})
	}
	return out
}

// Add counts one entry of the segment (in ascending Seq order).
func (c *counter) Add(e *audit.Entry) {
	c.index(e)
	if c.p.Contains(e.Time) {
		c.add(e)
	}
}

// counter accumulates one pass over the period's entries.
type counter struct {
	p Period
	// Whole-segment indexes.
	terminal  map[string]terminalRef // request id -> its terminal entry
	requested map[string]time.Time   // approval id -> time of approval.requested

	n           int64
	first, last int64
	sec         map[string]*secAcc
	days        map[string]*Day
	instances   map[string]bool
	routes      map[string]int64
	policies    map[string]*PolicyVersion
	decideMS    []int64
	admissions  []admission
	changes     []PolicyChange
}

// terminalRef is a request's terminal entry.
type terminalRef struct {
	kind string
	seq  int64
}

// admission is an admitted request of the period whose terminal entry is
// looked up once the whole segment has been seen.
type admission struct {
	seq       int64
	t         time.Time
	requestID string
}

// secAcc accumulates one section: its figures by id (in order of first
// use), sample population and exceptions.
type secAcc struct {
	figs  []*Figure
	byID  map[string]*Figure
	pop   []int64 // sequence numbers
	exc   []Exception
	total int64
}

func newCounter(p Period) *counter {
	c := &counter{p: p, terminal: map[string]terminalRef{}, requested: map[string]time.Time{},
		first: -1, last: -1, sec: map[string]*secAcc{},
		days: map[string]*Day{}, instances: map[string]bool{}, routes: map[string]int64{}, policies: map[string]*PolicyVersion{}}
	for _, ctl := range Controls {
		c.sec[ctl.ID] = &secAcc{byID: map[string]*Figure{}}
	}
	c.declare()
	return c
}

// fig declares (or returns) a figure of a section. Every figure is
// declared up front in declare, so a zero count still appears.
func (c *counter) fig(control, id string) *Figure {
	s := c.sec[control]
	f := s.byID[id]
	if f == nil {
		panic("report: undeclared figure " + control + " " + id)
	}
	return f
}

func (c *counter) def(control, id, label, query string, by bool) {
	s := c.sec[control]
	f := &Figure{ID: id, Label: label, Query: query}
	if by {
		f.By = map[string]int64{}
	}
	s.figs = append(s.figs, f)
	s.byID[id] = f
}

// declare lists every figure with its definition. The query language is
// a plain notation over the period's entries E: count(E where …) by …,
// sum(…), distinct(…).
func (c *counter) declare() {
	const decided = `kind in (request.admitted, request.denied, request.pending_approval)`
	c.def("A.5.15", "decisions", "Policy decisions", `count(E where `+decided+`) by decision.action`, true)
	c.def("A.5.15", "decisions_by_rule", "Policy decisions by rule", `count(E where `+decided+`) by decision.rule`, true)
	c.def("A.5.15", "denied", "Requests denied", `count(E where kind = request.denied)`, false)

	c.def("A.5.16", "admitted", "Requests admitted", `count(E where kind = request.admitted)`, false)
	c.def("A.5.16", "identities", "Distinct identities", `distinct(E where kind = request.admitted: principal.iss + " " + principal.sub) by principal.kind`, true)
	c.def("A.5.16", "by_auth_method", "Admissions by authentication method", `count(E where kind = request.admitted) by principal.auth_method`, true)
	c.def("A.5.16", "anonymous", "Admissions without an identity", `count(E where kind = request.admitted and principal is absent)`, false)

	c.def("A.5.17", "keys_created", "API keys created", `count(E where kind = config.changed and details.what = api_key and details.action = created)`, false)
	c.def("A.5.17", "keys_revoked", "API keys revoked", `count(E where kind = config.changed and details.what = api_key and details.action = revoked)`, false)
	c.def("A.5.17", "key_uses", "Requests authenticated by API key", `count(E where kind = request.admitted and principal.auth_method = api_key) by principal.credential_id`, true)
	c.def("A.5.17", "key_refusals", "Requests refused for an API key", `count(E where kind = request.refused and details.description starts with "api key") by details.description`, true)

	c.def("A.5.18", "grants_issued", "Grants issued", `count(E where kind = grant.active)`, false)
	c.def("A.5.18", "grants_used", "Requests under a grant", `count(E where kind = request.admitted and grant_id is set)`, false)
	c.def("A.5.18", "grants_revoked", "Grants revoked", `count(E where kind = grant.revoked)`, false)
	c.def("A.5.18", "grants_expired", "Grants expired", `count(E where kind = grant.expired)`, false)

	c.def("A.5.28", "entries", "Audit entries", `count(E) by kind`, true)
	c.def("A.5.28", "requests_with_evidence", "Requests with admission evidence", `distinct(E where kind = request.admitted: request_id)`, false)

	c.def("A.5.33", "verify_failed", "Background verification failures", `count(E where kind = audit.verify_failed)`, false)
	c.def("A.5.33", "unverified_starts", "Starts over a log that did not verify", `count(E where kind = gateway.started and (details.unverified_start = true or details.witness_unverified_start = true))`, false)

	c.def("A.5.34", "masked_responses", "Responses masked", `count(E where kind = request.completed and masking is not empty)`, false)
	c.def("A.5.34", "masked_values", "Values masked by entity", `sum(masking[].count for E where kind = request.completed) by masking[].entity`, true)
	c.def("A.5.34", "log_modes", "Admissions by parameter log mode", `count(E where kind = request.admitted) by (params present ? "parameters (redacted)" : "hash only")`, true)

	c.def("A.8.2", "approvals_requested", "Approvals requested", `count(E where kind = approval.requested) by details.setting`, true)
	c.def("A.8.2", "approvals_approved", "Approvals approved", `count(E where kind = approval.approved)`, false)
	c.def("A.8.2", "approvals_denied", "Approvals denied", `count(E where kind = approval.denied)`, false)
	c.def("A.8.2", "approvals_expired", "Approvals expired undecided or unused", `count(E where kind = approval.expired)`, false)
	c.def("A.8.2", "approvals_cancelled", "Approvals cancelled", `count(E where kind = approval.cancelled)`, false)
	c.def("A.8.2", "approvals_used", "One-time approvals used", `count(E where kind = approval.used)`, false)
	c.def("A.8.2", "reviews_refused", "Reviews refused", `count(E where kind = approval.review_refused) by (details.self = true ? "self-approval" : "not a reviewer")`, true)
	c.def("A.8.2", decisionTimeMedian, "Median time to decision", `median(time(approved or denied) - time(approval.requested of the same approval_id)) over E where kind in (approval.approved, approval.denied), in ms`, false)
	c.def("A.8.2", "decision_time_max", "Longest time to decision", `max(same as decision_time_median), in ms`, false)

	c.def("A.8.3", "denials_by_rule", "Denials by rule", `count(E where kind = request.denied) by decision.rule`, true)
	c.def("A.8.3", "denials_by_route", "Denials by route", `count(E where kind = request.denied) by route`, true)

	c.def("A.8.5", "refused", "Requests refused before a decision", `count(E where kind = request.refused) by details.reason`, true)
	c.def("A.8.5", "refused_credentials", "Refused credentials by cause", `count(E where kind = request.refused and details.reason in (unauthenticated, invalid_token, invalid_request)) by (details.reason = unauthenticated ? "no credential" : details.description)`, true)

	c.def("A.8.11", "masking_by_rule", "Masking actions by rule", `sum(masking[].count for E where kind = request.completed) by masking[].rule`, true)
	c.def("A.8.11", "masking_by_route", "Masking actions by route", `sum(masking[].count for E where kind = request.completed) by route`, true)
	c.def("A.8.11", "masking_by_location", "Masking actions by location", `sum(masking[].count for E where kind = request.completed) by masking[].location`, true)

	c.def("A.8.12", "outcomes", "Terminal outcomes", `count(E where kind = request.completed) by outcome`, true)
	c.def("A.8.12", "withheld", "Responses withheld (masking failed)", `count(E where kind = request.completed and outcome = masking_failed)`, false)
	c.def("A.8.12", "truncated", "Streams truncated", `count(E where kind = request.completed and outcome = truncated)`, false)

	c.def("A.8.15", "admissions", "Admissions", `count(E where kind = request.admitted)`, false)
	c.def("A.8.15", "terminal", "Admissions with a terminal entry", `count(E where kind = request.admitted and a request.completed or request.abandoned of the same request_id is in the segment)`, false)
	c.def("A.8.15", "abandoned", "Abandoned requests", `count(E where kind = request.admitted and its terminal entry is request.abandoned)`, false)
	c.def("A.8.15", "open", "Open requests", `count(E where kind = request.admitted and no terminal entry of the same request_id is in the segment)`, false)

	c.def("A.8.16", "starts", "Gateway starts", `count(E where kind = gateway.started) by instance`, true)
	c.def("A.8.16", "stops", "Gateway stops", `count(E where kind = gateway.stopped) by instance`, true)
	c.def("A.8.16", "monitoring_alerts", "Integrity alerts", `count(E where kind = audit.verify_failed or (kind = gateway.started and details.unsigned_tail > 0))`, false)
	c.def("A.8.16", "export_dead_letters", "Export dead letters", `count(E where kind = export.dead_lettered) by details.sink`, true)
	c.def("A.8.16", "witness_refusals", "Witness refusals", `count(E where kind = witness.refused) by details.witness`, true)
	c.def("A.8.16", "export_status_reports", "Export status reports", `count(E where kind = export.status) by details.reason`, true)
	c.def("A.8.16", "export_max_lag_entries", "Largest export lag (entries)", `max(details.sinks[].lag_entries for E where kind = export.status) by details.sinks[].sink`, true)
	c.def("A.8.16", "export_max_lag_seconds", "Largest export lag (s, rounded up)", `max(ceil(details.sinks[].lag_seconds) for E where kind = export.status) by details.sinks[].sink`, true)

	c.def("A.8.32", "policy_changes", "Policy versions installed", `count(E where kind = config.changed and details.what = policy and details.applied = true)`, false)
	c.def("A.8.32", "policy_failed", "Policy reloads refused", `count(E where kind = config.changed and details.what = policy and details.applied = false)`, false)
	c.def("A.8.32", "changes_by_actor", "Changes by actor", `count(E where kind = config.changed) by details.actor`, true)
	c.def("A.8.32", "rule_changes", "Rule changes in policy versions", `sum(rules added, removed, changed, reordered in diff(details.old_policy_source, details.policy_source) for E where kind = config.changed and details.what = policy and details.applied = true and sha256(each source) = its version) by (added | removed | changed | reordered | masking profile)`, true)
	c.def("A.8.32", "policy_sources", "Policy versions by source evidence", `count(E where kind = config.changed and details.what = policy and details.applied = true) by (both sources present and sha256(source) = version ? "verified" : a source absent ? "absent" : "mismatch")`, true)
}

// index records the whole segment's terminal entries and approval
// requests (lookups across the period's boundary).
func (c *counter) index(e *audit.Entry) {
	switch e.Kind {
	case audit.KindRequestCompleted, kindAbandoned:
		if e.RequestID != "" {
			c.terminal[e.RequestID] = terminalRef{kind: e.Kind, seq: e.Seq}
		}
	case audit.KindApprovalRequested:
		c.requested[e.ApprovalID] = e.Time
	}
}

func (c *counter) inc(control, id, key string, n int64) {
	f := c.fig(control, id)
	f.Value += n
	if f.By != nil {
		if key == "" {
			key = noneKey
		}
		f.By[key] += n
	}
}

func (c *counter) sample(control string, e *audit.Entry) {
	s := c.sec[control]
	s.pop = append(s.pop, e.Seq)
}

func (c *counter) except(control string, e *audit.Entry, format string, args ...any) {
	s := c.sec[control]
	s.total++
	if len(s.exc) < MaxExceptions {
		s.exc = append(s.exc, Exception{Seq: e.Seq, Kind: e.Kind, Time: e.Time, RequestID: e.RequestID, What: fmt.Sprintf(format, args...)})
	}
}

func (c *counter) day(t time.Time) *Day {
	k := t.UTC().Format(time.DateOnly)
	d := c.days[k]
	if d == nil {
		d = &Day{Date: k}
		c.days[k] = d
	}
	return d
}

func detail(e *audit.Entry, k string) string {
	v, ok := e.Details[k]
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func who(e *audit.Entry) string {
	if e.Principal == nil {
		return "anonymous"
	}
	return e.Principal.Subject
}

// add counts one entry of the period.
func (c *counter) add(e *audit.Entry) {
	c.n++
	if c.first < 0 {
		c.first = e.Seq
	}
	c.last = e.Seq
	if e.Instance != "" {
		c.instances[e.Instance] = true
	}
	c.inc("A.5.28", "entries", e.Kind, 1)
	d := c.day(e.Time)
	switch e.Kind {
	case audit.KindRequestAdmitted:
		c.admitted(e, d)
	case audit.KindRequestDenied:
		d.Denials++
		c.decided(e)
		c.inc("A.5.15", "denied", "", 1)
		c.inc("A.8.3", "denials_by_rule", ruleOf(e), 1)
		c.inc("A.8.3", "denials_by_route", e.Route, 1)
		c.sample("A.8.3", e)
		c.except("A.5.15", e, "%s denied by rule %s on %s %s", who(e), ruleOf(e), e.Method, e.Path)
		c.except("A.8.3", e, "%s denied by rule %s on %s %s", who(e), ruleOf(e), e.Method, e.Path)
	case kindPending:
		c.decided(e)
	case audit.KindRequestRefused:
		reason := detail(e, "reason")
		c.inc("A.8.5", "refused", reason, 1)
		desc := detail(e, "description")
		if desc == "" || reason == "unauthenticated" {
			desc = "no credential" // RFC 6750: no credential at all
		}
		if reason == "unauthenticated" || reason == "invalid_token" || reason == "invalid_request" {
			c.inc("A.8.5", "refused_credentials", desc, 1)
			c.sample("A.8.5", e)
			c.except("A.8.5", e, "%s refused: %s", reason, desc)
		}
		if strings.HasPrefix(desc, "api key") {
			c.inc("A.5.17", "key_refusals", desc, 1)
			c.except("A.5.17", e, "refused: %s", desc)
		}
	case audit.KindRequestCompleted:
		c.completed(e, d)
	case audit.KindApprovalRequested:
		d.Approvals++
		c.inc("A.8.2", "approvals_requested", detail(e, "setting"), 1)
	case kindApproved:
		c.inc("A.8.2", "approvals_approved", "", 1)
		c.decision(e)
	case kindDenied:
		c.inc("A.8.2", "approvals_denied", "", 1)
		c.decision(e)
		c.except("A.8.2", e, "approval %s (%s) denied: %s", e.ApprovalID, detail(e, "setting"), detail(e, "reason"))
	case kindExpired:
		c.inc("A.8.2", "approvals_expired", "", 1)
		c.except("A.8.2", e, "approval %s (%s) expired: %s", e.ApprovalID, detail(e, "setting"), detail(e, "reason"))
	case kindCancelled:
		c.inc("A.8.2", "approvals_cancelled", "", 1)
	case kindUsed:
		c.inc("A.8.2", "approvals_used", "", 1)
	case kindReviewRefused:
		key := "not a reviewer"
		if e.Details["self"] == true {
			key = "self-approval"
		}
		c.inc("A.8.2", "reviews_refused", key, 1)
		c.except("A.8.2", e, "%s attempt by %s on approval %s", key, who(e), e.ApprovalID)
	case kindGrantActive:
		c.inc("A.5.18", "grants_issued", "", 1)
		c.sample("A.5.18", e)
	case kindGrantRevoked:
		c.inc("A.5.18", "grants_revoked", "", 1)
		c.except("A.5.18", e, "grant %s revoked by %s: %s", e.GrantID, who(e), detail(e, "reason"))
	case audit.KindGrantExpired:
		c.inc("A.5.18", "grants_expired", "", 1)
	case audit.KindConfigChanged:
		c.configChanged(e)
	case audit.KindGatewayStarted:
		c.inc("A.8.16", "starts", e.Instance, 1)
		c.sample("A.8.16", e)
		if e.Details["unverified_start"] == true || e.Details["witness_unverified_start"] == true {
			c.inc("A.5.33", "unverified_starts", "", 1)
			c.except("A.5.33", e, "gateway started although the log did not verify: %s%s", detail(e, "divergence"), detail(e, "witness_divergence"))
		}
		if n := detail(e, "unsigned_tail"); n != "" && n != "0" {
			c.inc("A.8.16", "monitoring_alerts", "", 1)
			c.except("A.8.16", e, "start after a crash signed %s unsigned entries", n)
		}
	case audit.KindGatewayStopped:
		c.inc("A.8.16", "stops", e.Instance, 1)
	case audit.KindExportDeadLettered, audit.KindWitnessRefused, audit.KindExportStatus:
		c.monitoring(e)
	case audit.KindVerifyFailed:
		c.inc("A.5.33", "verify_failed", "", 1)
		c.inc("A.8.16", "monitoring_alerts", "", 1)
		c.except("A.5.33", e, "background verification failed: %s", detail(e, "divergence"))
		c.except("A.8.16", e, "background verification failed: %s", detail(e, "divergence"))
	}
	if e.Kind == kindApproved || e.Kind == kindDenied || e.Kind == kindReviewRefused {
		c.sample("A.8.2", e)
	}
	c.sample("A.5.28", e)
	c.sample("A.5.33", e)
}

func ruleOf(e *audit.Entry) string {
	if e.Decision == nil {
		return ""
	}
	return e.Decision.Rule
}

func (c *counter) decided(e *audit.Entry) {
	action := ""
	if e.Decision != nil {
		action = e.Decision.Action
	}
	if e.Decision != nil && e.Decision.PolicyVersion != "" {
		c.policy(e.Decision.PolicyVersion, e.Time, 1)
	}
	c.inc("A.5.15", "decisions", action, 1)
	c.inc("A.5.15", "decisions_by_rule", ruleOf(e), 1)
	c.sample("A.5.15", e)
}

func (c *counter) policy(v string, t time.Time, n int64) {
	pv := c.policies[v]
	if pv == nil {
		pv = &PolicyVersion{Version: v, FirstSeen: t, LastSeen: t}
		c.policies[v] = pv
	}
	pv.Decisions += n
	if t.Before(pv.FirstSeen) {
		pv.FirstSeen = t
	}
	if t.After(pv.LastSeen) {
		pv.LastSeen = t
	}
}

func (c *counter) admitted(e *audit.Entry, d *Day) {
	d.Requests++
	c.decided(e)
	c.routes[e.Route]++
	c.inc("A.5.16", "admitted", "", 1)
	c.inc("A.5.28", "requests_with_evidence", "", 1)
	c.inc("A.8.15", "admissions", "", 1)
	c.sample("A.5.16", e)
	c.sample("A.8.15", e)
	if e.Principal == nil {
		c.inc("A.5.16", "anonymous", "", 1)
		c.inc("A.5.16", "by_auth_method", "", 1)
		c.except("A.5.16", e, "request admitted without an identity on %s %s", e.Method, e.Path)
	} else {
		c.inc("A.5.16", "by_auth_method", e.Principal.AuthMethod, 1)
		if e.Principal.AuthMethod == authMethodAPIKey {
			c.inc("A.5.17", "key_uses", e.Principal.CredentialID, 1)
			c.sample("A.5.17", e)
		}
		c.identity(e)
	}
	mode := "hash only"
	if len(e.Params) > 0 {
		mode = "parameters (redacted)"
	}
	c.inc("A.5.34", "log_modes", mode, 1)
	if e.GrantID != "" {
		c.inc("A.5.18", "grants_used", "", 1)
	}
	c.admissions = append(c.admissions, admission{seq: e.Seq, t: e.Time, requestID: e.RequestID})
}

// resolve classifies the period's admissions by their terminal entries.
func (c *counter) resolve() {
	for _, a := range c.admissions {
		e := &audit.Entry{Seq: a.seq, Kind: audit.KindRequestAdmitted, Time: a.t, RequestID: a.requestID}
		t, ok := c.terminal[a.requestID]
		switch {
		case !ok:
			c.inc("A.8.15", "open", "", 1)
			c.except("A.8.15", e, "request %s admitted with no terminal entry in the segment", a.requestID)
		case t.kind == kindAbandoned:
			c.inc("A.8.15", "terminal", "", 1)
			c.inc("A.8.15", "abandoned", "", 1)
			c.except("A.8.15", e, "request %s abandoned (entry %d): the gateway stopped before it ended", a.requestID, t.seq)
		default:
			c.inc("A.8.15", "terminal", "", 1)
		}
	}
}

// identity counts distinct identities: the first admission of each.
func (c *counter) identity(e *audit.Entry) {
	f := c.fig("A.5.16", "identities")
	key := "\x00id " + e.Principal.Issuer + " " + e.Principal.Subject
	if _, seen := f.By[key]; seen {
		return
	}
	f.By[key] = 0 // marker, removed in result
	kind := string(e.Principal.Kind)
	if kind == "" {
		kind = noneKey
	}
	f.Value++
	f.By[kind]++
}

func (c *counter) completed(e *audit.Entry, d *Day) {
	c.inc("A.8.12", "outcomes", e.Outcome, 1)
	var total int64
	for _, m := range e.Masking {
		n := int64(m.Count)
		total += n
		c.inc("A.5.34", "masked_values", m.Entity, n)
		c.inc("A.8.11", "masking_by_rule", m.Rule, n)
		c.inc("A.8.11", "masking_by_location", m.Location, n)
		c.inc("A.8.11", "masking_by_route", e.Route, n)
	}
	d.Masking += total
	if total > 0 {
		c.inc("A.5.34", "masked_responses", "", 1)
		c.sample("A.5.34", e)
		c.sample("A.8.11", e)
	}
	switch e.Outcome {
	case audit.OutcomeMaskingFailed:
		c.inc("A.8.12", "withheld", "", 1)
		c.except("A.8.12", e, "response withheld: it could not be masked safely (status %d)", e.Status)
		c.except("A.5.34", e, "masking failed; the response was withheld (status %d)", e.Status)
		c.except("A.8.11", e, "masking failed; the response was withheld (status %d)", e.Status)
	case audit.OutcomeTruncated:
		c.inc("A.8.12", "truncated", "", 1)
		c.except("A.8.12", e, "stream truncated after %d bytes; held-back text dropped", e.BytesOut)
	case audit.OutcomeUpstreamError, audit.OutcomeUpstreamTimeout, audit.OutcomeClientAborted:
		c.except("A.8.12", e, "request ended %s after %d bytes (status %d)", e.Outcome, e.BytesOut, e.Status)
	}
	c.sample("A.8.12", e)
}

// decision records an approval's time to decision and a readable record.
func (c *counter) decision(e *audit.Entry) {
	if t, ok := c.requested[e.ApprovalID]; ok {
		c.decideMS = append(c.decideMS, e.Time.Sub(t).Milliseconds())
	}
}

func (c *counter) configChanged(e *audit.Entry) {
	actor := detail(e, "actor")
	c.inc("A.8.32", "changes_by_actor", actor, 1)
	c.sample("A.8.32", e)
	switch detail(e, "what") {
	case whatPolicy:
		if e.Details["applied"] == false {
			c.inc("A.8.32", "policy_failed", "", 1)
			c.except("A.8.32", e, "policy reload by %s refused: %s", actor, detail(e, "error"))
			return
		}
		c.inc("A.8.32", "policy_changes", "", 1)
		if v := detail(e, "new_version"); v != "" {
			c.policy(v, e.Time, 0)
		}
		pc := policyChangeOf(e)
		c.inc("A.8.32", "policy_sources", pc.Sources, 1)
		for k, n := range map[string]int{"added": len(pc.RulesAdded), "removed": len(pc.RulesRemoved), "changed": len(pc.RulesChanged), "masking profile": len(pc.MaskChanges)} {
			if n > 0 {
				c.inc("A.8.32", "rule_changes", k, int64(n))
			}
		}
		if pc.Reordered {
			c.inc("A.8.32", "rule_changes", "reordered", 1)
		}
		if pc.Sources == SourcesMismatch {
			c.except("A.8.32", e, "policy change by %s: a policy source in the entry does not hash to its version", actor)
		}
		if len(c.changes) < MaxExceptions {
			c.changes = append(c.changes, pc)
		}
	case whatAPIKey:
		switch detail(e, "action") {
		case "created":
			c.inc("A.5.17", "keys_created", "", 1)
			c.sample("A.5.17", e)
		case "revoked":
			c.inc("A.5.17", "keys_revoked", "", 1)
			c.sample("A.5.17", e)
		}
	}
}

// result finishes the counts: sections in Controls order, samples drawn
// with seed, days ascending.
func (c *counter) Result(seed uint64) Computed {
	c.resolve()
	if len(c.decideMS) > 0 {
		ms := slices.Clone(c.decideMS)
		slices.Sort(ms)
		c.fig("A.8.2", decisionTimeMedian).Value = ms[(len(ms)-1)/2]
		c.fig("A.8.2", "decision_time_max").Value = ms[len(ms)-1]
	}
	c.fig("A.8.2", decisionTimeMedian).Unit = "ms"
	c.fig("A.8.2", "decision_time_max").Unit = "ms"
	ids := c.fig("A.5.16", "identities")
	for k := range ids.By {
		if strings.HasPrefix(k, "\x00id ") {
			delete(ids.By, k)
		}
	}
	out := Computed{PeriodEntries: c.n, FirstSeq: c.first, LastSeq: c.last}
	for _, ctl := range Controls {
		s := c.sec[ctl.ID]
		sec := Section{Control: ctl.ID, Title: ctl.Title, Enforces: ctl.Enforces, Limits: ctl.Limits,
			SampleOf: int64(len(s.pop)), Exceptions: s.exc, ExceptionsTotal: s.total, Sample: []Sample{}}
		if sec.Exceptions == nil {
			sec.Exceptions = []Exception{}
		}
		for _, f := range s.figs {
			sec.Figures = append(sec.Figures, *f)
		}
		if ctl.ID == "A.8.32" {
			sec.Changes = c.changes
		}
		for _, i := range pick(seed, ctl.ID, len(s.pop), SampleSize) {
			sec.Sample = append(sec.Sample, Sample{Seq: s.pop[i]})
		}
		out.Sections = append(out.Sections, sec)
	}
	for _, d := range c.days {
		out.Daily = append(out.Daily, *d)
	}
	sort.Slice(out.Daily, func(i, j int) bool { return out.Daily[i].Date < out.Daily[j].Date })
	for i := range c.instances {
		out.Scope.Instances = append(out.Scope.Instances, i)
	}
	sort.Strings(out.Scope.Instances)
	for r, n := range c.routes {
		out.Scope.Routes = append(out.Scope.Routes, Route{Name: r, Requests: n})
	}
	sort.Slice(out.Scope.Routes, func(i, j int) bool { return out.Scope.Routes[i].Name < out.Scope.Routes[j].Name })
	for _, pv := range c.policies {
		out.Scope.PolicyVersions = append(out.Scope.PolicyVersions, *pv)
	}
	sort.Slice(out.Scope.PolicyVersions, func(i, j int) bool {
		a, b := out.Scope.PolicyVersions[i], out.Scope.PolicyVersions[j]
		if !a.FirstSeen.Equal(b.FirstSeen) {
			return a.FirstSeen.Before(b.FirstSeen)
		}
		return a.Version < b.Version
	})
	return out
}

// pick draws k distinct indexes of [0, n) (all when n <= k), ascending,
// from a PCG generator seeded with seed and the control id (Floyd's
// algorithm: k draws whatever n is).
func pick(seed uint64, control string, n, k int) []int {
	if n <= k {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	h := fnv.New64a()
	h.Write([]byte(control))
	r := rand.New(rand.NewPCG(seed, h.Sum64()))
	chosen := map[int]bool{}
	for j := n - k; j < n; j++ {
		t := r.IntN(j + 1)
		if chosen[t] {
			t = j
		}
		chosen[t] = true
	}
	out := make([]int, 0, k)
	for i := range chosen {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// Summarize describes an entry in one line, from its recorded fields only.
func Summarize(e *audit.Entry) string {
	var b strings.Builder
	b.WriteString(e.Kind)
	if e.Principal != nil {
		fmt.Fprintf(&b, " by %s", e.Principal.Subject)
		if e.Principal.AuthMethod == authMethodAPIKey && e.Principal.CredentialID != "" {
			fmt.Fprintf(&b, " (API key %s)", e.Principal.CredentialID)
		}
	}
	if e.Method != "" {
		fmt.Fprintf(&b, ": %s %s", e.Method, e.Path)
	}
	if e.Route != "" {
		fmt.Fprintf(&b, " route %s", e.Route)
	}
	if e.Model != "" {
		fmt.Fprintf(&b, " model %s", e.Model)
	}
	if e.Decision != nil {
		fmt.Fprintf(&b, "; %s by rule %s", e.Decision.Action, e.Decision.Rule)
	}
	if e.Outcome != "" {
		fmt.Fprintf(&b, "; outcome %s, status %d, %d bytes", e.Outcome, e.Status, e.BytesOut)
	}
	var masked int
	for _, m := range e.Masking {
		masked += m.Count
	}
	if masked > 0 {
		fmt.Fprintf(&b, ", %d values masked", masked)
	}
	if e.ApprovalID != "" {
		fmt.Fprintf(&b, "; approval %s", e.ApprovalID)
	}
	for _, k := range []string{"setting", "requester", "approved_by", "reason", "what", "action", "actor", "new_version"} {
		if v := detail(e, k); v != "" {
			fmt.Fprintf(&b, "; %s: %s", k, v)
		}
	}
	s := b.String()
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// rawEntry is one entry's sequence number and canonical bytes.
type rawEntry struct {
	seq  int64
	data []byte
}

// parseAll parses a chunk of entries with parse (audit.ParseEntry, or
// audit.DecodeEntry for bytes the tree authenticates) on every CPU —
// parsing is the report's main cost — keeping their order.
func parseAll(chunk []rawEntry, parse func(int64, []byte) (*audit.Entry, error)) ([]*audit.Entry, error) {
	out := make([]*audit.Entry, len(chunk))
	workers := min(runtime.GOMAXPROCS(0), max(len(chunk)/256, 1))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(chunk); i += workers {
				e, err := parse(chunk[i].seq, chunk[i].data)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = e
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// monitoring counts the A.8.16 evidence of export and witnesses.
func (c *counter) monitoring(e *audit.Entry) {
	c.sample("A.8.16", e)
	switch e.Kind {
	case audit.KindExportDeadLettered:
		c.inc("A.8.16", "export_dead_letters", detail(e, "sink"), 1)
		c.except("A.8.16", e, "export sink %s refused event %s (%s) for good: %s", detail(e, "sink"), detail(e, "uid"), detail(e, "kind"), detail(e, "reason"))
	case audit.KindWitnessRefused:
		c.inc("A.8.16", "witness_refusals", detail(e, "witness"), 1)
		what := fmt.Sprintf("witness %s %s the checkpoint of size %s: %s", detail(e, "witness"), detail(e, "result"), detail(e, "size"), detail(e, "reason"))
		c.except("A.8.16", e, "%s", what)
		c.except("A.5.33", e, "%s", what)
	case audit.KindExportStatus:
		c.inc("A.8.16", "export_status_reports", detail(e, "reason"), 1)
		sinks, _ := e.Details["sinks"].([]any)
		for _, s := range sinks {
			m, ok := s.(map[string]any)
			if !ok {
				continue
			}
			name, _ := m["sink"].(string)
			c.max("A.8.16", "export_max_lag_entries", name, ceilInt(m["lag_entries"]))
			c.max("A.8.16", "export_max_lag_seconds", name, ceilInt(m["lag_seconds"]))
		}
	}
}

// max raises a by-figure's key to v and its value to the largest key.
func (c *counter) max(control, id, key string, v int64) {
	f := c.fig(control, id)
	if key == "" {
		key = noneKey
	}
	if cur, ok := f.By[key]; !ok || v > cur {
		f.By[key] = v
	}
	if v > f.Value {
		f.Value = v
	}
}

// ceilInt reads a JSON number from an entry's details, rounded up.
func ceilInt(v any) int64 {
	var f float64
	switch n := v.(type) {
	case json.Number:
		x, err := n.Float64()
		if err != nil {
			return 0
		}
		f = x
	case float64:
		f = n
	case int64:
		return n
	case int:
		return int64(n)
	default:
		return 0
	}
	return int64(math.Ceil(f))
}
