package console

import (
	"net/http"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// maxPolicyChanges bounds the history the policy page lists.
const maxPolicyChanges = 100

// policyChange is one config.changed entry about the policy.
type policyChange struct {
	Seq                                  int64
	Entry                                *audit.Entry
	Actor, Old, New, Error, Applied, Who string
}

func detail(d map[string]any, k string) string {
	switch v := d[k].(type) {
	case string:
		return v
	case bool:
		if v {
			return "yes"
		}
		return "no"
	}
	return ""
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	if c.o.Policy == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "No policy is configured.")
		return
	}
	cur := c.o.Policy.Current()
	data := struct {
		Version, Name, File string
		Rules               []policy.Rule
		Changes             []policyChange
		HistoryErr          string
	}{Version: cur.Version(), Name: cur.Name(), File: c.o.Policy.Path(), Rules: cur.Rules()}
	if c.o.Audit != nil {
		var end int64
		// config.changed also records other changes (API keys): page
		// through the newest until enough policy changes are found.
		for len(data.Changes) < maxPolicyChanges {
			es, err := c.o.Audit.Search(r.Context(), audit.Query{Kind: audit.KindConfigChanged, Desc: true, End: end, Limit: searchPage})
			if err != nil {
				data.HistoryErr = "The history is unavailable: the search index could not be read."
				break
			}
			for _, e := range es {
				if e.Details["what"] == "policy" && len(data.Changes) < maxPolicyChanges {
					d := e.Details
					data.Changes = append(data.Changes, policyChange{Seq: e.Seq, Entry: e, Actor: detail(d, "actor"),
						Old: detail(d, "old_version"), New: detail(d, "new_version"), Error: detail(d, "error"), Applied: detail(d, "applied")})
				}
			}
			if len(es) < searchPage || es[len(es)-1].Seq == 0 {
				break
			}
			end = es[len(es)-1].Seq
		}
	}
	c.render(w, r, http.StatusOK, "policy", p, data)
}
