package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// SettingLookup resolves an approval setting name against the policy in
// force (so the API follows policy reloads).
type SettingLookup func(name string) (*policy.ApprovalSetting, bool)

// approvalRoutes serve approval requests and grants. Who may see or act
// on a request is the approval service's decision (requester, reviewer
// groups, separation of duties); the router only makes sure the caller
// is authenticated, and holds the approver role for approve and deny.
func approvalRoutes(svc *approval.Service, settings SettingLookup, baseURL string) []Route {
	a := approvalAPI{svc: svc, settings: settings, base: strings.TrimSuffix(baseURL, "/")}
	idParam := Param{"id", "path", "approval request id"}
	reason := Param{"reason", "body", "why (required), recorded in the audit log"}
	view := "the request: `{id, kind, state, requester, setting, setting_copy, justification, binding | scope, reviews, approvals, review_url, …}`"
	return []Route{
		{Method: "POST", Path: "/v1/approvals", Role: Authenticated, Handle: a.create,
			Summary: "Request a just-in-time grant (settings of kind grant)",
			Params: []Param{
				{"setting", "body", "approval setting name from the policy (required)"},
				{"justification", "body", "why you need it (required)"},
				{"scope", "body", "optional narrower scope: {routes, models, paths}"},
				{"duration", "body", "optional shorter grant duration, e.g. 30m"},
			},
			Reply:  "201 and " + view + "; `Location: /v1/approvals/{id}`",
			Errors: []apierr.Code{apierr.BadRequest, apierr.TooLarge, apierr.Conflict}},
		{Method: "GET", Path: "/v1/approvals", Role: Authenticated, Handle: a.list,
			Summary: "List the requests you made or may review, newest first",
			Params: []Param{
				{"state", "query", "pending, approved, denied, expired, cancelled, used or revoked"},
				{"requester", "query", "requester's subject"}, {"setting", "query", "approval setting name"},
				{"kind", "query", "one_time or grant"}, {"limit", "query", "1..1000, default 100"},
			},
			Reply:  "`{\"approvals\":[…]}`",
			Errors: []apierr.Code{apierr.BadRequest}},
		{Method: "GET", Path: "/v1/approvals/{id}", Role: Authenticated, Handle: a.get,
			Summary: "One request (its requester and reviewers only; others get 404)",
			Params:  []Param{idParam}, Reply: view,
			Errors: []apierr.Code{apierr.NotFound}},
		{Method: "POST", Path: "/v1/approvals/{id}/approve", Role: Approver, Handle: a.review(approval.VerdictApprove),
			Summary: "Approve a request: a reviewer of its setting, never its requester",
			Params:  []Param{idParam, reason}, Reply: view,
			Errors: []apierr.Code{apierr.BadRequest, apierr.TooLarge, apierr.NotFound, apierr.Conflict}},
		{Method: "POST", Path: "/v1/approvals/{id}/deny", Role: Approver, Handle: a.review(approval.VerdictDeny),
			Summary: "Deny a request; one deny decides",
			Params:  []Param{idParam, reason}, Reply: view,
			Errors: []apierr.Code{apierr.BadRequest, apierr.TooLarge, apierr.NotFound, apierr.Conflict}},
		{Method: "POST", Path: "/v1/approvals/{id}/cancel", Role: Authenticated, Handle: a.cancel,
			Summary: "Withdraw your own pending request",
			Params:  []Param{idParam, {"reason", "body", "optional"}}, Reply: view,
			Errors: []apierr.Code{apierr.BadRequest, apierr.TooLarge, apierr.NotFound, apierr.Conflict}},
		{Method: "GET", Path: "/v1/grants", Role: Authenticated, Handle: a.grants,
			Summary: "Your active grants",
			Reply:   "`{\"grants\":[{\"id\",\"scope\",\"expires\"}]}`"},
		{Method: "POST", Path: "/v1/grants/{id}/revoke", Role: Authenticated, Handle: a.revoke,
			Summary: "Revoke an active grant: its holder or a reviewer of its setting",
			Params:  []Param{{"id", "path", "grant (approval request) id"}, reason}, Reply: view,
			Errors: []apierr.Code{apierr.BadRequest, apierr.TooLarge, apierr.NotFound, apierr.Conflict}},
	}
}

type approvalAPI struct {
	svc      *approval.Service
	settings SettingLookup
	base     string
}

// View is an approval request as the admin API shows it.
type View struct {
	*approval.Request
	// ReviewURL links to the request.
	ReviewURL string `json:"review_url,omitempty"`
	// Approvals counts the approving reviews so far.
	Approvals int `json:"approvals"`
}

func (a approvalAPI) view(r *approval.Request) View {
	u := a.svc.ReviewURL(r.ID)
	if u == "" && a.base != "" {
		u = a.base + "/v1/approvals/" + r.ID
	}
	return View{Request: r, ReviewURL: u, Approvals: r.ApprovalCount()}
}

// CreateBody is the body of POST /v1/approvals.
type CreateBody struct {
	Setting       string             `json:"setting"`
	Justification string             `json:"justification"`
	Scope         *policy.GrantScope `json:"scope,omitempty"`
	// Duration optionally shortens the grant, e.g. "30m".
	Duration string `json:"duration,omitempty"`
}

// ReasonBody is the body of approve, deny, cancel and revoke.
type ReasonBody struct {
	Reason string `json:"reason"`
}

func (a approvalAPI) create(w http.ResponseWriter, r *http.Request) error {
	var b CreateBody
	if err := decodeBody(r, &b, false); err != nil {
		return err
	}
	if b.Setting == "" {
		return apierr.New(apierr.BadRequest, "setting is required")
	}
	set, ok := a.settings(b.Setting)
	if !ok || set == nil {
		return apierr.Errorf(apierr.BadRequest, "the policy has no approval setting %q", b.Setting)
	}
	var d time.Duration
	if b.Duration != "" {
		var err error
		if d, err = time.ParseDuration(b.Duration); err != nil || d <= 0 {
			return apierr.New(apierr.BadRequest, "duration must be a positive Go duration such as 30m")
		}
	}
	req, err := a.svc.RequestGrant(r.Context(), PrincipalFrom(r.Context()),
		approval.GrantRequest{SettingName: b.Setting, Setting: set, Justification: b.Justification, Scope: b.Scope, Duration: d})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/approvals/"+req.ID)
	return writeJSON(w, http.StatusCreated, a.view(req))
}

func (a approvalAPI) list(w http.ResponseWriter, r *http.Request) error {
	q := query{r: r}
	f := approval.Filter{State: approval.State(q.str("state")), Kind: q.str("kind"), Setting: q.str("setting"), RequesterSubject: q.str("requester")}
	limit := q.limit(100, 1000)
	switch {
	case q.err != nil:
		return q.err
	case f.State != "" && !f.State.Valid():
		return apierr.Errorf(apierr.BadRequest, "unknown state %q", f.State)
	case f.Kind != "" && f.Kind != string(policy.ApprovalOneTime) && f.Kind != string(policy.ApprovalGrant):
		return apierr.New(apierr.BadRequest, "kind must be one_time or grant")
	}
	// Read more than the limit: visibility filters after the store.
	f.Limit = 1000
	rs, err := a.svc.List(r.Context(), f)
	if err != nil {
		return err
	}
	p := PrincipalFrom(r.Context())
	out := []View{}
	for _, req := range rs {
		if req.VisibleTo(p) && len(out) < limit {
			out = append(out, a.view(req))
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

func (a approvalAPI) get(w http.ResponseWriter, r *http.Request) error {
	req, err := a.svc.GetVisible(r.Context(), PrincipalFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.view(req))
}

// act runs one transition on a request the caller may see, with the
// reason from the body.
func (a approvalAPI) act(w http.ResponseWriter, r *http.Request, optional bool,
	do func(p *identity.Principal, id, reason string) (*approval.Request, error)) error {
	p := PrincipalFrom(r.Context())
	if _, err := a.svc.GetVisible(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	var b ReasonBody
	if err := decodeBody(r, &b, optional); err != nil {
		return err
	}
	req, err := do(p, r.PathValue("id"), b.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.view(req))
}

func (a approvalAPI) review(v approval.Verdict) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		return a.act(w, r, false, func(p *identity.Principal, id, reason string) (*approval.Request, error) {
			return a.svc.Review(r.Context(), p, id, v, reason)
		})
	}
}

func (a approvalAPI) cancel(w http.ResponseWriter, r *http.Request) error {
	return a.act(w, r, true, func(p *identity.Principal, id, reason string) (*approval.Request, error) {
		return a.svc.Cancel(r.Context(), p, id, reason)
	})
}

func (a approvalAPI) revoke(w http.ResponseWriter, r *http.Request) error {
	return a.act(w, r, false, func(p *identity.Principal, id, reason string) (*approval.Request, error) {
		return a.svc.Revoke(r.Context(), p, id, reason)
	})
}

func (a approvalAPI) grants(w http.ResponseWriter, r *http.Request) error {
	gs, err := a.svc.ActiveGrants(r.Context(), PrincipalFrom(r.Context()))
	if err != nil {
		return err
	}
	if gs == nil {
		gs = []policy.Grant{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"grants": gs})
}
