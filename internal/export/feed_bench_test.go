package export

import "github.com/wardenhq/warden/internal/audit"

// The log feeds the source its commits in the benchmarks as in the
// gateway (cmd/warden/export.go). A separate file: bench/export-compare.sh
// builds the base revision with cpu_bench_test.go alone.
func init() {
	benchFeed = func(l *audit.Log, src *LogSource) { l.OnCommit(src.Feed) }
}
