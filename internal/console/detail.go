package console

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// proofView is the inclusion proof of an entry as the page shows it.
type proofView struct {
	// State is "verified", "pending" (no checkpoint covers the entry
	// yet) or "failed".
	State    string
	TreeSize int64
	RootHash string
	Note     string
	LeafHash string
	Hashes   int
	Err      string
}

// verifyEntry proves entry seq against the newest checkpoint and checks
// the proof here, on the server, with the entry's stored bytes.
func (c *Console) verifyEntry(r *http.Request, seq int64, data []byte) proofView {
	cp := c.o.Audit.Latest()
	if seq >= cp.Size {
		return proofView{State: "pending", TreeSize: cp.Size}
	}
	pv := proofView{TreeSize: cp.Size, RootHash: cp.Hash.String(), Note: string(cp.Note)}
	proof, err := c.o.Audit.ProveEntry(r.Context(), seq, cp.Size)
	if err == nil {
		pv.Hashes = len(proof)
		err = audit.CheckEntryProof(proof, cp, seq, data)
	}
	if err != nil {
		pv.State, pv.Err = "failed", err.Error()
		return pv
	}
	pv.State = "verified"
	return pv
}

func (c *Console) entry(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	if c.o.Audit == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "The audit log is not available.")
		return
	}
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 0 {
		c.errorPage(w, r, p, http.StatusBadRequest, "The sequence number must be a non-negative integer.")
		return
	}
	e, data, err := c.o.Audit.Entry(r.Context(), seq)
	if err != nil {
		if errors.Is(err, audit.ErrNotFound) {
			c.errorPage(w, r, p, http.StatusNotFound, "No such entry.")
			return
		}
		c.log.Error("console: entry", "seq", seq, "err", err)
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "The audit log is unavailable.")
		return
	}
	data2 := struct {
		Entry    *audit.Entry
		Raw      string
		Proof    proofView
		Related  []row
		Approval *approval.Request
		Witness  witnessView
		// Recording is the request's recording, nil when it has none.
		Recording    *recordingView
		RecordingErr string
	}{Entry: e, Raw: string(data), Proof: c.verifyEntry(r, seq, data)}
	data2.Witness = c.witnessedEntry(r.Context(), c.o.Audit.Latest(), seq, data)
	if e.RequestID != "" {
		// The admitted and terminal entries (and any refusal) of the same
		// request.
		rel, err := c.o.Audit.Search(r.Context(), audit.Query{RequestID: e.RequestID, Limit: 20})
		if err == nil {
			for _, x := range rel {
				data2.Related = append(data2.Related, toRow(x))
			}
		}
	}
	id := e.ApprovalID
	if id == "" {
		id = e.GrantID
	}
	if id != "" && c.o.Approvals != nil {
		if a, err := c.o.Approvals.Get(r.Context(), id); err == nil {
			data2.Approval = a
		}
	}
	if data2.Recording, err = c.recordingOf(r.Context(), e.RequestID); err != nil {
		c.log.Error("console: recording", "request_id", e.RequestID, "err", err)
		data2.RecordingErr = "The recording catalogue or the audit log could not be read."
	}
	c.render(w, r, http.StatusOK, "entry", p, data2)
}
