package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/report"
)

// maxPolicyChanges bounds the history the policy page lists.
const maxPolicyChanges = 100

// policyChange is one config.changed entry about the policy.
type policyChange struct {
	Seq                                  int64
	Entry                                *audit.Entry
	Actor, Old, New, Error, Applied, Who string
	// Summary is the diff summary of an applied change whose entry
	// carries both policy texts (decision 021), else "".
	Summary string
}

// policyVersion is one version the page can diff: a version whose
// canonical text is known (from the log, or in force).
type policyVersion struct {
	Version string
	// Label says where it comes from: "in force", "installed by X at T",
	// "before entry N".
	Label string
}

// policyDiff is the comparison of two chosen versions.
type policyDiff struct {
	A, B    string
	Summary string
	// Unified is the unified diff of the indented canonical texts; it is
	// rendered as escaped text (a policy can hold any string).
	Unified string
	Problem string
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

func sha256Version(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// indentPolicy lays a canonical policy out one field per line for
// people and for a line diff.
func indentPolicy(canonical []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, canonical, "", "  "); err != nil {
		return string(canonical)
	}
	return b.String() + "\n"
}

func (c *Console) policyPage(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	if c.o.Policy == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "No policy is configured.")
		return
	}
	cur := c.o.Policy.Current()
	data := struct {
		Version, Name, File string
		Source              string
		Rules               []policy.Rule
		Changes             []policyChange
		Versions            []policyVersion
		Diff                *policyDiff
		HistoryErr          string
	}{Version: cur.Version(), Name: cur.Name(), File: c.o.Policy.Path(), Rules: cur.Rules(), Source: indentPolicy(cur.Canonical())}
	// sources maps versions to canonical texts that hash to them.
	sources := map[string][]byte{cur.Version(): cur.Canonical()}
	data.Versions = append(data.Versions, policyVersion{Version: cur.Version(), Label: "in force"})
	known := func(v string, text []byte, label string) {
		if text == nil || v == "" || sha256Version(text) != v {
			return
		}
		if _, ok := sources[v]; !ok {
			sources[v] = text
			data.Versions = append(data.Versions, policyVersion{Version: v, Label: label})
		}
	}
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
				if e.Details["what"] != "policy" || len(data.Changes) >= maxPolicyChanges {
					continue
				}
				d := e.Details
				ch := policyChange{Seq: e.Seq, Entry: e, Actor: detail(d, "actor"),
					Old: detail(d, "old_version"), New: detail(d, "new_version"), Error: detail(d, "error"), Applied: detail(d, "applied")}
				if d["applied"] == true {
					oldText, newText := report.PolicySources(e)
					known(ch.New, newText, "installed by "+ch.Actor+" at "+e.Time.UTC().Format(time.RFC3339)+" (entry "+strconv.FormatInt(e.Seq, 10)+")")
					known(ch.Old, oldText, "before entry "+strconv.FormatInt(e.Seq, 10))
					if oldText != nil && newText != nil && sha256Version(oldText) == ch.Old && sha256Version(newText) == ch.New {
						if sum, err := report.DiffPolicies(oldText, newText); err == nil {
							ch.Summary = sum.String()
						}
					}
				}
				data.Changes = append(data.Changes, ch)
			}
			if len(es) < searchPage || es[len(es)-1].Seq == 0 {
				break
			}
			end = es[len(es)-1].Seq
		}
	}
	q := r.URL.Query()
	if a, b := q.Get("a"), q.Get("b"); a != "" || b != "" {
		data.Diff = diffVersions(sources, a, b)
	}
	c.render(w, r, http.StatusOK, "policy", p, data)
}

// diffVersions compares versions a and b (a before b).
func diffVersions(sources map[string][]byte, a, b string) *policyDiff {
	d := &policyDiff{A: a, B: b}
	at, okA := sources[a]
	bt, okB := sources[b]
	switch {
	case !okA || !okB:
		d.Problem = "The log holds no policy text for one of these versions (recorded before policy texts were logged, above the size limit, or not a version of this log): it is known by its hash only."
		return d
	case a == b:
		d.Problem = "Choose two different versions."
		return d
	}
	if sum, err := report.DiffPolicies(at, bt); err == nil {
		d.Summary = sum.String()
	}
	u, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(indentPolicy(at)), B: difflib.SplitLines(indentPolicy(bt)),
		FromFile: a, ToFile: b, Context: 3,
	})
	if err != nil {
		d.Problem = "The diff could not be computed."
		return d
	}
	d.Unified = u
	return d
}
