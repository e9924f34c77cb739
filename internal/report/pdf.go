package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/go-pdf/fpdf"
)

// WritePDF draws the report as a PDF natively (github.com/go-pdf/fpdf; no
// browser): the cover with the per-day charts, then one section per
// control on its own page.
func WritePDF(w io.Writer, r *Report) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetMargins(15, 15, 15)
	pdf.SetAutoPageBreak(true, 15)
	pdf.SetTitle("Warden ISO/IEC 27001:2022 evidence report", true)
	pdf.SetCreator("Warden", true)
	pdf.SetCreationDate(r.Cover.GeneratedAt)
	pdf.SetModificationDate(r.Cover.GeneratedAt)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	txt := func(s string) string {
		s = strings.NewReplacer("→", "->", "≤", "<=", "≥", ">=", "×", "x").Replace(s)
		return tr(s)
	}
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(100, 100, 100)
		pdf.CellFormat(0, 5, txt(fmt.Sprintf("Warden evidence report %s - %s, log %s · page %d",
			r.Cover.Period.From.Format("2006-01-02 15:04Z"), r.Cover.Period.To.Format("2006-01-02 15:04Z"), r.Cover.Origin, pdf.PageNo())), "", 0, "C", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	})
	const width = 180.0
	h1 := func(s string) {
		pdf.SetFont("Helvetica", "B", 16)
		pdf.MultiCell(width, 8, txt(s), "", "L", false)
		pdf.Ln(1)
	}
	h2 := func(s string) {
		pdf.Ln(2)
		pdf.SetFont("Helvetica", "B", 11)
		pdf.SetTextColor(31, 78, 121)
		pdf.MultiCell(width, 6, txt(s), "", "L", false)
		pdf.SetTextColor(0, 0, 0)
	}
	para := func(size float64, s string) {
		pdf.SetFont("Helvetica", "", size)
		pdf.MultiCell(width, size*0.45, txt(s), "", "L", false)
	}
	kv := func(k, v string) {
		pdf.SetFont("Helvetica", "B", 9)
		pdf.CellFormat(42, 4.5, txt(k), "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 9)
		pdf.MultiCell(width-42, 4.5, txt(v), "", "L", false)
	}

	cv := r.Cover
	pdf.AddPage()
	h1("ISO/IEC 27001:2022 evidence report")
	para(10, fmt.Sprintf("Warden audit log %s, period %s to %s (end excluded).", cv.Origin,
		cv.Period.From.Format("2006-01-02 15:04:05Z"), cv.Period.To.Format("2006-01-02 15:04:05Z")))
	pdf.Ln(3)
	kv("Generated", cv.GeneratedAt.Format("2006-01-02 15:04:05Z")+" by "+cv.GeneratedBy)
	kv("Log origin", cv.Origin)
	entries := fmt.Sprintf("%d", cv.PeriodEntries)
	if cv.FirstSeq >= 0 {
		entries += fmt.Sprintf(" (sequence numbers %d to %d)", cv.FirstSeq, cv.LastSeq)
	}
	kv("Entries", entries+fmt.Sprintf("; computed from the log segment [%d, %d)", cv.Segment.From, cv.Segment.To))
	var cps []string
	for _, c := range cv.Checkpoints {
		s := fmt.Sprintf("size %d %s signed %s", c.Size, c.Hash, c.Time.Format("2006-01-02 15:04:05Z"))
		if len(c.Witnesses) > 0 {
			s += ", cosigned by " + strings.Join(c.Witnesses, ", ")
		}
		cps = append(cps, s)
	}
	if len(cps) == 0 {
		cps = []string{"none covers the period yet"}
	}
	cps = append(cps, fmt.Sprintf("latest of the log: size %d %s", cv.Latest.Size, cv.Latest.Hash))
	kv("Checkpoints", strings.Join(cps, "\n"))
	verdict := "PASSED: "
	if !cv.Verification.OK {
		verdict = "FAILED: "
	}
	kv("Verification", verdict+cv.Verification.Summary)
	kv("Gateway instances", orNone(strings.Join(cv.Scope.Instances, ", ")))
	var routes []string
	for _, rt := range cv.Scope.Routes {
		s := rt.Name
		if rt.Upstream != "" {
			s += " -> " + rt.Upstream
		}
		routes = append(routes, fmt.Sprintf("%s (%d requests)", s, rt.Requests))
	}
	kv("Routes", orNone(strings.Join(routes, "\n")))
	var pols []string
	for _, pv := range cv.Scope.PolicyVersions {
		pols = append(pols, fmt.Sprintf("%s: %d decisions", pv.Version, pv.Decisions))
	}
	kv("Policy versions", orNone(strings.Join(pols, "\n")))
	kv("Sample seed", fmt.Sprint(cv.Seed))
	h2("How to verify this report")
	pdf.SetFont("Courier", "", 7.5)
	for _, c := range cv.HowToVerify {
		pdf.MultiCell(width, 3.6, txt(c), "", "L", false)
	}
	h2("Per day")
	for _, c := range Charts(r) {
		drawChart(pdf, c, txt)
	}

	for _, s := range r.Sections {
		pdf.AddPage()
		h1(s.Control + " " + s.Title)
		pdf.SetFillColor(240, 243, 247)
		pdf.SetFont("Helvetica", "", 9)
		pdf.MultiCell(width, 4.2, txt("What Warden enforces. "+s.Enforces), "L", "L", true)
		h2("Figures for the period")
		for _, f := range s.Figures {
			pdf.SetFont("Helvetica", "B", 9)
			pdf.CellFormat(130, 5, txt(f.Label), "T", 0, "L", false, 0, "")
			pdf.CellFormat(50, 5, txt(figureValue(f)), "T", 1, "R", false, 0, "")
			for _, b := range byRows(f.By) {
				pdf.SetFont("Helvetica", "", 8.5)
				pdf.CellFormat(10, 4, "", "", 0, "L", false, 0, "")
				pdf.CellFormat(120, 4, txt(b.Key), "", 0, "L", false, 0, "")
				pdf.CellFormat(50, 4, fmt.Sprint(b.Value), "", 1, "R", false, 0, "")
			}
			pdf.SetFont("Courier", "", 6.5)
			pdf.SetTextColor(90, 90, 90)
			pdf.MultiCell(width, 3, txt(f.Query), "", "L", false)
			pdf.SetTextColor(0, 0, 0)
		}
		if len(s.Changes) > 0 {
			h2("Policy versions installed")
			for _, c := range s.Changes {
				what := "sources " + c.Sources + ": known by hash only"
				if c.Sources == SourcesVerified {
					what = c.PolicyDiff.String()
				}
				para(8, fmt.Sprintf("entry %d  %s  by %s  %s -> %s: %s", c.Seq, c.Time.Format("2006-01-02 15:04:05Z"), c.Actor, c.Old, c.New, what))
			}
		}
		h2(fmt.Sprintf("Exceptions (%d)", s.ExceptionsTotal))
		if len(s.Exceptions) == 0 {
			para(9, "None: no exception in the period.")
		}
		for _, e := range s.Exceptions {
			para(8, fmt.Sprintf("entry %d  %s  %s  %s", e.Seq, e.Time.Format("2006-01-02 15:04:05Z"), e.RequestID, e.What))
		}
		if s.ExceptionsTotal > int64(len(s.Exceptions)) {
			para(8, fmt.Sprintf("... and %d in all (the bundle holds every entry).", s.ExceptionsTotal))
		}
		h2(fmt.Sprintf("Sample (%d of %d, seed %d)", len(s.Sample), s.SampleOf, cv.Seed))
		if len(s.Sample) == 0 {
			para(9, "No entry to sample in the period.")
		}
		for _, smp := range s.Sample {
			para(8, fmt.Sprintf("entry %d  %s  %s  %s", smp.Seq, smp.Time.Format("2006-01-02 15:04:05Z"), smp.RequestID, smp.Summary))
			if len(smp.Proof) > 0 {
				pdf.SetFont("Courier", "", 6)
				pdf.MultiCell(width, 2.8, txt(fmt.Sprintf("inclusion proof in tree %d: %s", smp.ProofSize, strings.Join(smp.Proof, " "))), "", "L", false)
			}
		}
		if s.Limits != "" {
			h2("Limits")
			para(8.5, s.Limits)
		}
	}
	return pdf.Output(w)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// drawChart draws a Chart (laid out in a 600×160 box) scaled to the page
// width at the current position.
func drawChart(pdf *fpdf.Fpdf, c Chart, txt func(string) string) {
	const sx, sy = 180.0 / chartW, 0.14 // 180 × 22 mm: the four fit on the cover
	h := chartH * sy
	if pdf.GetY()+h+8 > 280 {
		pdf.AddPage()
	}
	x0, y0 := pdf.GetX(), pdf.GetY()
	pdf.SetFont("Helvetica", "B", 8.5)
	pdf.CellFormat(180, 4, txt(fmt.Sprintf("%s (max %d)", c.Title, c.Max)), "", 1, "L", false, 0, "")
	y0 += 4
	pdf.SetDrawColor(60, 60, 60)
	base := y0 + (chartH-chartBottom)*sy
	pdf.Line(x0+chartLeft*sx, base, x0+(chartW-10)*sx, base)
	pdf.SetFillColor(31, 78, 121)
	for _, b := range c.Bars {
		if b.H > 0 {
			pdf.Rect(x0+b.X*sx, y0+b.Y*sy, b.W*sx, b.H*sy, "F")
		}
	}
	pdf.SetFont("Helvetica", "", 6)
	pdf.Text(x0, y0+12*sy, fmt.Sprint(c.Max))
	pdf.Text(x0, base, "0")
	for _, t := range c.Ticks {
		pdf.Text(x0+t.X*sx-3, base+2.8, t.Label)
	}
	pdf.SetY(y0 + h + 3)
}
