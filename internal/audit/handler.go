package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// NewHandler serves the audit admin API. Mount it at /v1/audit/ on the
// admin listener; it does no authentication (the caller must).
//
//	GET /v1/audit/entries?principal=&from=&to=&route=&model=&kind=&action=
//	    &approval_id=&request_id=&mask_rule=&q=&start=&end=&desc=&limit=
//	                                   search; from/to are RFC 3339; q is full text.
//	                                   The reply's "next" holds the query for the next page.
//	GET /v1/audit/entries/{seq}        one entry with its inclusion proof
//	                                   against the latest checkpoint
//	GET /v1/audit/consistency?from=&to= consistency proof between tree sizes
//	GET /v1/audit/checkpoints          every checkpoint
//	GET /v1/audit/checkpoint           the latest signed checkpoint (text/plain)
func NewHandler(l *Log) http.Handler {
	h := &handler{l: l}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/audit/entries", h.search)
	mux.HandleFunc("GET /v1/audit/entries/{seq}", h.entry)
	mux.HandleFunc("GET /v1/audit/consistency", h.consistency)
	mux.HandleFunc("GET /v1/audit/checkpoints", h.checkpoints)
	mux.HandleFunc("GET /v1/audit/checkpoint", h.checkpoint)
	return mux
}

type handler struct{ l *Log }

// errBadRequest marks errors in the caller's parameters.
var errBadRequest = errors.New("bad request")

// writeError maps error kinds to HTTP status, in this one place.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	msg := "internal error"
	switch {
	case errors.Is(err, errBadRequest):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, ErrNotFound):
		status, msg = http.StatusNotFound, "not found"
	case errors.Is(err, ErrClosed), errors.Is(err, ErrLogClosed):
		status, msg = http.StatusServiceUnavailable, "audit store unavailable"
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func intParam(r *http.Request, name string, def int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s must be a non-negative integer", errBadRequest, name)
	}
	return n, nil
}

func timeParam(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s must be an RFC 3339 time", errBadRequest, name)
	}
	return t, nil
}

// entryJSON is an entry in API replies: its seq and its canonical bytes.
type entryJSON struct {
	Seq   int64           `json:"seq"`
	Entry json.RawMessage `json:"entry"`
}

func (h *handler) search(w http.ResponseWriter, r *http.Request) {
	qv := r.URL.Query()
	q := Query{
		Principal: qv.Get("principal"), Route: qv.Get("route"), Model: qv.Get("model"),
		Kind: qv.Get("kind"), Action: qv.Get("action"), ApprovalID: qv.Get("approval_id"),
		RequestID: qv.Get("request_id"), MaskRule: qv.Get("mask_rule"), Text: qv.Get("q"),
		Desc: qv.Get("desc") == "true" || qv.Get("desc") == "1",
	}
	var err error
	var limit int64
	if q.From, err = timeParam(r, "from"); err == nil {
		if q.To, err = timeParam(r, "to"); err == nil {
			if q.Start, err = intParam(r, "start", 0); err == nil {
				if q.End, err = intParam(r, "end", 0); err == nil {
					limit, err = intParam(r, "limit", 100)
				}
			}
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	q.Limit = int(min(limit, 1000))
	recs, err := h.l.st.Search(r.Context(), q)
	if err != nil {
		writeError(w, err)
		return
	}
	out := struct {
		Entries []entryJSON `json:"entries"`
		Next    string      `json:"next,omitempty"`
	}{Entries: make([]entryJSON, len(recs))}
	for i, rec := range recs {
		out.Entries[i] = entryJSON{Seq: rec.Seq, Entry: rec.Data}
	}
	if len(recs) == q.Limit && q.Limit > 0 {
		last := recs[len(recs)-1].Seq
		next := r.URL.Query()
		if q.Desc {
			if last > 0 {
				next.Set("end", strconv.FormatInt(last, 10))
				out.Next = next.Encode()
			}
		} else {
			next.Set("start", strconv.FormatInt(last+1, 10))
			out.Next = next.Encode()
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) entry(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 0 {
		writeError(w, fmt.Errorf("%w: bad sequence number", errBadRequest))
		return
	}
	recs, err := h.l.st.ReadRecords(r.Context(), seq, seq+1)
	if err != nil {
		writeError(w, err)
		return
	}
	out := struct {
		entryJSON
		LeafHash   tlog.Hash        `json:"leaf_hash"`
		TreeSize   int64            `json:"tree_size,omitempty"`
		Checkpoint string           `json:"checkpoint,omitempty"`
		Proof      tlog.RecordProof `json:"proof,omitempty"`
		Pending    bool             `json:"pending,omitempty"`
	}{entryJSON: entryJSON{Seq: seq, Entry: recs[0].Data}, LeafHash: tlog.RecordHash(recs[0].Data)}
	cp := h.l.Latest()
	if seq < cp.Size {
		p, err := h.l.ProveEntry(r.Context(), seq, cp.Size)
		if err != nil {
			writeError(w, err)
			return
		}
		out.TreeSize, out.Checkpoint, out.Proof = cp.Size, string(cp.Note), p
	} else {
		// Not yet covered by a checkpoint (at most checkpoint_interval).
		out.Pending = true
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) consistency(w http.ResponseWriter, r *http.Request) {
	from, err := intParam(r, "from", -1)
	if err != nil {
		writeError(w, err)
		return
	}
	to, err := intParam(r, "to", h.l.Latest().Size)
	if err != nil {
		writeError(w, err)
		return
	}
	if from <= 0 || from > to || to > h.l.Latest().Size {
		writeError(w, fmt.Errorf("%w: need 0 < from <= to <= %d (latest checkpoint)", errBadRequest, h.l.Latest().Size))
		return
	}
	p, err := h.l.ProveConsistency(r.Context(), from, to)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		From  int64          `json:"from"`
		To    int64          `json:"to"`
		Proof tlog.TreeProof `json:"proof"`
	}{from, to, p})
}

type checkpointJSON struct {
	Size int64     `json:"size"`
	Hash tlog.Hash `json:"hash"`
	Time time.Time `json:"time"`
	Note string    `json:"note"`
}

func (h *handler) checkpoints(w http.ResponseWriter, r *http.Request) {
	cps, err := h.l.Checkpoints(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]checkpointJSON, len(cps))
	for i, c := range cps {
		out[i] = checkpointJSON{c.Size, c.Hash, c.Time, string(c.Note)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"checkpoints": out})
}

func (h *handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	cp := h.l.Latest()
	if cp.Note == nil {
		writeError(w, ErrNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(cp.Note)
}
