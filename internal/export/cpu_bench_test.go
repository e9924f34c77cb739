package export

import (
	"syscall"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

// cpuTimer measures the process's user+system CPU time (GC workers
// included) over a benchmark: on the shared test machine wall time per
// op mostly measures the other jobs, CPU time much less so.
type cpuTimer struct{ ru0 syscall.Rusage }

func startCPU() *cpuTimer {
	t := &cpuTimer{}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &t.ru0)
	return t
}

// report adds cpu-ns/<unit> for n units.
func (t *cpuTimer) report(b *testing.B, n int, unit string) {
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	ns := ru1.Utime.Nano() + ru1.Stime.Nano() - t.ru0.Utime.Nano() - t.ru0.Stime.Nano()
	b.ReportMetric(float64(ns)/float64(n), "cpu-ns/"+unit)
}

// BenchmarkExportEntryCPU is the exporter's per-entry work on a typical
// request.completed entry, as the engine does it for the entries it
// reads: decode the stored bytes, hash the leaf, map to OCSF and encode.
// Kept to exported names that existed before decision 020, so the same
// file measures the baseline (see bench/export-compare.sh).
func BenchmarkExportEntryCPU(b *testing.B) {
	e := sampleEntries(audit.KindRequestCompleted)[0]
	e.Seq = 12345
	data, err := audit.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	b.ReportAllocs()
	t := startCPU()
	for b.Loop() {
		d, err := audit.DecodeEntry(e.Seq, data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Entry(d, data, nil); err != nil {
			b.Fatal(err)
		}
	}
	t.report(b, b.N, "entry")
}

// BenchmarkMapEntryCPU is the mapping and encoding alone.
func BenchmarkMapEntryCPU(b *testing.B) {
	e := sampleEntries(audit.KindRequestCompleted)[0]
	e.Seq = 12345
	data, err := audit.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	d, err := audit.DecodeEntry(e.Seq, data)
	if err != nil {
		b.Fatal(err)
	}
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	b.ReportAllocs()
	t := startCPU()
	for b.Loop() {
		if _, err := m.Entry(d, data, nil); err != nil {
			b.Fatal(err)
		}
	}
	t.report(b, b.N, "entry")
}
