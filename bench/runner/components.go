package runner

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A component is a part of Warden's work that CPU samples are charged
// to, recognised by a function on the sample's stack. The first
// component whose pattern matches any frame of a stack gets the sample,
// so the specific ones (the audit writer, the search indexer) come
// before the general ones (the handler, net/http).
type component struct {
	name string
	re   *regexp.Regexp
}

var components = []component{
	{"audit: search indexer goroutine", regexp.MustCompile(`audit\.\(\*Indexer\)`)},
	{"audit: writer goroutine (group commit, SQLite, fsync, signing)", regexp.MustCompile(`audit\.\(\*Log\)\.(run|commit|fileLoop)$`)},
	{"audit: flush goroutine (fdatasync, hand-off to the index)", regexp.MustCompile(`audit\.\(\*Log\)\.flushLoop$`)},
	{"audit: Append on the caller (entry id, canonical JSON)", regexp.MustCompile(`audit\.(\(\*Log\)\.prepare|Marshal)$`)},
	{"audit: Append on the caller (hand-off and wait)", regexp.MustCompile(`audit\.\(\*Log\)\.(Append|appendInOrder)$`)},
	{"gateway: completion goroutine (besides Append)", regexp.MustCompile(`gateway\.\(\*Gateway\)\.(complete\.func\d+|completionWorker|finishCall)$`)},
	{"gateway: completion entry (outcome, mask actions)", regexp.MustCompile(`gateway\.\(\*Gateway\)\.(complete|completeInBackground|maskActions|maskingOutcome)$`)},
	{"gateway: admission entry (params redaction, entry, store deadline)", regexp.MustCompile(`gateway\.\(\*Gateway\)\.(params|entry|fillEntry|storeContext)$`)},
	{"gateway: recording", regexp.MustCompile(`gateway\.\(\*Gateway\)\.(finishRecording|reserveRecording)$|/internal/recording\.`)},
	{"policy and approvals (body facts, decision, grants)", regexp.MustCompile(`/internal/(policy|approval)\.`)},
	{"masking", regexp.MustCompile(`/internal/mask\.|gateway\.\(\*Gateway\)\.wrapMasking$`)},
	{"identity (token, assertion)", regexp.MustCompile(`/internal/identity\.`)},
	{"export", regexp.MustCompile(`/internal/export\.`)},
	{"gateway: rest of admission (body hash, checks)", regexp.MustCompile(`gateway\.\(\*Gateway\)\.admit$`)},
	{"proxying (upstream round trip, copy, response hooks)", regexp.MustCompile(`gateway\.\(\*Gateway\)\.(forward|rewrite|modifyResponse)$|httputil\.|net/http\.\(\*persistConn\)|net/http\.\(\*Transport\)`)},
	{"gateway: rest of the handler (routing, body read, response hash)", regexp.MustCompile(`gateway\.\(\*Gateway\)\.ServeHTTP$`)},
	{"net/http server (parse, write, connection)", regexp.MustCompile(`net/http\.\(\*conn\)\.serve$`)},
	{"runtime: GC (background workers)", regexp.MustCompile(`runtime\.(gcBgMarkWorker|bgsweep|bgscavenge)$`)},
	{"runtime: scheduler, netpoll, timers", regexp.MustCompile(`runtime\.(mcall|schedule|findRunnable|park_m|goexit0|netpoll|mstart|sysmon)$`)},
	{"other", regexp.MustCompile(``)},
}

// cpuComponents reads a CPU profile (through `go tool pprof -traces`)
// and returns the CPU time charged to each component, and the total.
func cpuComponents(ctx context.Context, file string) (map[string]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-traces", file).Output()
	if err != nil {
		return nil, 0, fmt.Errorf("go tool pprof -traces %s: %w", file, err)
	}
	return parseTraces(string(out))
}

// parseTraces charges each sample of `go tool pprof -traces` output to a
// component. A sample block is a separator line, then its value and leaf
// frame on one line, then one caller frame per line.
func parseTraces(text string) (map[string]time.Duration, time.Duration, error) {
	by := map[string]time.Duration{}
	var total time.Duration
	var val time.Duration
	var frames []string
	flush := func() {
		if val == 0 {
			return
		}
		by[classify(frames)] += val
		total += val
		val, frames = 0, frames[:0]
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------+") {
			flush()
			continue
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			continue
		}
		if val == 0 && len(line) > 0 && line[0] == ' ' && len(line) > 11 && strings.TrimSpace(line[:11]) != "" {
			// "      10ms   func" : value column, then the leaf frame.
			v, err := parseSampleValue(strings.TrimSpace(line[:11]))
			if err != nil {
				continue // a header line
			}
			val = v
			frames = append(frames, frameName(line[11:]))
			continue
		}
		if val != 0 {
			frames = append(frames, frameName(trimmed))
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	if total == 0 {
		return nil, 0, fmt.Errorf("no samples in the profile")
	}
	return by, total, nil
}

func frameName(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSuffix(s, " (inline)")
}

func parseSampleValue(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"us", time.Microsecond}, {"µs", time.Microsecond}, {"ns", time.Nanosecond}, {"s", time.Second}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, err
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("not a sample value: %q", s)
}

func classify(frames []string) string {
	for _, c := range components {
		for _, f := range frames {
			if c.re.MatchString(f) {
				return c.name
			}
		}
	}
	return "other"
}

// stageCPU is one profiled stage's CPU by component, per request.
type stageCPU struct {
	name     string
	requests int64
	by       map[string]time.Duration
	total    time.Duration
}

// componentsMarkdown is the table of CPU µs per request by component,
// one column per profiled stage, and the difference of the last stage
// to the one before it.
func componentsMarkdown(stages []stageCPU) string {
	var b strings.Builder
	b.WriteString("| component |")
	for _, s := range stages {
		fmt.Fprintf(&b, " %s |", s.name)
	}
	if len(stages) > 1 {
		fmt.Fprintf(&b, " %s − %s |", stages[len(stages)-1].name, stages[len(stages)-2].name)
	}
	b.WriteString("\n|---|")
	for range stages {
		b.WriteString("---:|")
	}
	if len(stages) > 1 {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	per := func(s stageCPU, d time.Duration) float64 {
		if s.requests == 0 {
			return 0
		}
		return float64(d) / float64(time.Microsecond) / float64(s.requests)
	}
	row := func(name string, get func(s stageCPU) time.Duration) {
		any := false
		for _, s := range stages {
			if get(s) != 0 {
				any = true
			}
		}
		if !any {
			return
		}
		fmt.Fprintf(&b, "| %s |", name)
		for _, s := range stages {
			fmt.Fprintf(&b, " %.1f |", per(s, get(s)))
		}
		if n := len(stages); n > 1 {
			fmt.Fprintf(&b, " %+.1f |", per(stages[n-1], get(stages[n-1]))-per(stages[n-2], get(stages[n-2])))
		}
		b.WriteString("\n")
	}
	for _, c := range components {
		row(c.name, func(s stageCPU) time.Duration { return s.by[c.name] })
	}
	row("**total sampled**", func(s stageCPU) time.Duration { return s.total })
	return b.String()
}
