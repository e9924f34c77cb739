package admin

import (
	"net/http"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/policy"
)

// policyRoutes serve the policy in force and its reload; with an audit
// log, also its history (every config.changed entry about the policy).
func policyRoutes(eng *policy.Engine, log *audit.Log) []Route {
	p := policyAPI{eng: eng, log: log}
	rs := []Route{
		{Method: "GET", Path: "/v1/policy", Role: Auditor, Handle: p.current,
			Summary: "The policy in force: version, file, rules and approval settings",
			Reply:   "`{\"version\",\"name\",\"file\",\"rules\":[…],\"approvals\":{…}}`"},
		{Method: "POST", Path: "/v1/policy/reload", Role: Admin, Handle: p.reload,
			Summary: "Reload the policy file now (recorded as `config.changed` with actor `admin:<subject>`)",
			Reply:   "`{\"old\",\"new\",\"changed\"}`",
			Errors:  []apierr.Code{apierr.InvalidPolicy}},
	}
	if log != nil {
		rs = append(rs, Route{Method: "GET", Path: "/v1/policy/versions", Role: Auditor, Handle: p.versions,
			Summary: "The policy's history from the audit log, newest first: every reload and failed reload",
			Params:  []Param{{"limit", "query", "1..1000, default 100"}},
			Reply:   "`{\"versions\":[{\"seq\",\"time\",\"actor\",\"old_version\",\"new_version\",\"applied\",\"error\"}]}`",
			Errors:  []apierr.Code{apierr.BadRequest, apierr.Unavailable}})
	}
	return rs
}

type policyAPI struct {
	eng *policy.Engine
	log *audit.Log
}

func (p policyAPI) current(w http.ResponseWriter, _ *http.Request) error {
	cur := p.eng.Current()
	return writeJSON(w, http.StatusOK, map[string]any{
		"version": cur.Version(), "name": cur.Name(), "file": p.eng.Path(),
		"rules": cur.Rules(), "approvals": cur.Approvals(),
	})
}

func (p policyAPI) reload(w http.ResponseWriter, r *http.Request) error {
	c, err := p.eng.Reload("admin:" + PrincipalFrom(r.Context()).Subject)
	if err != nil {
		return apierr.Wrap(apierr.InvalidPolicy, "the policy did not load; version "+c.Old+" stays in force: "+err.Error(), err)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"old": c.Old, "new": c.New, "changed": c.Changed()})
}

// versionJSON is one policy change from the audit log.
type versionJSON struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	Actor      any       `json:"actor,omitempty"`
	OldVersion any       `json:"old_version,omitempty"`
	NewVersion any       `json:"new_version,omitempty"`
	Applied    any       `json:"applied"`
	Error      any       `json:"error,omitempty"`
}

func (p policyAPI) versions(w http.ResponseWriter, r *http.Request) error {
	q := query{r: r}
	limit := q.limit(100, 1000)
	if q.err != nil {
		return q.err
	}
	out := []versionJSON{}
	var end int64
	// config.changed also records other changes (API keys): page through
	// the newest entries until limit policy changes are found.
	for len(out) < limit {
		es, err := p.log.Search(r.Context(), audit.Query{Kind: audit.KindConfigChanged, Desc: true, End: end, Limit: maxSearch})
		if err != nil {
			return auditErr(err)
		}
		for _, e := range es {
			if e.Details["what"] == "policy" && len(out) < limit {
				d := e.Details
				out = append(out, versionJSON{Seq: e.Seq, Time: e.Time, Actor: d["actor"], OldVersion: d["old_version"],
					NewVersion: d["new_version"], Applied: d["applied"], Error: d["error"]})
			}
		}
		if len(es) < maxSearch || es[len(es)-1].Seq == 0 {
			break
		}
		end = es[len(es)-1].Seq
	}
	return writeJSON(w, http.StatusOK, map[string]any{"versions": out})
}
