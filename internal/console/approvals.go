package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/identity"
)

// maxReason bounds a review reason typed in the console.
const maxReason = 2000

// inboxItem is one approval request in the inbox.
type inboxItem struct {
	*approval.Request
	// Mine: the viewer asked for it, so may not review it (separation of
	// duties).
	Mine bool
}

func (c *Console) approvals(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	c.renderInbox(w, r, p, http.StatusOK, "")
}

func (c *Console) renderInbox(w http.ResponseWriter, r *http.Request, p *identity.Principal, status int, msg string) {
	if c.o.Approvals == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "Approvals are not enabled.")
		return
	}
	data := struct {
		Pending, Grants []inboxItem
		Message         string
		CanReview       bool
	}{Message: msg, CanReview: c.hasRole(p, "approver")}
	for _, f := range []approval.Filter{{State: approval.StatePending, Limit: 1000}, {State: approval.StateApproved, Kind: "grant", Limit: 1000}} {
		rs, err := c.o.Approvals.List(r.Context(), f)
		if err != nil {
			c.log.Error("console: approvals", "err", err)
			c.errorPage(w, r, p, http.StatusServiceUnavailable, "The approval store is unavailable.")
			return
		}
		for _, req := range rs {
			if !req.VisibleTo(p) {
				continue
			}
			it := inboxItem{Request: req, Mine: p.Same(&req.Requester)}
			if f.State == approval.StatePending {
				data.Pending = append(data.Pending, it)
			} else {
				data.Grants = append(data.Grants, it)
			}
		}
	}
	c.render(w, r, status, "approvals", p, data)
}

// act runs one transition with the mandatory reason from the form and
// shows the inbox again, with the outcome.
func (c *Console) act(w http.ResponseWriter, r *http.Request, p *identity.Principal, do func(id, reason string) (*approval.Request, error), done string) {
	if c.o.Approvals == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "Approvals are not enabled.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	switch {
	case reason == "":
		c.renderInbox(w, r, p, http.StatusBadRequest, "A reason is required.")
		return
	case len(reason) > maxReason:
		c.renderInbox(w, r, p, http.StatusBadRequest, "The reason is too long.")
		return
	}
	id := r.PathValue("id")
	if _, err := c.o.Approvals.GetVisible(r.Context(), p, id); err != nil {
		c.renderInbox(w, r, p, http.StatusNotFound, "No such request.")
		return
	}
	if _, err := do(id, reason); err != nil {
		st, msg := http.StatusInternalServerError, "The request could not be changed."
		var ae *apierr.Error
		if errors.As(err, &ae) && ae.Code.Known() && ae.Code != apierr.Internal {
			st, msg = ae.Code.Status(), ae.Msg
		} else {
			c.log.Error("console: approval action", "id", id, "err", err)
		}
		c.renderInbox(w, r, p, st, msg)
		return
	}
	c.renderInbox(w, r, p, http.StatusOK, id+" "+done+".")
}

func (c *Console) review(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	v := approval.Verdict(r.PathValue("verdict"))
	if v != approval.VerdictApprove && v != approval.VerdictDeny {
		c.errorPage(w, r, p, http.StatusNotFound, "No such action.")
		return
	}
	if !c.hasRole(p, "approver") {
		c.errorPage(w, r, p, http.StatusForbidden, "Reviewing needs the approver role, which none of your groups holds.")
		return
	}
	done := map[approval.Verdict]string{approval.VerdictApprove: "approved", approval.VerdictDeny: "denied"}[v]
	c.act(w, r, p, func(id, reason string) (*approval.Request, error) {
		return c.o.Approvals.Review(r.Context(), p, id, v, reason)
	}, done)
}

func (c *Console) revoke(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	c.act(w, r, p, func(id, reason string) (*approval.Request, error) {
		return c.o.Approvals.Revoke(r.Context(), p, id, reason)
	}, "revoked")
}
