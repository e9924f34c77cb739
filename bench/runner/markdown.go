package runner

import (
	"fmt"
	"strings"

	"github.com/wardenhq/warden/bench/configs"
)

// refStage is the Warden target the acceptance checks judge: warden-full
// when it ran; checks on it are "not measured" otherwise.
const refStage = "warden-full"

// exportStage is warden-full plus SIEM export, judged against refStage in
// the same run.
const exportStage = "warden-full+export"

func findRow(rows []Row, wl, target string) *Row {
	for i := range rows {
		if rows[i].Workload == wl && rows[i].Target == target {
			return &rows[i]
		}
	}
	return nil
}

// lagLimit is the open-loop send lag (p99) above which the generator
// itself was too late for the row's latencies to mean much.
const lagLimit = 5.0 // ms

// disturbed names why a row's figures are not trustworthy ("" if they are).
func (r *Row) disturbed() string {
	var why []string
	if r.OtherCores > noisyCores {
		why = append(why, fmt.Sprintf("other load %.2f cores", r.OtherCores))
	}
	if r.Workload == "chat-open" && r.SendLagP99 > lagLimit {
		why = append(why, fmt.Sprintf("generator late by %.1f ms (p99)", r.SendLagP99))
	}
	if len(why) == 0 {
		return ""
	}
	return r.Target + ": " + strings.Join(why, ", ")
}

func (s *StreamRow) disturbed() string {
	if s.OtherCores > noisyCores {
		return fmt.Sprintf("%s: other load %.2f cores", s.Target, s.OtherCores)
	}
	return ""
}

// judge turns a comparison into a verdict; when any row it rests on was
// disturbed, the verdict is inconclusive and says which way it leaned.
func judge(ok bool, disturbed ...string) string {
	v := "missed"
	if ok {
		v = "met"
	}
	var why []string
	for _, d := range disturbed {
		if d != "" {
			why = append(why, d)
		}
	}
	if len(why) > 0 {
		return fmt.Sprintf("inconclusive, would be %s (disturbed: %s)", v, strings.Join(why, "; "))
	}
	return v
}

func checks(rep *Report) []Check {
	var out []Check
	verdict := func(ok bool) string { return judge(ok) }
	for _, n := range rep.Settings.Conns {
		wl := fmt.Sprintf("chat-c%d", n)
		c := Check{Name: fmt.Sprintf("req/s ≥ 0.8× go-floor at %d connections", n), Target: refStage}
		r, f := findRow(rep.Closed, wl, refStage), findRow(rep.Closed, wl, "go-floor")
		if r != nil && f != nil && r.RatioFloor > 0 {
			c.Measured = fmt.Sprintf("%.0f req/s = %.2f× floor", r.RPS, r.RatioFloor)
			c.Verdict = judge(r.RatioFloor >= 0.8 && r.Valid, r.disturbed(), f.disturbed())
			if r.RatioFloor < 0.8 {
				c.Measured += fmt.Sprintf(" (short by %.0f%% of the floor)", (0.8-r.RatioFloor)*100)
			}
		} else {
			c.Verdict, c.Measured = "not measured", "warden-full or go-floor not available"
		}
		out = append(out, c)
	}
	if n := maxConns(rep.Settings.Conns); n > 0 {
		wl := fmt.Sprintf("chat-c%d", n)
		c := Check{Name: fmt.Sprintf("req/s within 10%% of warden-full at %d connections (export: file + NATS sinks)", n), Target: exportStage}
		x, f := findRow(rep.Closed, wl, exportStage), findRow(rep.Closed, wl, refStage)
		if x != nil && f != nil && f.RPS > 0 {
			r := x.RPS / f.RPS
			c.Measured = fmt.Sprintf("%.0f vs %.0f req/s = %.2f× warden-full", x.RPS, f.RPS, r)
			if l := x.ExportLag; l != nil {
				c.Measured += fmt.Sprintf("; export lag when the load stopped: %.0f entries, %.2f s (catch-up throttle %.1f s in total)", l.Entries, l.Seconds, l.Throttled)
			}
			if x.SinkCPUPer1k > 0 {
				c.Measured += fmt.Sprintf("; the NATS server on this machine used %.0f CPU-µs per request (not Warden's, but on the same cores; left out of other load)", x.SinkCPUPer1k*1000)
			}
			c.Verdict = judge(r >= 0.9 && x.Valid, x.disturbed(), f.disturbed())
		} else {
			c.Verdict, c.Measured = "not measured", exportStage+" or warden-full not available"
		}
		out = append(out, c)
	}
	{
		c := Check{Name: fmt.Sprintf("added p99 over direct < 1 ms at %.0f req/s (open loop)", rep.OpenRate), Target: refStage}
		r, d := findRow(rep.Open, "chat-open", refStage), findRow(rep.Open, "chat-open", "direct")
		if r != nil && d != nil {
			c.Measured = fmt.Sprintf("p99 %.2f ms vs direct %.2f ms: added %.2f ms", r.P99, d.P99, r.AddedP99)
			c.Verdict = judge(r.AddedP99 < 1 && r.Valid, r.disturbed(), d.disturbed())
		} else {
			c.Verdict, c.Measured = "not measured", "warden-full not available"
		}
		out = append(out, c)
	}
	var direct *StreamRow
	for i := range rep.Streams {
		if rep.Streams[i].Target == "direct" {
			direct = &rep.Streams[i]
		}
	}
	for _, name := range []string{"warden-masking", refStage} {
		c := Check{Name: "masked streams add < 1 ms to time to first token (p50)", Target: name}
		found := false
		for i := range rep.Streams {
			if s := &rep.Streams[i]; s.Target == name && direct != nil {
				found = true
				c.Measured = fmt.Sprintf("TTFT p50 %+.2f ms, p99 %+.2f ms (TTFB p50 %+.2f ms)", s.TTFTAddedP50, s.TTFTAddedP99, s.TTFBAddedP50)
				c.Verdict = judge(s.TTFTAddedP50 < 1 && s.Valid, s.disturbed(), direct.disturbed())
			}
		}
		if !found {
			c.Verdict, c.Measured = "not measured", name+" not available"
		}
		out = append(out, c)
	}
	out = append(out, recordingChecks(rep, direct)...)
	{
		c := Check{Name: fmt.Sprintf("0 truncated streams at %d concurrent streams", rep.Settings.StreamConns), Target: "every target"}
		var parts []string
		total := uint64(0)
		for _, s := range rep.Streams {
			parts = append(parts, fmt.Sprintf("%s %d/%d", s.Target, s.Truncated, s.Completed+s.Truncated))
			total += s.Truncated
		}
		c.Measured = strings.Join(parts, ", ")
		c.Verdict = verdict(total == 0 && len(rep.Streams) > 0)
		out = append(out, c)
	}
	{
		c := Check{Name: fmt.Sprintf("quiet machine (other processes used ≤ %.2f cores during every measurement)", noisyCores), Target: "every target"}
		var noisy []string
		worst := 0.0
		for _, r := range append(append([]Row{}, rep.Closed...), rep.Open...) {
			if r.OtherCores > noisyCores {
				noisy = append(noisy, r.Workload+"/"+r.Target)
			}
			worst = max(worst, r.OtherCores)
		}
		for _, s := range rep.Streams {
			if s.OtherCores > noisyCores {
				noisy = append(noisy, "streams/"+s.Target)
			}
			worst = max(worst, s.OtherCores)
		}
		c.Verdict = verdict(len(noisy) == 0)
		c.Measured = fmt.Sprintf("worst %.2f cores", worst)
		if len(noisy) > 0 {
			c.Measured += fmt.Sprintf("; disturbed: %s — re-run on a quiet machine before trusting these", strings.Join(noisy, ", "))
		}
		out = append(out, c)
	}
	{
		c := Check{Name: "every measurement valid (no non-2xx, no transport errors)", Target: "every target"}
		var bad []string
		for _, r := range append(append([]Row{}, rep.Closed...), rep.Open...) {
			if !r.Valid {
				bad = append(bad, r.Workload+"/"+r.Target)
			}
		}
		for _, s := range rep.Streams {
			if !s.Valid {
				bad = append(bad, "streams/"+s.Target)
			}
		}
		c.Verdict = verdict(len(bad) == 0)
		c.Measured = "all valid"
		if len(bad) > 0 {
			c.Measured = "INVALID: " + strings.Join(bad, ", ")
		}
		out = append(out, c)
	}
	return out
}

func maxConns(cs []int) int {
	m := 0
	for _, c := range cs {
		m = max(m, c)
	}
	return m
}

func ratio(x float64) string {
	if x <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

func cpu(x float64) string {
	if x < 0 {
		return "–"
	}
	return fmt.Sprintf("%.3f", x)
}

// noisyCores is the other-process load above which a measurement is
// flagged as disturbed.
const noisyCores = 0.25

func load(x float64) string {
	if x > noisyCores {
		return fmt.Sprintf("**%.2f**", x)
	}
	return fmt.Sprintf("%.2f", x)
}

func signed(x float64) string { return fmt.Sprintf("%+.2f", x) }

func validity(ok bool, first string) string {
	if ok {
		return "yes"
	}
	if first != "" {
		return "**INVALID** (" + mdEscape(oneLine(first)) + ")"
	}
	return "**INVALID**"
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// Markdown renders the report as a markdown document.
func (rep *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Warden benchmark — %s mode, %s\n\n", rep.Mode, rep.Started.Format("2006-01-02 15:04 UTC"))
	w("```\n%s\n```\n\n", rep.Command)
	w("Machine: %d CPUs, %s, Linux %s, commit %s. Load generator, upstream and proxy share the machine; compare ratios within this run, not absolute numbers across runs.\n\n",
		rep.Machine.CPUs, rep.Machine.GoVersion, rep.Machine.Kernel, rep.Machine.Commit)
	if rep.Machine.LoadAvg != "" {
		w("Load average at the end of the run (1, 5, 15 min): %s on %d CPUs.\n\n", rep.Machine.LoadAvg, rep.Machine.CPUs)
	}
	s := rep.Settings
	w("Settings: %d repetition(s) interleaved across targets, %.1f s per measurement after %.1f s warm-up on fresh connections. Request: %s. Req/s is the median over repetitions; percentiles are over every request of every repetition.\n\n",
		s.Reps, s.DurationSec, s.WarmupSec, s.Request)

	w("## Targets\n\n| target | what | status | peak RSS |\n|---|---|---|---|\n")
	for _, t := range rep.Targets {
		st := "measured"
		if !t.Available() {
			st = mdEscape(oneLine(t.Unavailable))
		}
		rss := "–"
		if t.PeakRSS > 0 {
			rss = fmt.Sprintf("%.1f MiB", float64(t.PeakRSS)/(1<<20))
		}
		w("| %s | %s | %s | %s |\n", t.Name, mdEscape(t.Summary), st, rss)
	}
	w("\n")

	for _, n := range s.Conns {
		wl := fmt.Sprintf("chat-c%d", n)
		w("## Closed loop, %d connections (1 KB chat completion)\n\n", n)
		w("| target | req/s | × direct | × floor | p50 ms | p90 ms | p99 ms | p99.9 ms | non-2xx / errors | proxy CPU s per 1k req | generator / upstream CPU s per 1k | other load (cores) | valid |\n")
		w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		for _, r := range rep.Closed {
			if r.Workload != wl {
				continue
			}
			w("| %s | %.0f | %s | %s | %.2f | %.2f | %.2f | %.2f | %d / %d | %s | %s / %s | %s | %s |\n",
				r.Target, r.RPS, ratio(r.RatioDirect), ratio(r.RatioFloor), r.P50, r.P90, r.P99, r.P999,
				r.Non2xx, r.Errors, cpu(r.CPUPer1k), cpu(r.GenCPUPer1k), cpu(r.UpstreamCPUPer1k), load(r.OtherCores), validity(r.Valid, r.FirstError))
		}
		w("\n")
	}

	if n := maxConns(s.Conns); n > 0 {
		w("## What each feature costs (%d connections)\n\n", n)
		w("Proxy CPU per request, and what each stage adds over the one before it (passthrough: over the floor). CPU per request is steadier than req/s on a shared machine.\n\n")
		w("| target | proxy CPU µs per req | added µs per req | req/s × floor |\n|---|---:|---:|---:|\n")
		wl := fmt.Sprintf("chat-c%d", n)
		prev := -1.0
		var sink []string
		for _, r := range rep.Closed {
			if r.Workload != wl || r.CPUPer1k < 0 {
				continue
			}
			us := r.CPUPer1k * 1000 // s per 1k req = ms per req; ×1000 = µs
			added := "–"
			if prev >= 0 && r.Target != "nginx" {
				added = fmt.Sprintf("%+.0f", us-prev)
			}
			w("| %s | %.0f | %s | %s |\n", r.Target, us, added, ratio(r.RatioFloor))
			if r.Target != "nginx" {
				prev = us
			}
			if r.SinkCPUPer1k > 0 {
				sink = append(sink, fmt.Sprintf("%s: the NATS server (same machine) used %.0f CPU-µs per request besides the proxy's", r.Target, r.SinkCPUPer1k*1000))
			}
		}
		w("\n")
		for _, l := range sink {
			w("%s.\n", l)
		}
		if len(sink) > 0 {
			w("\n")
		}
	}

	w("## Open loop at %.0f req/s (%s)\n\n", rep.OpenRate, rep.OpenRateBasis)
	w("Latency counts from each request's intended send time, so queueing is not hidden (no coordinated omission). Added = target minus direct.\n\n")
	w("| target | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms | send lag p99 ms | non-2xx / errors | proxy CPU s per 1k req | other load (cores) | valid |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rep.Open {
		w("| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %.2f | %d / %d | %s | %s | %s |\n",
			r.Target, r.RPS, r.P50, r.P90, r.P99, r.P999, signed(r.AddedP50), signed(r.AddedP99), r.SendLagP99,
			r.Non2xx, r.Errors, cpu(r.CPUPer1k), load(r.OtherCores), validity(r.Valid, r.FirstError))
	}
	w("\n")

	w("## Streams: %d concurrent SSE streams, %d deltas %.0f ms apart (PII split across deltas)\n\n", s.StreamConns, s.StreamDeltas, s.StreamPaceMs)
	w("TTFB = request sent → response headers (the role-only first event follows at once). TTFT = request sent → first content delta. Gap = time between consecutive content events (the upstream paces them %.0f ms apart). Added = target minus direct. A stream is complete only if its final delta and `data: [DONE]` arrived.\n\n", s.StreamPaceMs)
	w("| target | completed | truncated | non-2xx / errors | streams/s | TTFB p50 ms | added TTFB p50 | TTFT p50 ms | TTFT p99 ms | added TTFT p50 | added TTFT p99 | gap p50 ms | gap p99 ms | added gap p50 | added gap p99 | proxy CPU s per 1k streams | other load (cores) | valid |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rep.Streams {
		w("| %s | %d | %d | %d / %d | %.0f | %.2f | %s | %.2f | %.2f | %s | %s | %.2f | %.2f | %s | %s | %s | %s | %s |\n",
			r.Target, r.Completed, r.Truncated, r.Non2xx, r.Errors, r.StreamsPerSec, r.TTFBP50, signed(r.TTFBAddedP50), r.TTFTP50, r.TTFTP99,
			signed(r.TTFTAddedP50), signed(r.TTFTAddedP99), r.GapP50, r.GapP99, signed(r.GapAddedP50), signed(r.GapAddedP99),
			cpu(r.CPUPer1k), load(r.OtherCores), validity(r.Valid, r.FirstError))
	}
	w("\n")

	w("## Acceptance targets (issue 8)\n\n| check | target | measured | verdict |\n|---|---|---|---|\n")
	for _, c := range rep.Checks {
		w("| %s | %s | %s | %s |\n", c.Name, c.Target, mdEscape(c.Measured), c.Verdict)
	}
	if len(rep.Notes) > 0 {
		w("\n## Notes\n\n")
		for _, n := range rep.Notes {
			w("- %s\n", n)
		}
	}
	w("\nRun took %s.\n", rep.Finished.Sub(rep.Started).Round(1e9))
	return b.String()
}

// recordingChecks are issue 15's targets: recording every call costs at
// most 15% of warden-full's throughput in the same run, and leaves the
// masked stream's time to first byte unchanged within 0.5 ms.
func recordingChecks(rep *Report, direct *StreamRow) []Check {
	var out []Check
	rec := configs.RecordingStage
	for _, n := range rep.Settings.Conns {
		wl := fmt.Sprintf("chat-c%d", n)
		c := Check{Name: fmt.Sprintf("recording everything costs ≤ 15%% throughput against warden-full at %d connections", n), Target: rec}
		r, f := findRow(rep.Closed, wl, rec), findRow(rep.Closed, wl, refStage)
		if r != nil && f != nil && f.RPS > 0 {
			q := r.RPS / f.RPS
			c.Measured = fmt.Sprintf("%.0f vs %.0f req/s = %.2f× warden-full (cost %.0f%%)", r.RPS, f.RPS, q, (1-q)*100)
			c.Verdict = judge(q >= 0.85 && r.Valid && f.Valid, r.disturbed(), f.disturbed())
		} else {
			c.Verdict, c.Measured = "not measured", rec+" or warden-full not available"
		}
		out = append(out, c)
	}
	c := Check{Name: "recording leaves masked-stream time to first byte unchanged within 0.5 ms (p50)", Target: rec}
	var r, f *StreamRow
	for i := range rep.Streams {
		switch rep.Streams[i].Target {
		case rec:
			r = &rep.Streams[i]
		case refStage:
			f = &rep.Streams[i]
		}
	}
	if r != nil && f != nil {
		d := r.TTFBP50 - f.TTFBP50
		c.Measured = fmt.Sprintf("TTFB p50 %.2f ms vs warden-full %.2f ms: %+.2f ms (TTFT p50 %+.2f ms)", r.TTFBP50, f.TTFBP50, d, r.TTFTAddedP50-f.TTFTAddedP50)
		dist := []string{r.disturbed(), f.disturbed()}
		if direct != nil {
			dist = append(dist, direct.disturbed())
		}
		c.Verdict = judge(d <= 0.5 && d >= -0.5 && r.Valid && f.Valid, dist...)
	} else {
		c.Verdict, c.Measured = "not measured", rec+" or warden-full not available"
	}
	return append(out, c)
}
