package approval

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// SettingLookup resolves an approval setting name against the current
// policy (so the admin API follows policy reloads).
type SettingLookup func(name string) (*policy.ApprovalSetting, bool)

// maxBody bounds admin API request bodies.
const maxBody = 64 << 10

// NewHandler returns the admin API for approvals and grants, to mount on
// the admin listener at /v1/approvals and /v1/grants (it routes both
// prefixes itself):
//
//	POST /v1/approvals                 request a grant {"setting","justification","scope"?,"duration"?}
//	GET  /v1/approvals?state=&requester=&setting=&kind=&limit=
//	GET  /v1/approvals/{id}
//	POST /v1/approvals/{id}/approve    {"reason"}
//	POST /v1/approvals/{id}/deny       {"reason"}
//	POST /v1/approvals/{id}/cancel     {"reason"?}  (requester only)
//	GET  /v1/grants                    the caller's active grants
//	POST /v1/grants/{id}/revoke        {"reason"}   (holder or a reviewer of the setting)
//
// authn verifies the caller (the same OIDC identities as the gateway). A
// caller sees only requests they made or may review (a member of one of
// the request's reviewer groups); others answer 404. Errors are JSON
// {"error":{"type","message"}} with 400/401/403/404/409 (500 for store
// or audit failures, whose details are logged, not returned). baseURL is
// used for review links when the service has no review_url_base.
func NewHandler(svc *Service, authn func(*http.Request) (*identity.Principal, error), settings SettingLookup, baseURL string) http.Handler {
	h := &handler{svc: svc, authn: authn, settings: settings, base: strings.TrimSuffix(baseURL, "/")}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/approvals", h.auth(h.create))
	mux.HandleFunc("GET /v1/approvals", h.auth(h.list))
	mux.HandleFunc("GET /v1/approvals/{id}", h.auth(h.get))
	mux.HandleFunc("POST /v1/approvals/{id}/approve", h.auth(h.review(VerdictApprove)))
	mux.HandleFunc("POST /v1/approvals/{id}/deny", h.auth(h.review(VerdictDeny)))
	mux.HandleFunc("POST /v1/approvals/{id}/cancel", h.auth(h.cancel))
	mux.HandleFunc("GET /v1/grants", h.auth(h.grants))
	mux.HandleFunc("POST /v1/grants/{id}/revoke", h.auth(h.revoke))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, svc.log, errorf(CodeNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

type handler struct {
	svc      *Service
	authn    func(*http.Request) (*identity.Principal, error)
	settings SettingLookup
	base     string
}

type authed func(w http.ResponseWriter, r *http.Request, p *identity.Principal)

func (h *handler) auth(next authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authn(r)
		if err != nil || p == nil || p.Subject == "" {
			// The authenticator's error may describe the token; do not echo it.
			writeError(w, r, h.svc.log, errorf(CodeUnauthenticated, "a valid bearer token is required"))
			return
		}
		next(w, r, p)
	}
}

// httpStatus maps error codes to HTTP statuses (the one place).
func httpStatus(c Code) int {
	switch c {
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := CodeOf(err)
	msg := "internal error"
	var e *Error
	if errors.As(err, &e) && code != CodeInternal {
		msg = e.Msg
	} else {
		log.Error("approval: admin API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if code == CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
	}
	writeJSON(w, httpStatus(code), map[string]any{"error": map[string]string{"type": string(code), "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // the client went away
}

// decode reads a strict JSON body into v; an empty body is allowed when
// optional.
func decode(r *http.Request, v any, optional bool) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return errorf(CodeInvalid, "request body: %v", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if optional {
			return nil
		}
		return errorf(CodeInvalid, "a JSON body is required")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(CodeInvalid, "request body: %v", err)
	}
	if dec.More() {
		return errorf(CodeInvalid, "request body: trailing data")
	}
	return nil
}

// View is a request as the admin API shows it.
type View struct {
	*Request
	// ReviewURL links to the request.
	ReviewURL string `json:"review_url,omitempty"`
	// Approvals counts the approving reviews so far.
	Approvals int `json:"approvals"`
}

func (h *handler) view(r *Request) View {
	u := h.svc.reviewURL(r.ID)
	if u == "" && h.base != "" {
		u = h.base + "/v1/approvals/" + r.ID
	}
	return View{Request: r, ReviewURL: u, Approvals: countVerdict(r, VerdictApprove)}
}

// canSee: the requester, or a member of one of the request's reviewer
// groups.
func canSee(p *identity.Principal, r *Request) bool {
	me := PersonOf(p)
	return me.Same(r.Requester) || len(reviewerGroups(&r.Setting, me)) > 0
}

// visible loads request id if p may see it (404 otherwise).
func (h *handler) visible(w http.ResponseWriter, r *http.Request, p *identity.Principal) (*Request, bool) {
	req, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err == nil && !canSee(p, req) {
		err = errorf(CodeNotFound, "no approval request %s", r.PathValue("id"))
	}
	if errors.Is(err, ErrNotFound) {
		err = errorf(CodeNotFound, "no approval request %s", r.PathValue("id"))
	}
	if err != nil {
		writeError(w, r, h.svc.log, err)
		return nil, false
	}
	return req, true
}

// CreateBody is the body of POST /v1/approvals.
type CreateBody struct {
	Setting       string             `json:"setting"`
	Justification string             `json:"justification"`
	Scope         *policy.GrantScope `json:"scope,omitempty"`
	// Duration optionally shortens the grant, e.g. "30m".
	Duration string `json:"duration,omitempty"`
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	var b CreateBody
	if err := decode(r, &b, false); err != nil {
		writeError(w, r, h.svc.log, err)
		return
	}
	if b.Setting == "" {
		writeError(w, r, h.svc.log, errorf(CodeInvalid, "setting is required"))
		return
	}
	set, ok := h.settings(b.Setting)
	if !ok || set == nil {
		writeError(w, r, h.svc.log, errorf(CodeInvalid, "the policy has no approval setting %q", b.Setting))
		return
	}
	var d time.Duration
	if b.Duration != "" {
		var err error
		if d, err = time.ParseDuration(b.Duration); err != nil || d <= 0 {
			writeError(w, r, h.svc.log, errorf(CodeInvalid, "duration must be a positive Go duration such as 30m"))
			return
		}
	}
	req, err := h.svc.RequestGrant(r.Context(), p, GrantRequest{SettingName: b.Setting, Setting: set, Justification: b.Justification, Scope: b.Scope, Duration: d})
	if err != nil {
		writeError(w, r, h.svc.log, err)
		return
	}
	w.Header().Set("Location", "/v1/approvals/"+req.ID)
	writeJSON(w, http.StatusCreated, h.view(req))
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	q := r.URL.Query()
	f := Filter{State: State(q.Get("state")), Kind: q.Get("kind"), Setting: q.Get("setting"), RequesterSubject: q.Get("requester")}
	if f.State != "" && !f.State.Valid() {
		writeError(w, r, h.svc.log, errorf(CodeInvalid, "unknown state %q", f.State))
		return
	}
	if f.Kind != "" && f.Kind != string(policy.ApprovalOneTime) && f.Kind != string(policy.ApprovalGrant) {
		writeError(w, r, h.svc.log, errorf(CodeInvalid, "kind must be one_time or grant"))
		return
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, r, h.svc.log, errorf(CodeInvalid, "limit must be 1..1000"))
			return
		}
		limit = n
	}
	// Read more than the limit, since visibility filters after the store.
	f.Limit = 1000
	rs, err := h.svc.List(r.Context(), f)
	if err != nil {
		writeError(w, r, h.svc.log, err)
		return
	}
	out := []View{}
	for _, req := range rs {
		if canSee(p, req) && len(out) < limit {
			out = append(out, h.view(req))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": out})
}

func (h *handler) get(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	if req, ok := h.visible(w, r, p); ok {
		writeJSON(w, http.StatusOK, h.view(req))
	}
}

// ReasonBody is the body of approve, deny, cancel and revoke.
type ReasonBody struct {
	Reason string `json:"reason"`
}

func (h *handler) act(w http.ResponseWriter, r *http.Request, p *identity.Principal, optional bool, do func(id, reason string) (*Request, error)) {
	if _, ok := h.visible(w, r, p); !ok {
		return
	}
	var b ReasonBody
	if err := decode(r, &b, optional); err != nil {
		writeError(w, r, h.svc.log, err)
		return
	}
	req, err := do(r.PathValue("id"), b.Reason)
	if err != nil {
		writeError(w, r, h.svc.log, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(req))
}

func (h *handler) review(v Verdict) authed {
	return func(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
		h.act(w, r, p, false, func(id, reason string) (*Request, error) { return h.svc.Review(r.Context(), p, id, v, reason) })
	}
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	h.act(w, r, p, true, func(id, reason string) (*Request, error) { return h.svc.Cancel(r.Context(), p, id, reason) })
}

func (h *handler) revoke(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	h.act(w, r, p, false, func(id, reason string) (*Request, error) { return h.svc.Revoke(r.Context(), p, id, reason) })
}

func (h *handler) grants(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	gs, err := h.svc.ActiveGrants(r.Context(), p)
	if err != nil {
		writeError(w, r, h.svc.log, err)
		return
	}
	if gs == nil {
		gs = []policy.Grant{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": gs})
}
