package admin

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
)

// countRoutes serve counts over the audit log and the catalogue of entry
// kinds. Counts are over what a checkpoint signs; indexed entries are counted
// from the search index's count blocks (derived, checked by warden index
// check; decision 024), and recount=true counts from the log's entries
// alone.
func countRoutes(l *audit.Log) []Route {
	a := auditAPI{l}
	return []Route{
		{Method: "GET", Path: "/v1/audit/counts", Role: Auditor, Handle: a.counts,
			Summary: "Count audit entries in a time range, grouped (over the latest checkpoint; indexed entries from the index's count blocks unless recount=true)",
			Params: []Param{
				{"from", "query", "RFC 3339: entries at or after (default: the first)"},
				{"to", "query", "RFC 3339: entries before (default: the last)"},
				{"by", "query", "comma-separated dimensions: " + strings.Join(audit.AggregateDimensions, ", ") + " (default: none, the total)"},
				{"kind", "query", "count only entries of this kind"},
				{"recount", "query", "true: count from the log's entries alone, not the index's count blocks (slower; checks a count against the evidence)"},
			},
			Reply:  "`{\"total\":N,\"groups\":[{\"kind\",\"outcome\",…,\"count\"}],\"scanned\":[from,to],\"tree_size\":N,\"checkpoint\":\"<signed note>\"}`",
			Errors: []apierr.Code{apierr.BadRequest, apierr.Unavailable}},
		{Method: "GET", Path: "/v1/audit/kinds", Role: Auditor, Handle: kinds,
			Summary: "The catalogue of audit entry kinds: category, description, whether terminal",
			Reply:   "`{\"kinds\":[{\"kind\",\"category\",\"terminal\",\"description\",\"writer\"}]}`"},
	}
}

func (a auditAPI) counts(w http.ResponseWriter, r *http.Request) error {
	q := query{r: r}
	aq := audit.AggregateQuery{From: q.time("from"), To: q.time("to"), Kind: q.str("kind"), Recount: q.bool("recount")}
	if q.err != nil {
		return q.err
	}
	if by := q.str("by"); by != "" {
		for _, d := range strings.Split(by, ",") {
			d = strings.TrimSpace(d)
			if !slices.Contains(audit.AggregateDimensions, d) {
				return apierr.Errorf(apierr.BadRequest, "unknown dimension %q in by (want %s)", d, strings.Join(audit.AggregateDimensions, ", "))
			}
			if !slices.Contains(aq.By, d) {
				aq.By = append(aq.By, d)
			}
		}
	}
	if !aq.From.IsZero() && !aq.To.IsZero() && !aq.From.Before(aq.To) {
		return apierr.New(apierr.BadRequest, "from must be before to")
	}
	res, err := a.l.Aggregate(r.Context(), aq)
	if err != nil {
		if errors.Is(err, audit.ErrClosed) || errors.Is(err, audit.ErrLogClosed) {
			return auditErr(err)
		}
		return apierr.Wrap(apierr.Unavailable, "the audit log could not be read", err)
	}
	return writeJSON(w, http.StatusOK, struct {
		audit.Aggregate
		TreeSize   int64  `json:"tree_size"`
		Checkpoint string `json:"checkpoint,omitempty"`
	}{res, res.Checkpoint.Size, string(res.Checkpoint.Note)})
}

func kinds(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{"kinds": audit.Kinds()})
}
