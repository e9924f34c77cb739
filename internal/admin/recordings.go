package admin

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/recordingcheck"
)

// maxRecordingContent bounds a recording's canonical form served by the
// content endpoint (it is built in memory).
const maxRecordingContent = 256 << 20

// recordingRoutes serve session recordings: the verification an auditor
// (or the console's player) needs, the content for warden replay, and
// erasure (crypto-shredding) for admins.
func recordingRoutes(rec *recording.Recorder, l *audit.Log) []Route {
	a := recordingAPI{rec: rec, log: l}
	return []Route{
		{Method: "GET", Path: "/v1/recordings/{request_id}", Role: Auditor, Handle: a.get,
			Summary: "A request's recording with its verification: content against the digest in the terminal audit entry, and that entry's inclusion proof",
			Params: []Param{
				{"request_id", "path", "gateway request id"},
				{"id", "query", "recording id, when a request id has several recordings (default the newest)"},
			},
			Reply:  "`{\"request_id\",\"recording\":{…catalogue entry…},\"terminal\":{\"seq\",\"entry\",\"tree_size\",\"checkpoint\",\"proof\",\"pending\"},\"verification\":{\"ok\",\"content\",\"log_digest\",\"digest_matches_log\",\"inclusion\",\"problems\"}}`",
			Errors: []apierr.Code{apierr.BadRequest, apierr.NotFound, apierr.Unavailable}},
		{Method: "GET", Path: "/v1/recordings/{request_id}/content", Role: Auditor, Handle: a.content,
			Summary: "A request's recording in its canonical form (what the digest covers), decrypted, for warden replay",
			Params: []Param{
				{"request_id", "path", "gateway request id"},
				{"id", "query", "recording id (default the newest of the request)"},
			},
			Reply:  "`application/vnd.warden.recording` bytes; `X-Warden-Recording-Digest` names their digest",
			Errors: []apierr.Code{apierr.BadRequest, apierr.NotFound, apierr.Conflict, apierr.Unavailable}},
		{Method: "POST", Path: "/v1/recordings/erase", Role: Admin, Handle: a.erase,
			Summary: "Erase recordings by crypto-shredding their data keys; each erasure is first recorded as recording.erased in the audit log",
			Params: []Param{
				{"principal", "body", "the recorded caller's subject"},
				{"request_id", "body", "one request's recordings (instead of, or with, principal)"},
				{"before", "body", "optional RFC 3339 time: only recordings started before it"},
				{"reason", "body", "why (required; recorded)"},
			},
			Reply:  "`{\"erased\":[{\"id\",\"request_id\",\"principal\",\"started_at\",\"digest\",\"at\",\"by\",\"reason\"}]}`",
			Errors: []apierr.Code{apierr.BadRequest, apierr.TooLarge, apierr.Unavailable}},
	}
}

type recordingAPI struct {
	rec *recording.Recorder
	log *audit.Log // nil without the audit log
}

// The recording views are recordingcheck's, under the names the admin
// API has always used (warden replay decodes them).
type (
	// RecordingEntry is a recording's catalogue entry in replies.
	RecordingEntry = recordingcheck.Entry
	// Erasure says who erased a recording, when and why.
	Erasure = recordingcheck.Erasure
	// TerminalEntry is the request's terminal audit entry with its proof.
	TerminalEntry = recordingcheck.Terminal
	// RecordingVerification is what the server checked.
	RecordingVerification = recordingcheck.Verification
	// RecordingView is the answer of GET /v1/recordings/{request_id}.
	RecordingView = recordingcheck.View
)

// RecordingOf returns the recording id and digest a terminal entry's
// details carry (see recordingcheck.RecordingOf).
func RecordingOf(e *audit.Entry) (id, digest string) { return recordingcheck.RecordingOf(e) }

// find picks the request's recording: ?id=, else the newest.
func (a recordingAPI) find(r *http.Request) (recording.Entry, error) {
	reqID := r.PathValue("request_id")
	if reqID == "" || len(reqID) > 256 {
		return recording.Entry{}, apierr.New(apierr.BadRequest, "a request id (at most 256 characters) is required")
	}
	es, err := recordingcheck.Find(r.Context(), a.rec, a.log, reqID)
	if err != nil {
		return recording.Entry{}, apierr.Wrap(apierr.Unavailable, "the recording catalogue is unavailable", err)
	}
	want := r.URL.Query().Get("id")
	for i := len(es) - 1; i >= 0; i-- {
		if want == "" || es[i].ID == want {
			return es[i], nil
		}
	}
	return recording.Entry{}, apierr.New(apierr.NotFound, "no recording of request "+reqID)
}

func (a recordingAPI) get(w http.ResponseWriter, r *http.Request) error {
	e, err := a.find(r)
	if err != nil {
		return err
	}
	out, err := recordingcheck.Verify(r.Context(), a.rec, a.log, e)
	if err != nil {
		return auditErr(err)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a recordingAPI) content(w http.ResponseWriter, r *http.Request) error {
	e, err := a.find(r)
	if err != nil {
		return err
	}
	rec, _, err := a.rec.Load(r.Context(), e.ID, maxRecordingContent)
	switch {
	case errors.Is(err, recording.ErrErased):
		return apierr.New(apierr.Conflict, "recording "+e.ID+" was erased; its content cannot be read")
	case recording.IsCorrupt(err):
		return apierr.Wrap(apierr.Conflict, "recording "+e.ID+" does not verify: "+err.Error(), err)
	case err != nil:
		return apierr.Wrap(apierr.Unavailable, "the recording store could not be read", err)
	}
	var buf bytes.Buffer
	d, err := rec.Encode(&buf)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/vnd.warden.recording")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Warden-Recording-Id", e.ID)
	h.Set("X-Warden-Recording-Digest", d.String())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// EraseBody is the body of POST /v1/recordings/erase.
type EraseBody struct {
	Principal string `json:"principal,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Before    string `json:"before,omitempty"`
	Reason    string `json:"reason"`
}

// ErasedView is one erased recording in replies.
type ErasedView struct {
	ID        string    `json:"id"`
	RequestID string    `json:"request_id"`
	Principal string    `json:"principal,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Digest    string    `json:"digest"`
	At        time.Time `json:"at"`
	By        string    `json:"by"`
	Reason    string    `json:"reason"`
}

func (a recordingAPI) erase(w http.ResponseWriter, r *http.Request) error {
	var b EraseBody
	if err := decodeBody(r, &b, false); err != nil {
		return err
	}
	if b.Principal == "" && b.RequestID == "" {
		return apierr.New(apierr.BadRequest, "principal or request_id is required (an empty selector never erases everything)")
	}
	if b.Reason == "" || len(b.Reason) > 1000 {
		return apierr.New(apierr.BadRequest, "reason is required (at most 1000 characters)")
	}
	sel := recording.Selector{Principal: b.Principal, RequestID: b.RequestID}
	if b.Before != "" {
		t, err := time.Parse(time.RFC3339Nano, b.Before)
		if err != nil {
			return apierr.New(apierr.BadRequest, "before must be an RFC 3339 time")
		}
		sel.Before = t
	}
	by := "admin"
	if p := PrincipalFrom(r.Context()); p != nil {
		by = p.Subject
	}
	done, err := a.rec.Erase(r.Context(), sel, by, b.Reason)
	out := struct {
		Erased []ErasedView `json:"erased"`
	}{Erased: []ErasedView{}}
	for _, e := range done {
		out.Erased = append(out.Erased, ErasedView{
			ID: e.ID, RequestID: e.RequestID, Principal: e.Principal, StartedAt: e.StartedAt,
			Digest: e.Digest.String(), At: e.At, By: e.By, Reason: e.Reason,
		})
	}
	if err != nil {
		// Each erasure is recorded before its key is destroyed, so what
		// was erased is in the log; say how far it got.
		return apierr.Wrap(apierr.Unavailable, "erasure stopped after "+strconv.Itoa(len(done))+" recordings: the audit log or the recording catalogue is unavailable (each erasure is recorded before it happens)", err)
	}
	return writeJSON(w, http.StatusOK, out)
}
