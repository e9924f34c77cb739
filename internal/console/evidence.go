package console

import (
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// pageSize is the number of search results per page; exportMax caps one
// CSV or JSON-lines download.
const (
	pageSize   = 50
	exportMax  = 10000
	searchPage = 1000 // the most one audit search returns
)

// searchForm is the evidence search as the form submits it.
type searchForm struct {
	From, To, Principal, Route, Model, Kind, Decision, Rule, Outcome, Text, RequestID string
	// Entity is a masking entity (EMAIL, CREDIT_CARD, …): entries with a
	// masking action of it. Approval is "involved" (an approval or grant
	// took part), "none", or "" (either); ApprovalID selects one approval
	// request or grant.
	Entity, Approval, ApprovalID string
	Start                        int64
}

// approvalChoices are the values of the approval filter ("" is any).
var approvalChoices = []string{"", "involved", "none"}

func parseSearch(q url.Values) (searchForm, audit.Query, error) {
	f := searchForm{
		From: q.Get("from"), To: q.Get("to"), Principal: q.Get("principal"), Route: q.Get("route"), Model: q.Get("model"),
		Kind: q.Get("kind"), Decision: q.Get("decision"), Rule: q.Get("rule"), Outcome: q.Get("outcome"), Text: q.Get("q"),
		RequestID: q.Get("request_id"), Entity: q.Get("entity"), Approval: q.Get("approval"), ApprovalID: q.Get("approval_id"),
	}
	aq := audit.Query{Principal: f.Principal, Route: f.Route, Model: f.Model, Kind: f.Kind, Action: f.Decision, Text: f.Text,
		RequestID: f.RequestID, Desc: true}
	if !slices.Contains(approvalChoices, f.Approval) {
		return f, aq, errors.New("approval must be involved, none or empty")
	}
	var err error
	if aq.From, err = formTime(f.From); err != nil {
		return f, aq, errors.New("from: " + err.Error())
	}
	if aq.To, err = formTime(f.To); err != nil {
		return f, aq, errors.New("to: " + err.Error())
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return f, aq, errors.New("before must be a positive sequence number")
		}
		aq.End, f.Start = n, n
	}
	return f, aq, nil
}

// formTime accepts RFC 3339, a datetime-local value or a date (UTC).
func formTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want a date (2006-01-02), date and time, or RFC 3339")
}

// keep applies the filters the search index has no column for (decision
// rule, outcome, masking entity, approval) to a page of results.
func (f searchForm) keep(e *audit.Entry) bool {
	if f.Rule != "" && (e.Decision == nil || e.Decision.Rule != f.Rule) {
		return false
	}
	if f.Outcome != "" && e.Outcome != f.Outcome {
		return false
	}
	if f.Entity != "" && !slices.ContainsFunc(e.Masking, func(m audit.MaskAction) bool { return strings.EqualFold(m.Entity, f.Entity) }) {
		return false
	}
	involved := e.ApprovalID != "" || e.GrantID != ""
	switch {
	case f.Approval == "involved" && !involved, f.Approval == "none" && involved:
		return false
	case f.ApprovalID != "" && e.ApprovalID != f.ApprovalID && e.GrantID != f.ApprovalID:
		return false
	}
	return true
}

// row is one search result as the page shows it.
type row struct {
	Seq                                                      int64
	Time                                                     time.Time
	Kind, Principal, Route, Model, Action, Rule, Outcome, ID string
	Status                                                   int
}

func toRow(e *audit.Entry) row {
	r := row{Seq: e.Seq, Time: e.Time, Kind: e.Kind, Route: e.Route, Model: e.Model, Outcome: e.Outcome, Status: e.Status, ID: e.RequestID}
	if e.Principal != nil {
		r.Principal = e.Principal.Subject
	}
	if e.Decision != nil {
		r.Action, r.Rule = e.Decision.Action, e.Decision.Rule
	}
	return r
}

// find runs the search and the page-level filters, reading at most limit
// entries from the index.
func (c *Console) find(r *http.Request, f searchForm, aq audit.Query, limit int) (rows []*audit.Entry, next int64, err error) {
	aq.Limit = limit
	es, err := c.o.Audit.Search(r.Context(), aq)
	if err != nil {
		return nil, 0, err
	}
	for _, e := range es {
		if f.keep(e) {
			rows = append(rows, e)
		}
	}
	if len(es) == limit && es[len(es)-1].Seq > 0 {
		next = es[len(es)-1].Seq
	}
	return rows, next, nil
}

func (c *Console) search(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	if c.o.Audit == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "The audit log is not available.")
		return
	}
	f, aq, err := parseSearch(r.URL.Query())
	data := struct {
		Form         searchForm
		Rows         []row
		Searched     bool
		Err          string
		Next, Export string
		ExportJSONL  string
		Kinds        []audit.KindInfo
	}{Form: f, Kinds: audit.Kinds()}
	if err != nil {
		data.Err = err.Error()
		c.render(w, r, http.StatusBadRequest, "search", p, data)
		return
	}
	data.Searched = r.URL.RawQuery != ""
	if data.Searched {
		es, next, err := c.find(r, f, aq, pageSize)
		if err != nil {
			c.log.Error("console: search", "err", err)
			c.errorPage(w, r, p, http.StatusServiceUnavailable, "The search index is unavailable.")
			return
		}
		for _, e := range es {
			data.Rows = append(data.Rows, toRow(e))
		}
		q := r.URL.Query()
		q.Del("before")
		data.Export = "/ui/search.csv?" + q.Encode()
		data.ExportJSONL = "/ui/search.jsonl?" + q.Encode()
		if next > 0 {
			q.Set("before", strconv.FormatInt(next, 10))
			data.Next = "/ui/search?" + q.Encode()
		}
	}
	c.render(w, r, http.StatusOK, "search", p, data)
}

// exportAll collects up to exportMax matching entries, a page of
// searchPage at a time, before anything is written: a failure answers
// an error page, never a truncated file that looks complete.
func (c *Console) exportAll(w http.ResponseWriter, r *http.Request, p *identity.Principal) ([]*audit.Entry, bool) {
	if c.o.Audit == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "The audit log is not available.")
		return nil, false
	}
	f, aq, err := parseSearch(r.URL.Query())
	if err != nil {
		c.errorPage(w, r, p, http.StatusBadRequest, err.Error())
		return nil, false
	}
	var all []*audit.Entry
	for len(all) < exportMax {
		es, next, err := c.find(r, f, aq, searchPage)
		if err != nil {
			c.log.Error("console: export", "err", err)
			c.errorPage(w, r, p, http.StatusServiceUnavailable, "The search index is unavailable.")
			return nil, false
		}
		all = append(all, es...)
		if next == 0 {
			break
		}
		aq.End = next
	}
	return all[:min(len(all), exportMax)], true
}

func (c *Console) exportCSV(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	es, ok := c.exportAll(w, r, p)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="warden-evidence.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"seq", "time", "kind", "principal", "route", "model", "decision", "rule", "outcome", "status", "request_id"})
	for _, e := range es {
		x := toRow(e)
		_ = cw.Write([]string{strconv.FormatInt(x.Seq, 10), x.Time.UTC().Format(time.RFC3339Nano), x.Kind, csvSafe(x.Principal),
			csvSafe(x.Route), csvSafe(x.Model), x.Action, csvSafe(x.Rule), x.Outcome, strconv.Itoa(x.Status), csvSafe(x.ID)})
	}
	cw.Flush()
}

// csvSafe defuses spreadsheet formulas in attacker-controlled cells
// (OWASP CSV injection): a leading = + - @ tab or CR gets a quote.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (c *Console) exportJSONL(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	es, ok := c.exportAll(w, r, p)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="warden-evidence.jsonl"`)
	for _, e := range es {
		b, err := audit.Marshal(e) // the stored canonical bytes: hash them to check a proof
		if err != nil {
			c.log.Error("console: export", "seq", e.Seq, "err", err)
			return
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return
		}
	}
}
