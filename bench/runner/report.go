package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/wardenhq/warden/bench/hist"
)

// Report is the outcome of a run, written as JSON and markdown.
type Report struct {
	Command  string    `json:"command"`
	Mode     string    `json:"mode"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Targets  []*Target `json:"targets"`
	// Closed has one row per closed-loop workload and target.
	Closed []Row `json:"closed_loop"`
	// Open has one row per target at the same constant rate.
	Open []Row `json:"open_loop"`
	// OpenRate is the open-loop rate and how it was chosen.
	OpenRate      float64 `json:"open_rate"`
	OpenRateBasis string  `json:"open_rate_basis"`
	// Streams has one row per target.
	Streams []StreamRow `json:"streams"`
	// Checks are the acceptance targets evaluated on this run.
	Checks []Check `json:"checks"`
	// Notes are remarks of the run (profiles taken or not, ...).
	Notes []string `json:"notes,omitempty"`
}

// stampLayout formats the run's start time in report file names.
const stampLayout = "2006-01-02-1504"

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel"`
	Commit    string `json:"commit"`
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute averages when the
	// report was made: a loaded machine needs a quiet re-run.
	LoadAvg string `json:"load_avg,omitempty"`
}

// Settings are the load parameters.
type Settings struct {
	Reps         int     `json:"reps"`
	DurationSec  float64 `json:"duration_s"`
	WarmupSec    float64 `json:"warmup_s"`
	Conns        []int   `json:"conns"`
	StreamConns  int     `json:"stream_conns"`
	StreamDeltas int     `json:"stream_deltas"`
	StreamPaceMs float64 `json:"stream_pace_ms"`
	Request      string  `json:"request"`
}

// Row is one target under one request/response workload. Latencies are in
// milliseconds; ratios are req/s divided by direct's and the floor's in the
// same workload (0 when that baseline is missing).
type Row struct {
	Workload    string    `json:"workload"`
	Target      string    `json:"target"`
	Conns       int       `json:"conns,omitempty"`
	RPS         float64   `json:"rps"`
	RPSReps     []float64 `json:"rps_reps"`
	RatioDirect float64   `json:"ratio_direct"`
	RatioFloor  float64   `json:"ratio_floor"`
	P50         float64   `json:"p50_ms"`
	P90         float64   `json:"p90_ms"`
	P99         float64   `json:"p99_ms"`
	P999        float64   `json:"p999_ms"`
	Max         float64   `json:"max_ms"`
	// AddedP50/AddedP99 are this target's percentile minus direct's.
	AddedP50 float64 `json:"added_p50_ms"`
	AddedP99 float64 `json:"added_p99_ms"`
	// SendLagP99 (open loop) is how late the generator sent; large values
	// mean the rate was not sustained.
	SendLagP99 float64 `json:"send_lag_p99_ms,omitempty"`
	// ExportLag (export stage) is the sinks' lag when the last
	// repetition's load stopped.
	ExportLag  *ExportLag `json:"export_lag,omitempty"`
	OK         uint64     `json:"ok"`
	Non2xx     uint64     `json:"non_2xx"`
	Errors     uint64     `json:"errors"`
	FirstError string     `json:"first_error,omitempty"`
	// CPUPer1k is the proxy's CPU seconds per 1000 requests (-1: no proxy
	// process, as for direct).
	CPUPer1k float64 `json:"cpu_s_per_1k"`
	// GenCPUPer1k and UpstreamCPUPer1k are the load generator's and the
	// upstream's CPU seconds per 1000 requests in the same measurements.
	GenCPUPer1k      float64 `json:"gen_cpu_s_per_1k"`
	UpstreamCPUPer1k float64 `json:"upstream_cpu_s_per_1k"`
	// OtherCores is how many cores other processes on the machine used
	// on average during the measurements: noise that the ratios cannot
	// remove when it is large.
	OtherCores float64 `json:"other_cores"`
	// SinkCPUPer1k is the CPU seconds per 1000 requests of the export
	// stage's sink server when it runs on this machine (the NATS
	// server): it shares the cores with the targets but is not Warden,
	// so it is reported apart and left out of OtherCores (0: not an
	// export stage, or the server is elsewhere or was not found).
	SinkCPUPer1k float64 `json:"sink_cpu_s_per_1k,omitempty"`
	Valid        bool    `json:"valid"`
}

// StreamRow is one target under the streaming workload (ms).
type StreamRow struct {
	Target        string  `json:"target"`
	Conns         int     `json:"conns"`
	Completed     uint64  `json:"completed"`
	Truncated     uint64  `json:"truncated"`
	Non2xx        uint64  `json:"non_2xx"`
	Errors        uint64  `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	StreamsPerSec float64 `json:"streams_per_s"`
	// TTFB is the time to the response headers: whether the proxy starts
	// the stream at once, before any content can be released.
	TTFBP50      float64 `json:"ttfb_p50_ms"`
	TTFBAddedP50 float64 `json:"ttfb_added_p50_ms"`
	TTFTP50      float64 `json:"ttft_p50_ms"`
	TTFTP99      float64 `json:"ttft_p99_ms"`
	TTFTAddedP50 float64 `json:"ttft_added_p50_ms"`
	TTFTAddedP99 float64 `json:"ttft_added_p99_ms"`
	GapP50       float64 `json:"gap_p50_ms"`
	GapP99       float64 `json:"gap_p99_ms"`
	GapAddedP50  float64 `json:"gap_added_p50_ms"`
	GapAddedP99  float64 `json:"gap_added_p99_ms"`
	CPUPer1k     float64 `json:"cpu_s_per_1k_streams"`
	OtherCores   float64 `json:"other_cores"`
	Valid        bool    `json:"valid"`
}

// Check is one acceptance target of issue 8 evaluated on this run.
type Check struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Verdict  string `json:"verdict"` // met | missed | not measured
}

func q(h *hist.Histogram, p float64) float64 { return ms(h.QuantileDuration(p)) }

func (r *run) report(started time.Time, rate float64, basis string) *Report {
	rep := &Report{
		Command: r.o.Command, Mode: r.o.Mode, Started: started, Finished: time.Now().UTC(),
		Machine: machine(r.env.root),
		Settings: Settings{
			Reps: r.o.Reps, DurationSec: r.o.Duration.Seconds(), WarmupSec: r.o.Warmup.Seconds(),
			Conns: r.o.Conns, StreamConns: r.o.StreamConns, StreamDeltas: r.o.StreamDeltas,
			StreamPaceMs: ms(r.o.StreamPace),
			Request:      "POST /v1/chat/completions, model bench-pii (answer ~1 KB with an email, phone, card number and IBAN), bearer token",
		},
		Targets: r.targets, OpenRate: rate, OpenRateBasis: basis,
	}
	for _, wl := range r.order {
		cells := r.cells[wl]
		switch wl {
		case "streams":
			rep.Streams = r.streamRows(cells)
		case "chat-open":
			rep.Open = r.rows(wl, cells, 0)
		default:
			var n int
			fmt.Sscanf(wl, "chat-c%d", &n)
			rep.Closed = append(rep.Closed, r.rows(wl, cells, n)...)
		}
	}
	rep.Checks = checks(rep)
	return rep
}

func (r *run) rows(wl string, cells map[string]*cell, conns int) []Row {
	var out []Row
	for _, t := range r.available() {
		c := cells[t.Name]
		if c == nil {
			continue
		}
		h := c.res.Latency
		row := Row{
			Workload: wl, Target: t.Name, Conns: conns, RPS: median(c.reps), RPSReps: c.reps,
			P50: q(h, 0.5), P90: q(h, 0.9), P99: q(h, 0.99), P999: q(h, 0.999), Max: ms(time.Duration(h.Max())),
			OK: c.res.OK, Non2xx: c.res.Non2xx, Errors: c.res.Errors, FirstError: c.res.FirstError,
			CPUPer1k: cpuPer1k(c), Valid: c.res.Valid(),
			GenCPUPer1k: per1k(c.genCPU, c.answers), UpstreamCPUPer1k: per1k(c.upCPU, c.answers),
			OtherCores: otherCores(c), SinkCPUPer1k: sinkPer1k(c),
		}
		if c.res.SendLag != nil {
			row.SendLagP99 = q(c.res.SendLag, 0.99)
		}
		row.ExportLag = c.exportLag
		out = append(out, row)
	}
	base := func(name string) *Row {
		for i := range out {
			if out[i].Target == name {
				return &out[i]
			}
		}
		return nil
	}
	d, f := base("direct"), base("go-floor")
	for i := range out {
		if d != nil && d.RPS > 0 {
			out[i].RatioDirect = out[i].RPS / d.RPS
			out[i].AddedP50 = out[i].P50 - d.P50
			out[i].AddedP99 = out[i].P99 - d.P99
		}
		if f != nil && f.RPS > 0 {
			out[i].RatioFloor = out[i].RPS / f.RPS
		}
	}
	return out
}

func (r *run) streamRows(cells map[string]*cell) []StreamRow {
	var out []StreamRow
	for _, t := range r.available() {
		c := cells[t.Name]
		if c == nil {
			continue
		}
		s := c.stream
		out = append(out, StreamRow{
			Target: t.Name, Conns: r.o.StreamConns,
			Completed: s.Completed, Truncated: s.Truncated, Non2xx: s.Non2xx, Errors: s.Errors, FirstError: s.FirstError,
			StreamsPerSec: median(c.reps),
			TTFBP50:       q(s.TTFB, 0.5),
			TTFTP50:       q(s.TTFT, 0.5), TTFTP99: q(s.TTFT, 0.99),
			GapP50: q(s.Gap, 0.5), GapP99: q(s.Gap, 0.99),
			CPUPer1k: cpuPer1k(c), OtherCores: otherCores(c), Valid: s.Valid(),
		})
	}
	for i := range out {
		if out[0].Target == "direct" {
			out[i].TTFBAddedP50 = out[i].TTFBP50 - out[0].TTFBP50
			out[i].TTFTAddedP50 = out[i].TTFTP50 - out[0].TTFTP50
			out[i].TTFTAddedP99 = out[i].TTFTP99 - out[0].TTFTP99
			out[i].GapAddedP50 = out[i].GapP50 - out[0].GapP50
			out[i].GapAddedP99 = out[i].GapP99 - out[0].GapP99
		}
	}
	return out
}

func cpuPer1k(c *cell) float64 {
	if !c.cpuOK {
		return -1
	}
	return per1k(c.cpu, c.answers)
}

func sinkPer1k(c *cell) float64 {
	if !c.sinkOK {
		return 0
	}
	return max(0, per1k(c.sinkCPU, c.answers))
}

func otherCores(c *cell) float64 {
	if c.wall <= 0 {
		return 0
	}
	return c.otherCPU.Seconds() / c.wall.Seconds()
}

func per1k(d time.Duration, n uint64) float64 {
	if n == 0 {
		return -1
	}
	return d.Seconds() / (float64(n) / 1000)
}

func machine(root string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	cmd := exec.Command("git", "rev-parse", "--short=12", "HEAD")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		st := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
		st.Dir = root
		if o, err := st.Output(); err == nil && len(strings.TrimSpace(string(o))) > 0 {
			m.Commit += " (with uncommitted changes)"
		}
	}
	return m
}

// Write stores the report as <dir>/<date>-<mode>.md and .json.
func (rep *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	base := filepath.Join(dir, rep.Started.Format(stampLayout)+"-"+rep.Mode)
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encode: %w", err)
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(base+".md", []byte(rep.Markdown()), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// BaseName is the path prefix Write uses under dir.
func (rep *Report) BaseName(dir string) string {
	return filepath.Join(dir, rep.Started.Format(stampLayout)+"-"+rep.Mode)
}
