package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
)

// maxSearch caps one page of audit search results.
const maxSearch = 1000

// auditRoutes serves the audit log: search, entries with inclusion
// proofs, consistency proofs and checkpoints. Entries are returned as
// their canonical bytes, so a client can hash them and check the proofs
// itself (audit.CheckEntryProof, or any RFC 6962 implementation).
func auditRoutes(l *audit.Log) []Route {
	a := auditAPI{l}
	return []Route{
		{Method: "GET", Path: "/v1/audit/entries", Role: Auditor, Handle: a.search,
			Summary: "Search the audit log, one page at a time",
			Params: []Param{
				{"principal", "query", "the caller's subject"},
				{"kind", "query", "entry kind, e.g. request.denied"},
				{"route", "query", "route name"}, {"model", "query", "model"},
				{"action", "query", "policy action: allow, deny, require_approval"},
				{"request_id", "query", "gateway request id"}, {"approval_id", "query", "approval request id"},
				{"mask_rule", "query", "entries where this masking rule acted"},
				{"q", "query", "full text over the redacted parameters, decision reason and details (words ANDed)"},
				{"from", "query", "RFC 3339: entries at or after"}, {"to", "query", "RFC 3339: entries before"},
				{"start", "query", "first sequence number (paging)"}, {"end", "query", "sequence number to stop before (paging, with desc)"},
				{"desc", "query", "true: newest first"},
				{"limit", "query", "page size, default 100, at most 1000"},
			},
			Reply:  "`{\"entries\":[{\"seq\":N,\"entry\":{…canonical entry…}}],\"next\":\"<query string of the next page>\"}`",
			Errors: []apierr.Code{apierr.BadRequest, apierr.Unavailable}},
		{Method: "GET", Path: "/v1/audit/entries/{seq}", Role: Auditor, Handle: a.entry,
			Summary: "One entry with its inclusion proof against the latest checkpoint",
			Params:  []Param{{"seq", "path", "sequence number"}},
			Reply:   "`{\"seq\",\"entry\",\"leaf_hash\",\"tree_size\",\"checkpoint\",\"proof\"}`, or `\"pending\":true` before a checkpoint covers it",
			Errors:  []apierr.Code{apierr.BadRequest, apierr.NotFound, apierr.Unavailable}},
		{Method: "GET", Path: "/v1/audit/consistency", Role: Auditor, Handle: a.consistency,
			Summary: "Consistency proof between two tree sizes",
			Params:  []Param{{"from", "query", "older tree size (> 0)"}, {"to", "query", "newer tree size, default the latest checkpoint"}},
			Reply:   "`{\"from\",\"to\",\"proof\":[\"<base64 hash>\",…]}`",
			Errors:  []apierr.Code{apierr.BadRequest, apierr.Unavailable}},
		{Method: "GET", Path: "/v1/audit/checkpoints", Role: Auditor, Handle: a.checkpoints,
			Summary: "Every signed checkpoint, by ascending size",
			Reply:   "`{\"checkpoints\":[{\"size\",\"hash\",\"time\",\"note\"}]}`",
			Errors:  []apierr.Code{apierr.Unavailable}},
		{Method: "GET", Path: "/v1/audit/checkpoint", Role: Auditor, Handle: a.checkpoint,
			Summary: "The latest signed checkpoint (text/plain, C2SP signed note)",
			Reply:   "the signed note",
			Errors:  []apierr.Code{apierr.NotFound}},
	}
}

type auditAPI struct{ l *audit.Log }

// auditErr classifies the audit package's errors.
func auditErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, audit.ErrNotFound):
		return apierr.Wrap(apierr.NotFound, "no such entry", err)
	case errors.Is(err, audit.ErrClosed), errors.Is(err, audit.ErrLogClosed):
		return apierr.Wrap(apierr.Unavailable, "the audit store is unavailable", err)
	}
	return err
}

// entryJSON is an entry in replies: its seq and canonical bytes.
type entryJSON struct {
	Seq   int64           `json:"seq"`
	Entry json.RawMessage `json:"entry"`
}

func (a auditAPI) search(w http.ResponseWriter, r *http.Request) error {
	q := query{r: r}
	s := audit.Query{
		Principal: q.str("principal"), Route: q.str("route"), Model: q.str("model"), Kind: q.str("kind"),
		Action: q.str("action"), ApprovalID: q.str("approval_id"), RequestID: q.str("request_id"),
		MaskRule: q.str("mask_rule"), Text: q.str("q"),
		From: q.time("from"), To: q.time("to"), Start: q.int("start", 0), End: q.int("end", 0), Desc: q.bool("desc"),
	}
	limit := q.int("limit", 100)
	if q.err != nil {
		return q.err
	}
	if limit == 0 {
		limit = 100
	}
	s.Limit = int(min(limit, maxSearch))
	entries, err := a.l.Search(r.Context(), s)
	if err != nil {
		return auditErr(err)
	}
	out := struct {
		Entries []entryJSON `json:"entries"`
		Next    string      `json:"next,omitempty"`
	}{Entries: make([]entryJSON, len(entries))}
	for i, e := range entries {
		b, err := audit.Marshal(e) // ParseEntry checked these are the stored bytes
		if err != nil {
			return err
		}
		out.Entries[i] = entryJSON{Seq: e.Seq, Entry: b}
	}
	if n := len(entries); n == s.Limit && n > 0 {
		last := entries[n-1].Seq
		next := r.URL.Query()
		switch {
		case !s.Desc:
			next.Set("start", strconv.FormatInt(last+1, 10))
			out.Next = next.Encode()
		case last > 0:
			next.Set("end", strconv.FormatInt(last, 10))
			out.Next = next.Encode()
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a auditAPI) entry(w http.ResponseWriter, r *http.Request) error {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 0 {
		return apierr.New(apierr.BadRequest, "the sequence number must be a non-negative integer")
	}
	_, data, err := a.l.Entry(r.Context(), seq)
	if err != nil {
		if errors.Is(err, audit.ErrNotFound) {
			return apierr.Wrap(apierr.NotFound, "no entry "+strconv.FormatInt(seq, 10), err)
		}
		return auditErr(err)
	}
	out := struct {
		entryJSON
		LeafHash   tlog.Hash        `json:"leaf_hash"`
		TreeSize   int64            `json:"tree_size,omitempty"`
		Checkpoint string           `json:"checkpoint,omitempty"`
		Proof      tlog.RecordProof `json:"proof,omitempty"`
		Pending    bool             `json:"pending,omitempty"`
	}{entryJSON: entryJSON{Seq: seq, Entry: data}, LeafHash: tlog.RecordHash(data)}
	cp := a.l.Latest()
	if seq < cp.Size {
		p, err := a.l.ProveEntry(r.Context(), seq, cp.Size)
		if err != nil {
			return auditErr(err)
		}
		out.TreeSize, out.Checkpoint, out.Proof = cp.Size, string(cp.Note), p
	} else {
		// Not yet covered by a checkpoint (at most checkpoint_interval).
		out.Pending = true
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a auditAPI) consistency(w http.ResponseWriter, r *http.Request) error {
	latest := a.l.Latest().Size
	q := query{r: r}
	from, to := q.int("from", 0), q.int("to", latest)
	if q.err != nil {
		return q.err
	}
	if from <= 0 || from > to || to > latest {
		return apierr.Errorf(apierr.BadRequest, "need 0 < from <= to <= %d (the latest checkpoint)", latest)
	}
	p, err := a.l.ProveConsistency(r.Context(), from, to)
	if err != nil {
		return auditErr(err)
	}
	return writeJSON(w, http.StatusOK, struct {
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

func (a auditAPI) checkpoints(w http.ResponseWriter, r *http.Request) error {
	cps, err := a.l.Checkpoints(r.Context())
	if err != nil {
		return auditErr(err)
	}
	out := make([]checkpointJSON, len(cps))
	for i, c := range cps {
		out[i] = checkpointJSON{c.Size, c.Hash, c.Time, string(c.Note)}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"checkpoints": out})
}

func (a auditAPI) checkpoint(w http.ResponseWriter, _ *http.Request) error {
	cp := a.l.Latest()
	if cp.Note == nil {
		return apierr.New(apierr.NotFound, "no checkpoint has been signed yet")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(cp.Note)
	return nil
}
