package runner

import (
	"time"

	"github.com/wardenhq/warden/bench/configs"
)

// Options configure a run. DefaultOptions gives the documented modes.
type Options struct {
	// Mode names the run in file names and the report ("full", "short").
	Mode string
	// Reps is how many times every target is measured per workload.
	Reps int
	// Duration is one measurement; Warmup precedes it on fresh
	// connections and is not recorded.
	Duration, Warmup time.Duration
	// Conns lists the closed-loop connection counts (one workload each).
	Conns []int
	// OpenRate is the open-loop rate in req/s; 0 means half of the most
	// complete Warden stage's closed-loop maximum in this run.
	OpenRate float64
	// OpenMaxInFlight caps outstanding open-loop requests.
	OpenMaxInFlight int
	// StreamConns is the number of concurrent SSE streams.
	StreamConns int
	// StreamDeltas and StreamPace shape each upstream stream.
	StreamDeltas int
	StreamPace   time.Duration
	// Only, when non-empty, limits the run to these target names
	// ("direct" is always included, as every ratio needs it).
	Only []string
	// ExtraStages are Warden configs given on the command line (-stage),
	// measured after the built-in stages.
	ExtraStages []configs.Stage
	// SkipNginx leaves nginx out (no install attempt).
	SkipNginx bool
	// Profile takes CPU and allocation profiles of the most complete
	// Warden stage during its last closed-loop measurement at the highest
	// connection count, and an execution trace during its last open-loop
	// measurement, written next to the report.
	Profile bool
	// ProfileAll is Profile for every Warden stage: each one's CPU and
	// allocations in its last closed-loop measurement at the highest
	// connection count (the execution trace stays on the most complete
	// stage), and a table of CPU per request by component across them.
	ProfileAll bool
	// WardenPkg is the package built as the Warden binary.
	WardenPkg string
	// OutDir receives the report files; "" writes none.
	OutDir string
	// Command is the command line printed at the top of the report.
	Command string
	// Logf receives progress lines.
	Logf func(format string, args ...any)
}

// DefaultOptions returns the full mode (under 10 minutes with every
// target) or the short mode (under 2 minutes).
func DefaultOptions(short bool) Options {
	o := Options{
		Mode:            "full",
		Reps:            3,
		Duration:        3 * time.Second,
		Warmup:          time.Second,
		Conns:           []int{16, 64},
		OpenMaxInFlight: 512,
		StreamConns:     64,
		StreamDeltas:    20,
		StreamPace:      10 * time.Millisecond,
		WardenPkg:       "./cmd/warden",
	}
	if short {
		o.Mode = "short"
		o.Reps = 1
		o.Duration = 1500 * time.Millisecond
		o.Warmup = 400 * time.Millisecond
	}
	return o
}
