package console

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/identity"
)

// overviewDays is how many days the overview charts.
const overviewDays = 7

// series are the charted counts, each with its bar colour.
var series = []struct{ Name, Fill string }{
	{"requests", "#2b6cb0"}, {"denials", "#c53030"}, {"approvals", "#2f855a"}, {"other", "#718096"},
}

// dayCounts are one day's counts, in the order of series.
type dayCounts struct {
	Day    string
	X      int // where its label goes in the chart
	Counts [4]int64
}

// bar is one rectangle of the SVG chart (all numbers computed here, so
// the template only prints attributes).
type bar struct {
	X, Y, W, H int
	Fill, Tip  string
}

func classify(kind string) int {
	switch {
	case kind == audit.KindRequestDenied:
		return 1
	case kind == audit.KindRequestAdmitted || kind == audit.KindRequestRefused || kind == audit.KindRequestPendingApproval:
		return 0
	}
	if k, ok := audit.LookupKind(kind); ok && k.Category == audit.CategoryApproval {
		return 2
	}
	return 3
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	if c.o.Audit == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "The audit log is not available.")
		return
	}
	today := c.o.Now().UTC().Truncate(24 * time.Hour)
	days := make([]dayCounts, overviewDays)
	var maxCount int64 = 1
	for i := range days {
		from := today.AddDate(0, 0, i-overviewDays+1)
		days[i].Day, days[i].X = from.Format("01-02"), 40+i*80
		agg, err := c.o.Audit.Aggregate(r.Context(), audit.AggregateQuery{From: from, To: from.AddDate(0, 0, 1), By: []string{audit.ByKind}})
		if err != nil {
			c.log.Error("console: overview", "err", err)
			c.errorPage(w, r, p, http.StatusServiceUnavailable, "The audit log could not be read.")
			return
		}
		for _, g := range agg.Groups {
			days[i].Counts[classify(g.Kind)] += g.Count
		}
		for _, n := range days[i].Counts {
			maxCount = max(maxCount, n)
		}
	}
	const height, groupW, barW, top = 160, 80, 16, 10
	var bars []bar
	for i, d := range days {
		for s, n := range d.Counts {
			h := int(n * height / maxCount)
			bars = append(bars, bar{X: 40 + i*groupW + s*barW, Y: top + height - h, W: barW - 2, H: h, Fill: series[s].Fill,
				Tip: d.Day + " " + series[s].Name + ": " + strconv.FormatInt(n, 10)})
		}
	}
	cp := c.o.Audit.Latest()
	c.render(w, r, http.StatusOK, "overview", p, struct {
		Days       []dayCounts
		Bars       []bar
		Series     any
		Max        int64
		Width      int
		Checkpoint audit.Checkpoint
		RootHash   string
		Witness    witnessView
		Export     *exportView
	}{days, bars, series, maxCount, 40 + overviewDays*groupW, cp, cp.Hash.String(), c.witnessed(r.Context(), cp), c.exportStatus(r)})
}

// exportView is the SIEM export's state on the overview.
type exportView struct {
	export.Report
	// Err is why the status could not be read.
	Err string
}

// exportStatus reads the export status, nil when export is not
// configured.
func (c *Console) exportStatus(r *http.Request) *exportView {
	if c.o.Export == nil {
		return nil
	}
	rep, err := c.o.Export.Status(r.Context())
	if err != nil {
		c.log.Error("console: export status", "err", err)
		return &exportView{Err: "The export status could not be read."}
	}
	return &exportView{Report: rep}
}
