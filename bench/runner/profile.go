package runner

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler fetches pprof profiles from a Warden stage while the harness
// loads it, from the pprof listener the -profile build adds (see
// pprofOverlay), or else from /debug/pprof/ on the admin listener. When
// neither answers, the run goes on and the report says so.
type profiler struct {
	dir    string // where to write; "" disables
	prefix string // file name prefix (report base name)
	notes  []string
	cpu    []stageCPU // CPU by component of each profiled stage
}

// capture runs load() while taking a CPU profile of t for the load's
// duration, then takes an allocation profile. load returns how many
// requests were answered, by which the CPU by component is divided.
func (p *profiler) capture(ctx context.Context, t *Target, d time.Duration, label string, load func() int64) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	base := t.pprof
	if base == "" {
		base = t.admin
	}
	cpuFile := filepath.Join(p.dir, fmt.Sprintf("%s-%s-%s.cpu.pprof", p.prefix, t.Name, label))
	done := make(chan error, 1)
	go func() {
		done <- fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), cpuFile, time.Duration(secs+10)*time.Second)
	}()
	answered := load()
	if err := <-done; err != nil {
		p.notes = append(p.notes, fmt.Sprintf("%s %s: CPU profile not taken: %v", t.Name, label, err))
		return
	}
	// What follows the load is not bound by the stage's deadline (load +
	// 10 s): `go tool pprof` may first have to build itself, which on a
	// busy machine took longer than what was left of it. Each step has a
	// timeout of its own.
	ctx = context.WithoutCancel(ctx)
	if by, total, err := cpuComponents(ctx, cpuFile); err != nil {
		p.notes = append(p.notes, fmt.Sprintf("%s %s: CPU by component not computed: %v", t.Name, label, err))
	} else {
		p.cpu = append(p.cpu, stageCPU{name: t.Name, requests: answered, by: by, total: total})
	}
	allocFile := filepath.Join(p.dir, fmt.Sprintf("%s-%s-%s.allocs.pprof", p.prefix, t.Name, label))
	if err := fetch(ctx, base+"/debug/pprof/allocs", allocFile, 10*time.Second); err != nil {
		p.notes = append(p.notes, fmt.Sprintf("%s %s: allocation profile not taken: %v", t.Name, label, err))
		return
	}
	p.notes = append(p.notes, fmt.Sprintf("%s %s: profiles %s, %s (go tool pprof -top FILE)", t.Name, label, filepath.Base(cpuFile), filepath.Base(allocFile)))
}

func fetch(ctx context.Context, url, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s (no pprof handler there)", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		os.Remove(file)
		return err
	}
	return f.Close()
}

// trace runs load() while recording a runtime execution trace of t (up to
// 5 s of it). `go tool trace -pprof=sync FILE` then shows where requests
// waited, which a CPU profile cannot.
func (p *profiler) trace(ctx context.Context, t *Target, d time.Duration, label string, load func()) {
	secs := min(5, max(1, int(d.Round(time.Second)/time.Second)))
	base := t.pprof
	if base == "" {
		base = t.admin
	}
	file := filepath.Join(p.dir, fmt.Sprintf("%s-%s-%s.trace", p.prefix, t.Name, label))
	done := make(chan error, 1)
	go func() {
		done <- fetch(ctx, fmt.Sprintf("%s/debug/pprof/trace?seconds=%d", base, secs), file, time.Duration(secs+10)*time.Second)
	}()
	load()
	if err := <-done; err != nil {
		p.notes = append(p.notes, fmt.Sprintf("%s %s: trace not taken: %v", t.Name, label, err))
		return
	}
	p.notes = append(p.notes, fmt.Sprintf("%s %s: execution trace %s (go tool trace -pprof=sync FILE > sync.pprof; go tool pprof -top sync.pprof)", t.Name, label, filepath.Base(file)))
}

// writeComponents writes the CPU-by-component table of the profiled
// stages next to the report and notes where.
func (p *profiler) writeComponents() {
	if len(p.cpu) == 0 {
		return
	}
	file := filepath.Join(p.dir, p.prefix+"-cpu-components.md")
	text := "# CPU per request by component (from the CPU profiles, closed loop at the highest connection count)\n\n" +
		"Each sample is charged to the first component whose function is on its stack (bench/runner/components.go). " +
		"The profile covers the load's duration, so it slightly under-counts against the /proc figure; compare stages, not absolute numbers.\n\n" +
		componentsMarkdown(p.cpu)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		p.notes = append(p.notes, "CPU by component not written: "+err.Error())
		return
	}
	p.notes = append(p.notes, "CPU per request by component of the profiled stages: "+filepath.Base(file))
}
