package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var htmlTemplate string

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
	"date":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") },
	"by":    byRows,
	"value": figureValue,
	"short": func(s string) string { return shorten(s, 24) },
}).Parse(htmlTemplate))

// WriteJSON writes the report as indented JSON (the reference rendering).
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// WriteHTML writes the report as one self-contained, printable HTML page
// with inline SVG charts (no script, no external resource).
func WriteHTML(w io.Writer, r *Report) error {
	return htmlTmpl.Execute(w, struct {
		R      *Report
		Charts []Chart
	}{r, Charts(r)})
}

// byRow is one key of a figure's breakdown.
type byRow struct {
	Key   string
	Value int64
}

// byRows sorts a breakdown by descending value, then key.
func byRows(m map[string]int64) []byRow {
	out := make([]byRow, 0, len(m))
	for k, v := range m {
		out = append(out, byRow{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Value != out[j].Value {
			return out[i].Value > out[j].Value
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// figureValue is a figure's value as shown (with its unit).
func figureValue(f Figure) string {
	if f.Unit == "ms" {
		return fmt.Sprintf("%d ms (%s)", f.Value, (time.Duration(f.Value) * time.Millisecond).Round(time.Second))
	}
	return fmt.Sprint(f.Value)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Chart is a per-day bar chart, laid out for SVG and PDF alike: the
// coordinates are in a 600×160 box.
type Chart struct {
	Title string
	Max   int64
	Bars  []Bar
	// Ticks label the x axis (a subset of days when there are many).
	Ticks []Bar
}

// Bar is one day's bar.
type Bar struct {
	X, Y, W, H float64
	Label      string
	Value      int64
}

// Chart geometry.
const (
	chartW, chartH   = 600.0, 160.0
	chartLeft        = 40.0
	chartBottom      = 20.0
	chartPlotH       = chartH - chartBottom - 10
	chartPlotW       = chartW - chartLeft - 10
	maxTickLabels    = 10
	chartSeriesCount = 4
)

// Charts lays out the four per-day charts: requests, denials, approvals
// requested and masking actions.
func Charts(r *Report) []Chart {
	series := []struct {
		title string
		get   func(Day) int64
	}{
		{"Requests admitted per day", func(d Day) int64 { return d.Requests }},
		{"Denials per day", func(d Day) int64 { return d.Denials }},
		{"Approvals requested per day", func(d Day) int64 { return d.Approvals }},
		{"Masking actions per day", func(d Day) int64 { return d.Masking }},
	}
	days := fullDays(r)
	out := make([]Chart, 0, chartSeriesCount)
	for _, s := range series {
		c := Chart{Title: s.title}
		for _, d := range days {
			c.Max = max(c.Max, s.get(d))
		}
		n := float64(max(len(days), 1))
		slot := chartPlotW / n
		step := (len(days) + maxTickLabels - 1) / maxTickLabels
		for i, d := range days {
			v := s.get(d)
			h := 0.0
			if c.Max > 0 {
				h = chartPlotH * float64(v) / float64(c.Max)
			}
			b := Bar{X: chartLeft + float64(i)*slot + slot*0.1, W: slot * 0.8, H: h, Y: 10 + chartPlotH - h, Label: d.Date, Value: v}
			c.Bars = append(c.Bars, b)
			if step > 0 && i%step == 0 {
				c.Ticks = append(c.Ticks, Bar{X: b.X + b.W/2, Y: chartH - 5, Label: strings.TrimPrefix(d.Date[5:], "0")})
			}
		}
		out = append(out, c)
	}
	return out
}

// fullDays is the report's days with the period's empty days filled in
// (at most 400 days, so a long period still draws).
func fullDays(r *Report) []Day {
	have := map[string]Day{}
	for _, d := range r.Daily {
		have[d.Date] = d
	}
	var out []Day
	from := r.Cover.Period.From.UTC().Truncate(24 * time.Hour)
	for t := from; t.Before(r.Cover.Period.To) && len(out) < 400; t = t.Add(24 * time.Hour) {
		k := t.Format(time.DateOnly)
		d, ok := have[k]
		if !ok {
			d = Day{Date: k}
		}
		out = append(out, d)
	}
	return out
}
