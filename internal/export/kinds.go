package export

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/wardenhq/warden/internal/audit"
)

// kindRule maps one audit entry kind to OCSF: build sets the class,
// activity and the class's attributes.
type kindRule struct {
	// class is the OCSF class the kind maps to (documentation and tests;
	// build may choose another for some entries, e.g. request.refused of
	// a bad token goes to Authentication).
	class classSpec
	build func(m *Mapper, e *audit.Entry, ev *ocsfEvent)
}

// kindTable is the mapping, one row per event kind (docs/export.md has the
// same table). Adding a kind is adding a row; TestEveryKindMapped fails
// for a catalogued kind without one.
var kindTable = map[string]kindRule{
	audit.KindRequestAdmitted:        {classAPIActivity, mapRequest(dispAllowed)},
	audit.KindRequestCompleted:       {classAPIActivity, mapRequest(dispAllowed)},
	audit.KindRequestDenied:          {classAPIActivity, mapRequest(dispBlocked)},
	audit.KindRequestRefused:         {classAPIActivity, mapRefused},
	audit.KindRequestPendingApproval: {classAPIActivity, mapRequest(dispHeld)},
	audit.KindRequestAbandoned:       {classAPIActivity, mapRequest(dispAllowed)},

	audit.KindApprovalRequested: {classEntityManagement, mapApprovalEntity(1, dispNone)},
	audit.KindApprovalReviewed:  {classEntityManagement, mapApprovalEntity(3, dispNone)},
	audit.KindApprovalApproved:  {classUserAccess, mapPrivileges(1, dispApproved)},
	audit.KindApprovalDenied:    {classEntityManagement, mapApprovalEntity(3, dispRejected)},
	audit.KindApprovalExpired:   {classEntityManagement, mapApprovalEntity(11, dispNone)},
	audit.KindApprovalCancelled: {classEntityManagement, mapApprovalEntity(11, dispNone)},
	audit.KindApprovalUsed:      {classEntityManagement, mapApprovalEntity(3, dispNone)},
	audit.KindGrantActive:       {classUserAccess, mapPrivileges(1, dispApproved)},
	audit.KindGrantRevoked:      {classUserAccess, mapPrivileges(2, dispNone)},
	audit.KindGrantExpired:      {classUserAccess, mapPrivileges(2, dispNone)},

	audit.KindConfigChanged:  {classEntityManagement, mapConfigChanged},
	audit.KindGatewayStarted: {classAppLifecycle, mapLifecycle(3)},
	audit.KindGatewayStopped: {classAppLifecycle, mapLifecycle(4)},
	audit.KindVerifyFailed:   {classEventLog, mapVerifyFailed},

	audit.KindExportDeadLettered: {classEventLog, mapExportDeadLettered},
	audit.KindExportStatus:       {classEventLog, mapExportStatus},
	audit.KindWitnessRefused:     {classEventLog, mapWitnessRefused},
}

// unknownKind maps a kind without a row to the OCSF Base Event, so
// nothing is lost; its activity_name is the kind.
var unknownKind = kindRule{classBase, func(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
	setClass(ev, classBase, 99, e.Kind)
	ev.Message = "audit entry of kind " + e.Kind
}}

// MappedKinds returns every kind the mapping table has a row for.
func MappedKinds() []string {
	out := make([]string, 0, len(kindTable))
	for k := range kindTable {
		out = append(out, k)
	}
	return out
}

// methodActivity maps an HTTP method to the API Activity CRUD activity.
func methodActivity(method string) (int, string) {
	switch method {
	case http.MethodPost:
		return 1, ""
	case http.MethodGet, http.MethodHead:
		return 2, ""
	case http.MethodPut, http.MethodPatch:
		return 3, ""
	case http.MethodDelete:
		return 4, ""
	}
	return 99, method
}

// httpMethods are the OCSF http_method enum values.
var httpMethods = map[string]bool{
	"CONNECT": true, "DELETE": true, "GET": true, "HEAD": true, "OPTIONS": true,
	"PATCH": true, "POST": true, "PUT": true, "TRACE": true,
}

// requestCommon fills what every request-derived event carries.
func requestCommon(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
	st := ev.st
	if st == nil {
		st = new(eventStore)
	}
	st.httpRequest = httpRequest{Length: e.BytesIn}
	hr := &st.httpRequest
	if httpMethods[e.Method] {
		hr.HTTPMethod = e.Method
	}
	if e.Path != "" {
		st.url = url{Path: e.Path}
		hr.URL = &st.url
	}
	hr.UserAgent = detail(e, "user_agent")
	if hr.HTTPMethod != "" || hr.URL != nil || hr.UserAgent != "" || hr.Length != 0 {
		ev.HTTPRequest = hr
	}
	if httpStatus(e.Status) {
		st.httpResponse = httpResponse{Code: e.Status, Length: e.BytesOut}
		ev.HTTPResponse = &st.httpResponse
		ev.StatusCode = strconv.Itoa(e.Status)
	}
	// The client address is not in today's entries; the gateway may add
	// details.client_ip. src_endpoint is required by API Activity.
	// (The test for "" first: ParseAddr builds an error for it, which
	// showed in the exporter's profile.)
	if s := detail(e, "client_ip"); s == "" {
		st.endpoint = endpoint{Name: "unrecorded"}
	} else if ip, err := netip.ParseAddr(s); err == nil {
		st.endpoint = endpoint{IP: ip.String()}
	} else {
		st.endpoint = endpoint{Name: "unrecorded"}
	}
	ev.SrcEndpoint = &st.endpoint
	if d := e.Decision; d != nil && (d.Rule != "" || d.PolicyVersion != "") {
		st.policy = policy{Name: d.Rule, UID: d.PolicyVersion, Version: d.PolicyVersion, Desc: d.Reason, IsApplied: true}
		ev.Policy = &st.policy
		if ev.Policy.Name == "" {
			ev.Policy.Name = "default"
		}
		addProfile(ev, "security_control")
	}
}

// httpStatus reports whether s is an HTTP status code (entries from
// elsewhere may hold anything).
func httpStatus(s int) bool { return s >= 100 && s <= 999 }

// mapRequest maps the request.* kinds to API Activity.
func mapRequest(d disposition) func(*Mapper, *audit.Entry, *ocsfEvent) {
	return func(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
		act, other := methodActivity(e.Method)
		setClass(ev, classAPIActivity, act, other)
		st := ev.st
		if st == nil {
			st = new(eventStore)
		}
		ev.Actor = principalActorIn(st, e.Principal)
		op := e.Path
		if op == "" {
			op = e.Kind
		}
		st.api = api{Operation: op}
		ev.API = &st.api
		if e.Route != "" {
			st.service = service{Name: e.Route}
			ev.API.Service = &st.service
		}
		if e.RequestID != "" {
			st.apiRequest = apiRequest{UID: e.RequestID}
			ev.API.Request = &st.apiRequest
			if !m.DropParams && len(e.Params) > 0 {
				ev.API.Request.Data = e.Params
			}
		}
		requestCommon(m, e, ev)
		if e.Model != "" {
			st.resources[0] = resource{Type: "AI Model", Name: e.Model}
			ev.Resources = st.resources[:1]
		}
		setDisposition(ev, d)
		who := "anonymous"
		if e.Principal != nil {
			who = e.Principal.Subject
		}
		switch e.Kind {
		case audit.KindRequestAdmitted:
			setStatus(ev, 1, "")
			// Concatenation, not fmt: the two kinds of every request.
			ev.Message = who + ": " + e.Method + " " + e.Path + " admitted"
		case audit.KindRequestCompleted, audit.KindRequestAbandoned:
			outcome := e.Outcome
			if e.Kind == audit.KindRequestAbandoned && outcome == "" {
				outcome = "abandoned"
			}
			if outcome == audit.OutcomeOK && e.Status < 400 {
				setStatus(ev, 1, "")
			} else {
				setStatus(ev, 2, "")
				ev.StatusDetail = outcome
				setSeverity(ev, 2)
				st.apiResponse = apiResponse{Error: outcome}
				ev.API.Response = &st.apiResponse
				if httpStatus(e.Status) {
					ev.API.Response.Code = e.Status
				}
			}
			if outcome == audit.OutcomeMaskingFailed {
				setSeverity(ev, 3)
			}
			if ev.API.Response == nil && httpStatus(e.Status) {
				st.apiResponse = apiResponse{Code: e.Status}
				ev.API.Response = &st.apiResponse
			}
			ev.Duration = (e.Upstream + e.Gateway).Milliseconds()
			ev.Message = who + ": " + e.Method + " " + e.Path + " completed: " + outcome + ", status " + strconv.Itoa(e.Status)
		case audit.KindRequestDenied, audit.KindRequestRefused:
			setStatus(ev, 2, "")
			setSeverity(ev, 2)
			reason := detail(e, "reason")
			if e.Decision != nil && e.Decision.Reason != "" {
				reason = e.Decision.Reason
			}
			ev.StatusDetail = reason
			ev.Message = fmt.Sprintf("%s: %s %s refused: %s", who, e.Method, e.Path, reason)
		case audit.KindRequestPendingApproval:
			setStatus(ev, 99, "Pending approval")
			ev.Message = fmt.Sprintf("%s: %s %s held for approval %s", who, e.Method, e.Path, e.ApprovalID)
		}
	}
}

// authRefusalReasons are the details.reason values of a request.refused
// written because the credential was missing or invalid.
var authRefusalReasons = map[string]bool{
	"unauthenticated": true, "invalid_token": true, "invalid_request": true, "temporarily_unavailable": true,
}

// mapRefused maps request.refused: a token refusal (no principal, an
// identity reason) is an Authentication failure; any other refusal is an
// API Activity blocked.
func mapRefused(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
	if e.Principal != nil || !authRefusalReasons[detail(e, "reason")] {
		mapRequest(dispBlocked)(m, e, ev)
		return
	}
	setClass(ev, classAuthentication, 1, "")
	// The credential is never recorded, so the user is unknown.
	ev.User = &user{Name: "unknown"}
	svc := e.Route
	if svc == "" {
		svc = ProductName
	}
	ev.Service = &service{Name: svc}
	remote := true
	ev.IsRemote = &remote
	requestCommon(m, e, ev)
	setStatus(ev, 2, "")
	setSeverity(ev, 2)
	ev.StatusCode = detail(e, "reason")
	ev.StatusDetail = detail(e, "description")
	setDisposition(ev, dispBlocked)
	ev.Message = fmt.Sprintf("authentication failed for %s %s: %s", e.Method, e.Path, ev.StatusCode)
}

// approvalEntity is the approval request (or grant) an entry is about.
func approvalEntity(e *audit.Entry) *managedEntity {
	me := &managedEntity{UID: e.ApprovalID, Name: detail(e, "setting"), Type: "Approval Request"}
	if detail(e, "approval_kind") == "grant" {
		me.Type = "Grant"
	}
	if s := detail(e, "state"); s != "" {
		me.Data = map[string]any{"state": s}
	}
	if me.UID == "" && me.Name == "" {
		me.Name = e.Kind
	}
	return me
}

// mapApprovalEntity maps approval life-cycle kinds to Entity Management
// of the approval request.
func mapApprovalEntity(activity int, d disposition) func(*Mapper, *audit.Entry, *ocsfEvent) {
	return func(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
		setClass(ev, classEntityManagement, activity, "")
		ev.Actor = principalActor(e.Principal)
		ev.Entity = approvalEntity(e)
		ev.Comment = detail(e, "reason")
		if e.Kind == audit.KindApprovalRequested {
			ev.Comment = detail(e, "justification")
		}
		setStatus(ev, 1, "")
		setDisposition(ev, d)
		ev.Message = fmt.Sprintf("%s %s", e.Kind, e.ApprovalID)
	}
}

// mapPrivileges maps approvals and grants that give or take a privilege
// to User Access Management: the user is the requester, the actor the
// reviewer (or Warden when a grant lapses).
func mapPrivileges(activity int, d disposition) func(*Mapper, *audit.Entry, *ocsfEvent) {
	return func(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
		setClass(ev, classUserAccess, activity, "")
		ev.Actor = principalActor(e.Principal)
		if ref := detail(e, "requester"); ref != "" {
			ev.User = userFromRef(ref)
		} else if u := principalUser(e.Principal); u != nil {
			ev.User = u
		} else {
			ev.User = &user{Name: "unknown"}
		}
		priv := detail(e, "scope")
		if priv == "" {
			setting := detail(e, "setting")
			if setting == "" {
				setting = e.ApprovalID
			}
			priv = "approval:" + setting
		}
		ev.Privileges = []string{priv}
		setStatus(ev, 1, "")
		setDisposition(ev, d)
		ev.Message = fmt.Sprintf("%s %s: %s", e.Kind, e.ApprovalID, priv)
	}
}

// mapConfigChanged maps a policy (or other configuration) change to
// Entity Management / Update of the policy.
func mapConfigChanged(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
	setClass(ev, classEntityManagement, 3, "")
	if who := detail(e, "actor"); who != "" {
		ev.Actor = &actor{User: &user{Name: who}}
	} else {
		ev.Actor = principalActor(e.Principal)
	}
	what := detail(e, "what")
	if what == "" {
		what = "configuration"
	}
	ev.Entity = &managedEntity{Name: detail(e, "file"), Type: what, Version: detail(e, "new_version")}
	if what == "policy" {
		ev.Entity.TypeID, ev.Entity.Type = 5, "Policy"
	}
	if ev.Entity.Name == "" {
		ev.Entity.Name = what
	}
	if old := detail(e, "old_version"); old != "" {
		ev.Entity.Data = map[string]any{"old_version": old}
	}
	if applied, ok := e.Details["applied"].(bool); ok && !applied {
		setStatus(ev, 2, "")
		setSeverity(ev, 3)
		ev.StatusDetail = detail(e, "error")
		ev.Message = what + " change refused: " + ev.StatusDetail
		return
	}
	setStatus(ev, 1, "")
	ev.Message = fmt.Sprintf("%s changed to version %s", what, ev.Entity.Version)
}

// mapLifecycle maps gateway.started (3) and gateway.stopped (4).
func mapLifecycle(activity int) func(*Mapper, *audit.Entry, *ocsfEvent) {
	return func(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
		setClass(ev, classAppLifecycle, activity, "")
		ev.App = &product{Name: ProductName, VendorName: ProductVendor, UID: e.Instance, Version: detail(e, "version")}
		setStatus(ev, 1, "")
		ev.Message = "gateway " + ev.ActivityName
		if u, _ := e.Details["unverified_start"].(bool); u {
			setSeverity(ev, 4)
			ev.Message = "gateway started although the audit log did not verify: " + detail(e, "divergence")
		}
	}
}

// mapVerifyFailed maps audit.verify_failed: tampering found in the log.
func mapVerifyFailed(m *Mapper, e *audit.Entry, ev *ocsfEvent) {
	logActivity(m, ev, 99, "Verify")
	failedAlert(ev, detail(e, "divergence"))
	ev.Message = "audit log verification failed: " + ev.StatusDetail
}
