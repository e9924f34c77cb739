package export

import "github.com/wardenhq/warden/internal/audit"

// The exporter maps a fed entry as appended (decision 031). A separate
// file: bench/export-compare.sh builds the base revision with
// cpu_bench_test.go alone, where benchMapFed keeps the earlier path.
func init() {
	benchMapFed = func(m *Mapper, e *audit.Entry, data []byte) (Event, error) { return m.entryFed(e, data) }
}
