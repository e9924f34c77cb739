package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/report"
)

// reportRoutes serves the ISO 27001 evidence report: the same generator
// as `warden report`, over the log the gateway writes (verified in full
// for every report, so one report is generated at a time).
func reportRoutes(l *audit.Log) []Route {
	rp := reportAPI{l: l, busy: make(chan struct{}, 1)}
	return []Route{
		{Method: "GET", Path: "/v1/report", Role: Auditor, Handle: rp.get,
			Summary: "The ISO/IEC 27001 evidence report of a period, computed from the verified audit log",
			Params: []Param{
				{"from", "query", "RFC 3339 or a date: start of the period (included)"},
				{"to", "query", "RFC 3339 or a date: end of the period (excluded)"},
				{"format", "query", "json (default), html or pdf"},
				{"seed", "query", "seed of the random samples (default: random, printed in the report)"},
			},
			Reply:  "the report (application/json, text/html or application/pdf); see docs/report.md",
			Errors: []apierr.Code{apierr.BadRequest, apierr.Unavailable}},
	}
}

type reportAPI struct {
	l    *audit.Log
	busy chan struct{}
}

func parseWhen(name, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, apierr.Errorf(apierr.BadRequest, "%s=%q: want RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01)", name, s)
}

func (rp reportAPI) get(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, err := parseWhen("from", q.Get("from"))
	if err != nil {
		return err
	}
	to, err := parseWhen("to", q.Get("to"))
	if err != nil {
		return err
	}
	if !from.Before(to) {
		return apierr.New(apierr.BadRequest, "from must be before to")
	}
	var seed uint64
	if s := q.Get("seed"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil || seed == 0 {
			return apierr.Errorf(apierr.BadRequest, "seed=%q: want a positive integer", s)
		}
	}
	type renderer struct {
		ct    string
		write func(w http.ResponseWriter, rep *report.Report) error
	}
	render := map[string]renderer{
		"json": {"application/json", func(w http.ResponseWriter, rep *report.Report) error { return report.WriteJSON(w, rep) }},
		"html": {"text/html; charset=utf-8", func(w http.ResponseWriter, rep *report.Report) error { return report.WriteHTML(w, rep) }},
		"pdf":  {"application/pdf", func(w http.ResponseWriter, rep *report.Report) error { return report.WritePDF(w, rep) }},
	}
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	rd, ok := render[format]
	if !ok {
		return apierr.Errorf(apierr.BadRequest, "format=%q: want json, html or pdf", format)
	}
	select {
	case rp.busy <- struct{}{}:
		defer func() { <-rp.busy }()
	default:
		return apierr.New(apierr.Unavailable, "another report is being generated; try again when it is done")
	}
	who := "admin API"
	if p := PrincipalFrom(r.Context()); p != nil {
		who = "admin API (" + p.Subject + ")"
	}
	res, err := report.Generate(r.Context(), report.Options{Store: rp.l.Store(), Verifier: rp.l.Verifier(),
		Period: report.Period{From: from, To: to}, Seed: seed, GeneratedBy: who})
	if err != nil {
		return apierr.Wrap(apierr.Unavailable, "the report could not be generated from the audit log", err)
	}
	w.Header().Set("Content-Type", rd.ct)
	w.Header().Set("Cache-Control", "no-store")
	return rd.write(w, res.Report)
}
