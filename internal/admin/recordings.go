package admin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/recording"
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

// RecordingEntry is a recording's catalogue entry in replies (never its
// key).
type RecordingEntry struct {
	ID        string    `json:"id"`
	RequestID string    `json:"request_id"`
	Principal string    `json:"principal,omitempty"`
	Route     string    `json:"route,omitempty"`
	Level     string    `json:"level"`
	StartedAt time.Time `json:"started_at"`
	Size      int64     `json:"size"`
	Digest    string    `json:"digest"`
	Erased    *Erasure  `json:"erased,omitempty"`
}

// Erasure says who erased a recording, when and why.
type Erasure struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// TerminalEntry is the request's terminal audit entry with its inclusion
// proof against the latest checkpoint (absent while Pending).
type TerminalEntry struct {
	Seq        int64            `json:"seq"`
	Entry      []byte           `json:"entry"`
	TreeSize   int64            `json:"tree_size,omitempty"`
	Checkpoint string           `json:"checkpoint,omitempty"`
	Proof      tlog.RecordProof `json:"proof,omitempty"`
	Pending    bool             `json:"pending,omitempty"`
	hash       tlog.Hash        // the checkpoint's tree hash
}

// RecordingVerification is what the server checked.
type RecordingVerification struct {
	// OK: content intact, its digest is the one the terminal entry
	// carries, and that entry is proven included in the signed log.
	OK bool `json:"ok"`
	// Content is ok, erased, corrupt or unavailable.
	Content string `json:"content"`
	// LogDigest is the digest in the terminal entry.
	LogDigest        string `json:"log_digest,omitempty"`
	DigestMatchesLog bool   `json:"digest_matches_log"`
	// Inclusion is ok, pending (no checkpoint covers the entry yet),
	// failed, or missing (no terminal entry names the recording).
	Inclusion string   `json:"inclusion"`
	Problems  []string `json:"problems,omitempty"`
}

// RecordingView is the answer of GET /v1/recordings/{request_id}.
type RecordingView struct {
	RequestID    string                `json:"request_id"`
	Recording    RecordingEntry        `json:"recording"`
	Terminal     *TerminalEntry        `json:"terminal,omitempty"`
	Verification RecordingVerification `json:"verification"`
}

func recordingEntry(e recording.Entry) RecordingEntry {
	out := RecordingEntry{
		ID: e.ID, RequestID: e.RequestID, Principal: e.Principal, Route: e.Route, Level: string(e.Level),
		StartedAt: e.StartedAt, Size: e.Size, Digest: e.Digest.String(),
	}
	if er := e.Erasure; er != nil {
		out.Erased = &Erasure{At: er.At, By: er.By, Reason: er.Reason}
	}
	return out
}

// find picks the request's recording: ?id=, else the newest.
func (a recordingAPI) find(r *http.Request) (recording.Entry, error) {
	reqID := r.PathValue("request_id")
	if reqID == "" || len(reqID) > 256 {
		return recording.Entry{}, apierr.New(apierr.BadRequest, "a request id (at most 256 characters) is required")
	}
	es, err := a.rec.Find(r.Context(), reqID)
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
	out := RecordingView{RequestID: e.RequestID, Recording: recordingEntry(e)}
	v := &out.Verification
	var expected recording.Digest
	if a.log == nil {
		v.Inclusion = "missing"
		v.Problems = append(v.Problems, "the audit log is not configured")
	} else {
		t, d, err := a.terminal(r.Context(), e)
		if err != nil {
			return err
		}
		out.Terminal = t
		switch {
		case t == nil:
			v.Inclusion = "missing"
			v.Problems = append(v.Problems, "no terminal audit entry names this recording")
		case t.Pending:
			v.Inclusion = "pending"
		default:
			v.Inclusion = "ok"
			cp := audit.Checkpoint{Size: t.TreeSize, Hash: t.hash}
			if err := audit.CheckEntryProof(t.Proof, cp, t.Seq, t.Entry); err != nil {
				v.Inclusion = "failed"
				v.Problems = append(v.Problems, err.Error())
			}
		}
		if !d.IsZero() {
			expected = d
			v.LogDigest = d.String()
		}
	}
	_, verr := a.rec.Verify(r.Context(), e.ID, recording.Digest{})
	switch {
	case verr == nil:
		v.Content = "ok"
	case errors.Is(verr, recording.ErrErased):
		v.Content = "erased"
	case recording.IsCorrupt(verr):
		v.Content = "corrupt"
		v.Problems = append(v.Problems, verr.Error())
	default:
		v.Content = "unavailable"
		v.Problems = append(v.Problems, "the recording store could not be read")
	}
	v.DigestMatchesLog = !expected.IsZero() && expected == e.Digest
	if !expected.IsZero() && !v.DigestMatchesLog {
		v.Problems = append(v.Problems, "the catalogue's digest "+e.Digest.String()+" differs from the audit log's "+expected.String())
	}
	v.OK = v.Content == "ok" && v.DigestMatchesLog && v.Inclusion == "ok"
	return writeJSON(w, http.StatusOK, out)
}

// terminal finds the terminal entry that names recording e and proves it
// against the latest checkpoint. It returns the digest the entry carries.
func (a recordingAPI) terminal(ctx context.Context, e recording.Entry) (*TerminalEntry, recording.Digest, error) {
	es, err := a.log.Search(ctx, audit.Query{RequestID: e.RequestID, Kind: audit.KindRequestCompleted, Limit: 100})
	if err != nil {
		return nil, recording.Digest{}, auditErr(err)
	}
	for _, te := range es {
		id, digest := RecordingOf(te)
		if id != e.ID {
			continue
		}
		_, data, err := a.log.Entry(ctx, te.Seq)
		if err != nil {
			return nil, recording.Digest{}, auditErr(err)
		}
		t := &TerminalEntry{Seq: te.Seq, Entry: data}
		cp := a.log.Latest()
		if te.Seq < cp.Size {
			p, err := a.log.ProveEntry(ctx, te.Seq, cp.Size)
			if err != nil {
				return nil, recording.Digest{}, auditErr(err)
			}
			t.TreeSize, t.Checkpoint, t.Proof, t.hash = cp.Size, string(cp.Note), p, cp.Hash
		} else {
			t.Pending = true
		}
		d, _ := recording.ParseDigest(digest)
		return t, d, nil
	}
	return nil, recording.Digest{}, nil
}

// RecordingOf returns the recording id and digest a terminal entry's
// details carry (details.recording, written by the gateway), or "".
func RecordingOf(e *audit.Entry) (id, digest string) {
	m, ok := e.Details["recording"].(map[string]any)
	if !ok {
		return "", ""
	}
	id, _ = m["id"].(string)
	digest, _ = m["digest"].(string)
	return id, digest
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
