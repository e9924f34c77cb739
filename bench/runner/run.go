package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/wardenhq/warden/bench/configs"
	"github.com/wardenhq/warden/bench/hist"
	"github.com/wardenhq/warden/bench/loadgen"
	"github.com/wardenhq/warden/bench/upstream"
)

// cell accumulates one (workload, target) over repetitions.
type cell struct {
	res     loadgen.Result
	stream  loadgen.StreamResult
	reps    []float64 // req/s (or streams/s) per repetition
	cpu     time.Duration
	cpuOK   bool
	answers uint64
	// genCPU and upCPU are the load generator's (this process) and the
	// upstream's CPU time during the measurements: the rest of the
	// machine's budget, which the proxy competes with.
	genCPU, upCPU time.Duration
	// otherCPU is the CPU all other processes on the machine used during
	// the measurements, and wall their total duration: their ratio says
	// how many cores something else took (noise).
	otherCPU, wall time.Duration
	// sinkCPU is the CPU the target's sink server on this machine (the
	// export stage's NATS server) used during the measurements, taken
	// out of otherCPU; sinkOK is false when it could not be read.
	sinkCPU time.Duration
	sinkOK  bool
	// exportLag is the export stage's lag when its last measurement
	// ended (nil: not an export stage, or not scraped).
	exportLag *ExportLag
}

type run struct {
	o       Options
	env     *env
	targets []*Target
	cells   map[string]map[string]*cell // workload -> target -> cell
	order   []string                    // workload names in order
	prof    *profiler
	started time.Time
}

func (r *run) cell(wl, target string) *cell {
	m := r.cells[wl]
	if m == nil {
		m = map[string]*cell{}
		r.cells[wl] = m
		r.order = append(r.order, wl)
	}
	c := m[target]
	if c == nil {
		c = &cell{res: loadgen.Result{Latency: hist.New()}, stream: loadgen.NewStreamResult(), cpuOK: true}
		m[target] = c
	}
	return c
}

// Run executes a whole benchmark run and writes the report files.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	started := time.Now().UTC()
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("runner: own executable: %w", err)
	}
	dir, err := os.MkdirTemp("", "wardenbench-")
	if err != nil {
		return nil, fmt.Errorf("runner: temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	e := &env{dir: dir, self: self, root: root, logf: o.Logf, profile: (o.Profile || o.ProfileAll) && o.OutDir != ""}
	defer e.close()
	if err := e.startUpstream(ctx, o); err != nil {
		return nil, err
	}
	if err := e.startIssuer(); err != nil {
		return nil, err
	}
	r := &run{o: o, env: e, cells: map[string]map[string]*cell{}, started: started}
	if (o.Profile || o.ProfileAll) && o.OutDir != "" {
		r.prof = &profiler{dir: o.OutDir, prefix: started.Format(stampLayout) + "-" + o.Mode}
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return nil, fmt.Errorf("runner: %w", err)
		}
	}
	defer func() {
		for _, t := range r.targets {
			t.stop()
		}
	}()
	want := func(name string) bool { return len(o.Only) == 0 || name == "direct" || slices.Contains(o.Only, name) }

	r.targets = append(r.targets, e.direct())
	if want("go-floor") {
		r.targets = append(r.targets, e.startFloor(ctx))
	}
	if want("nginx") {
		if o.SkipNginx {
			r.targets = append(r.targets, &Target{Name: "nginx", Kind: KindNginx, Unavailable: "skipped (-no-nginx)"})
		} else {
			r.targets = append(r.targets, e.startNginx(ctx))
		}
	}
	var stages []configs.Stage
	for _, st := range configs.Stages {
		if want(st.Name) {
			stages = append(stages, st)
		}
	}
	stages = append(stages, o.ExtraStages...)
	if len(stages) > 0 {
		o.Logf("building %s", o.WardenPkg)
		bin, err := e.buildWarden(ctx, o.WardenPkg)
		for _, st := range stages {
			if err != nil {
				r.targets = append(r.targets, &Target{Name: st.Name, Kind: KindWarden, Summary: st.Summary, Unavailable: "not available in this build: " + err.Error()})
				continue
			}
			r.targets = append(r.targets, e.startWarden(ctx, bin, st))
		}
	}
	for _, t := range r.targets {
		if t.Available() {
			o.Logf("target %-20s %s", t.Name, t.BaseURL)
		} else {
			o.Logf("target %-20s UNAVAILABLE: %s", t.Name, t.Unavailable)
		}
	}

	// Phase 1: closed loop, interleaved across targets, repeated.
	for rep := 1; rep <= o.Reps; rep++ {
		for _, n := range o.Conns {
			wl := fmt.Sprintf("chat-c%d", n)
			for _, t := range r.available() {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				r.measureClosed(ctx, wl, t, n, rep)
			}
		}
	}
	// Phase 2: open loop at a rate derived from phase 1, then streams.
	rate, basis := r.openRate()
	for rep := 1; rep <= o.Reps; rep++ {
		for _, t := range r.available() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r.measureOpen(ctx, t, rate, rep)
		}
		for _, t := range r.available() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r.measureStreams(ctx, t, rep)
		}
	}
	for _, t := range r.targets {
		t.stop()
	}
	rep := r.report(started, rate, basis)
	if r.prof != nil {
		r.prof.writeComponents()
		rep.Notes = append(rep.Notes, r.prof.notes...)
		if len(r.prof.notes) == 0 {
			rep.Notes = append(rep.Notes, "profile: no Warden stage was available to profile")
		}
	}
	if o.OutDir != "" {
		if err := rep.Write(o.OutDir); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (r *run) available() []*Target {
	var out []*Target
	for _, t := range r.targets {
		if t.Available() {
			out = append(out, t)
		}
	}
	return out
}

// cpuMark is the CPU time of the proxy, this process and the upstream at
// the start of a measurement.
type cpuMark struct {
	proxy, gen, up, busy, sink time.Duration
	at                         time.Time
	ok, sinkOK                 bool
}

func (r *run) cpuStart(t *Target) cpuMark {
	m := cpuMark{at: time.Now()}
	m.busy, _ = MachineBusy()
	m.gen, _ = selfCPU()
	m.up, _ = CPUTime(r.env.upProc.PID())
	if t.sinkPID != 0 {
		if st, err := readStat(t.sinkPID); err == nil {
			m.sink, m.sinkOK = time.Duration(st.utime+st.stime)*time.Second/clockTick, true
		}
	}
	if t.pid() == 0 {
		return m
	}
	c, err := CPUTime(t.pid())
	m.proxy, m.ok = c, err == nil
	return m
}

func (r *run) cpuEnd(c *cell, t *Target, m cpuMark) {
	var gen, up, proxy time.Duration
	if g, err := selfCPU(); err == nil {
		gen = g - m.gen
	}
	if u, err := CPUTime(r.env.upProc.PID()); err == nil {
		up = u - m.up
	}
	c.genCPU += gen
	c.upCPU += up
	if m.ok {
		if end, err := CPUTime(t.pid()); err == nil {
			proxy = end - m.proxy
			c.cpu += proxy
		} else {
			c.cpuOK = false
		}
	} else {
		c.cpuOK = false
	}
	var sink time.Duration
	if m.sinkOK {
		if st, err := readStat(t.sinkPID); err == nil {
			sink = time.Duration(st.utime+st.stime)*time.Second/clockTick - m.sink
			c.sinkCPU += sink
			c.sinkOK = true
		}
	}
	if busy, err := MachineBusy(); err == nil {
		c.otherCPU += max(0, busy-m.busy-gen-up-proxy-sink)
		c.wall += time.Since(m.at)
	}
}

// selfCPU is this process's CPU time (without the children it started).
func selfCPU() (time.Duration, error) {
	st, err := readStat(os.Getpid())
	if err != nil {
		return 0, err
	}
	return time.Duration(st.utime+st.stime) * time.Second / clockTick, nil
}

func (r *run) measureClosed(ctx context.Context, wl string, t *Target, conns, rep int) {
	// A hung target must not stall the run: answers still outstanding
	// 10 s after the measurement's end are cut and counted as errors.
	ctx, cancel := context.WithTimeout(ctx, r.o.Warmup+r.o.Duration+10*time.Second)
	defer cancel()
	c := r.cell(wl, t.Name)
	client := loadgen.NewClient(conns)
	defer client.CloseIdleConnections()
	req := chatRequest(t.BaseURL, r.env.token, false)
	loadgen.RunClosed(ctx, client, req, conns, r.o.Warmup)
	mark := r.cpuStart(t)
	var res loadgen.Result
	load := func() int64 {
		res = loadgen.RunClosed(ctx, client, req, conns, r.o.Duration)
		return int64(res.OK + res.Non2xx)
	}
	if r.prof != nil && rep == r.o.Reps && conns == slices.Max(r.o.Conns) && r.profiled(t) {
		r.prof.capture(ctx, t, r.o.Duration, wl, load)
	} else {
		load()
	}
	r.cpuEnd(c, t, mark)
	c.res.Merge(&res)
	c.reps = append(c.reps, res.RPS())
	c.answers += res.OK + res.Non2xx
	r.o.Logf("[%d/%d] %-8s %-20s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d", rep, r.o.Reps, wl, t.Name,
		res.RPS(), ms(res.Latency.QuantileDuration(0.5)), ms(res.Latency.QuantileDuration(0.99)), res.Non2xx+res.Errors)
	if t.Name == exportStage {
		// Export must keep up during the run, not defer the work: its
		// lag when the load stops (the gauges are at most 1 s old).
		if lag, err := scrapeExportLag(ctx, t.admin); err == nil {
			c.exportLag = &lag
			r.o.Logf("        export lag at the end: %.0f entries, %.2f s (throttled %.1f s in total)", lag.Entries, lag.Seconds, lag.Throttled)
		} else {
			r.o.Logf("        export lag: %v", err)
		}
	}
}

// profiled reports whether t's CPU and allocations are profiled: the
// most complete Warden stage, or with ProfileAll every Warden stage.
func (r *run) profiled(t *Target) bool {
	if r.o.ProfileAll && t.Kind == KindWarden {
		return true
	}
	return t.Name == r.refWarden()
}

// refWarden is the most complete available Warden stage ("" if none).
func (r *run) refWarden() string {
	ref := ""
	for _, t := range r.available() {
		if t.Kind == KindWarden {
			ref = t.Name
		}
	}
	return ref
}

// openRate is the open-loop rate: the configured one, or half of the most
// complete Warden stage's best closed-loop median (the floor's, when no
// Warden stage is available).
func (r *run) openRate() (float64, string) {
	if r.o.OpenRate > 0 {
		return r.o.OpenRate, "set with -rate"
	}
	ref := ""
	for _, t := range r.available() {
		if t.Kind == KindWarden || (ref == "" && t.Kind == KindFloor) {
			ref = t.Name
		}
	}
	if ref == "" {
		ref = "direct"
	}
	best := 0.0
	for _, n := range r.o.Conns {
		if c := r.cells[fmt.Sprintf("chat-c%d", n)][ref]; c != nil {
			best = max(best, median(c.reps))
		}
	}
	if best <= 0 {
		best = 2000
	}
	rate := float64(int(best/2/10) * 10)
	return max(rate, 10), fmt.Sprintf("half of %s's best closed-loop median (%.0f req/s)", ref, best)
}

func (r *run) measureOpen(ctx context.Context, t *Target, rate float64, rep int) {
	// A hung target must not stall the run: answers still outstanding
	// 10 s after the measurement's end are cut and counted as errors.
	ctx, cancel := context.WithTimeout(ctx, r.o.Warmup+r.o.Duration+10*time.Second)
	defer cancel()
	const wl = "chat-open"
	c := r.cell(wl, t.Name)
	client := loadgen.NewClient(r.o.OpenMaxInFlight)
	defer client.CloseIdleConnections()
	req := chatRequest(t.BaseURL, r.env.token, false)
	loadgen.RunOpen(ctx, client, req, rate, r.o.Warmup, r.o.OpenMaxInFlight)
	mark := r.cpuStart(t)
	var res loadgen.Result
	load := func() { res = loadgen.RunOpen(ctx, client, req, rate, r.o.Duration, r.o.OpenMaxInFlight) }
	if r.prof != nil && rep == r.o.Reps && t.Name == r.refWarden() {
		r.prof.trace(ctx, t, r.o.Duration, wl, load)
	} else {
		load()
	}
	r.cpuEnd(c, t, mark)
	c.res.Merge(&res)
	c.reps = append(c.reps, res.RPS())
	c.answers += res.OK + res.Non2xx
	r.o.Logf("[%d/%d] %-8s %-20s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d", rep, r.o.Reps, "open", t.Name,
		res.RPS(), ms(res.Latency.QuantileDuration(0.5)), ms(res.Latency.QuantileDuration(0.99)), res.Non2xx+res.Errors)
}

func (r *run) measureStreams(ctx context.Context, t *Target, rep int) {
	// A hung target must not stall the run: answers still outstanding
	// 10 s after the measurement's end are cut and counted as errors.
	ctx, cancel := context.WithTimeout(ctx, r.o.Warmup+r.o.Duration+10*time.Second)
	defer cancel()
	const wl = "streams"
	c := r.cell(wl, t.Name)
	n := r.o.StreamConns
	client := loadgen.NewClient(n)
	defer client.CloseIdleConnections()
	req := chatRequest(t.BaseURL, r.env.token, true)
	loadgen.RunStreams(ctx, client, req, n, r.o.Warmup/2, upstream.StreamEnd)
	mark := r.cpuStart(t)
	res := loadgen.RunStreams(ctx, client, req, n, r.o.Duration, upstream.StreamEnd)
	r.cpuEnd(c, t, mark)
	c.stream.Merge(&res)
	c.reps = append(c.reps, float64(res.Completed)/res.Elapsed.Seconds())
	c.answers += res.Completed + res.Truncated + res.Non2xx
	r.o.Logf("[%d/%d] %-8s %-20s %5d ok %d truncated  ttft p50 %6.2f ms  gap p50 %6.2f ms  errors %d", rep, r.o.Reps, wl, t.Name,
		res.Completed, res.Truncated, ms(res.TTFT.QuantileDuration(0.5)), ms(res.Gap.QuantileDuration(0.5)), res.Non2xx+res.Errors)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// RepoRoot walks up from the working directory to the go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("runner: no go.mod above the working directory; run from the repository")
		}
		dir = parent
	}
}
