package report

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// The benchmarks need a large log: WARDEN_BENCH_REPORT_N entries
// (default 1,000,000) of synthetic traffic over 30 days, written straight
// into a SQLite store in a temporary directory (kept for the process).
var bigReport struct {
	once sync.Once
	dir  string
	n    int64
	v    note.Verifier
	vkey string
	err  error
}

func benchN() int64 {
	if s := os.Getenv("WARDEN_BENCH_REPORT_N"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 1_000_000
}

var benchStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)

// syntheticEntry is entry i of the benchmark log: a mix of admissions
// and completions (with masking), denials and refusals.
func syntheticEntry(i int64) *audit.Entry {
	t := benchStart.Add(time.Duration(float64(30*24*time.Hour) * float64(i) / float64(benchN())))
	req := fmt.Sprintf("req-%d", i/2)
	e := &audit.Entry{V: audit.SchemaVersion, ID: fmt.Sprintf("e-%08d", i), Time: t, Instance: "gw-" + strconv.Itoa(int(i%3)), RequestID: req, Route: "openai"}
	switch {
	case i%50 == 48:
		e.Kind, e.Principal, e.Decision, e.Status = audit.KindRequestDenied, alice, deny, 403
	case i%50 == 49:
		e.Kind, e.Status, e.Details = audit.KindRequestRefused, 401, map[string]any{"reason": "invalid_token", "description": "token expired"}
	case i%2 == 0:
		e.Kind, e.Principal, e.Decision, e.Method, e.Path, e.Model = audit.KindRequestAdmitted, alice, allow, "POST", "/v1/chat/completions", "small"
	default:
		e.Kind, e.Principal, e.Decision, e.Outcome, e.Status, e.BytesOut = audit.KindRequestCompleted, alice, allow, audit.OutcomeOK, 200, 1200
		if i%4 == 1 {
			e.Masking = masked
		}
	}
	return e
}

func buildBigReportLog(b *testing.B) {
	bigReport.once.Do(func() {
		start := time.Now()
		n := benchN()
		dir, err := os.MkdirTemp("", "warden-report-bench-")
		if err != nil {
			bigReport.err = err
			return
		}
		bigReport.dir, bigReport.n = dir, n
		s, v, err := audit.LoadOrCreateKeys(filepath.Join(dir, "keys", audit.SignerFile), "bench-audit")
		if err != nil {
			bigReport.err = err
			return
		}
		_, vpath := audit.KeyPaths(dir)
		vk, _ := os.ReadFile(vpath)
		bigReport.v, bigReport.vkey = v, string(vk)
		ctx := context.Background()
		st, err := sqlite.Open(ctx, filepath.Join(dir, "audit.db"))
		if err != nil {
			bigReport.err = err
			return
		}
		defer st.Close()
		var hashes []tlog.Hash
		hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				out[i] = hashes[x]
			}
			return out, nil
		})
		const batch = 10_000
		for from := int64(0); from < n; from += batch {
			bt := audit.Batch{HashStart: tlog.StoredHashCount(from)}
			for i := from; i < min(from+batch, n); i++ {
				e := syntheticEntry(i)
				data, err := audit.Marshal(e)
				if err != nil {
					bigReport.err = err
					return
				}
				e.Seq = i
				hs, err := tlog.StoredHashesForRecordHash(i, tlog.RecordHash(data), hr)
				if err != nil {
					bigReport.err = err
					return
				}
				hashes = append(hashes, hs...)
				bt.Records = append(bt.Records, audit.Record{Seq: i, Data: data, Entry: e})
				bt.Hashes = append(bt.Hashes, hs...)
			}
			if err := st.Append(ctx, bt); err != nil {
				bigReport.err = err
				return
			}
			if size := min(from+batch, n); size%100_000 == 0 || size == n {
				th, err := tlog.TreeHash(size, hr)
				if err == nil {
					var cp audit.Checkpoint
					if cp, err = audit.SignCheckpoint(s, size, th, benchStart.Add(31*24*time.Hour)); err == nil {
						err = st.PutCheckpoint(ctx, cp)
					}
				}
				if err != nil {
					bigReport.err = err
					return
				}
			}
		}
		fmt.Fprintf(os.Stderr, "built a %d-entry audit store in %s\n", n, time.Since(start).Round(time.Second))
	})
	if bigReport.err != nil {
		b.Fatal(bigReport.err)
	}
}

// cpuSeconds is the process's user+system CPU time: on a loaded machine
// entries per CPU-second says what the code costs, entries per second
// what this machine gave it.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return string(bytes.TrimSpace(b))
}

func benchGenerate(b *testing.B) *Result {
	ctx := context.Background()
	st, err := sqlite.OpenReadOnly(ctx, filepath.Join(bigReport.dir, "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	res, err := Generate(ctx, Options{Store: st, Verifier: bigReport.v, SingleWriter: true, Seed: 1,
		Period: Period{From: benchStart, To: benchStart.Add(31 * 24 * time.Hour)}})
	if err != nil {
		b.Fatal(err)
	}
	if res.Report.Cover.PeriodEntries != bigReport.n || !res.Report.Cover.Verification.OK {
		b.Fatalf("report of %d entries: %+v", res.Report.Cover.PeriodEntries, res.Report.Cover.Verification)
	}
	return res
}

// BenchmarkGenerate1M: the report of a period of 1M entries, including
// the full verification of the log (the acceptance bar is 30 s).
//
//	go test -run '^$' -bench Generate1M -benchtime 1x ./internal/report
func BenchmarkGenerate1M(b *testing.B) {
	buildBigReportLog(b)
	b.Logf("load average before: %s", loadAverage())
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for b.Loop() {
		benchGenerate(b)
	}
	b.ReportMetric(float64(bigReport.n)/(b.Elapsed().Seconds()/float64(b.N)), "entries/s")
	b.ReportMetric(float64(bigReport.n)*float64(b.N)/(cpuSeconds()-cpu0), "entries/cpu-s")
	b.Logf("load average after: %s", loadAverage())
}

// BenchmarkVerifyBundle1M: `warden verify --bundle` on the bundle of the
// same period (the acceptance bar is 100k entries/s).
func BenchmarkVerifyBundle1M(b *testing.B) {
	buildBigReportLog(b)
	res := benchGenerate(b)
	var bundle bytes.Buffer
	if err := WriteBundle(context.Background(), &bundle, res, BundleOptions{VerifierKey: bigReport.vkey}); err != nil {
		b.Fatal(err)
	}
	b.Logf("bundle: %d bytes; load average before: %s", bundle.Len(), loadAverage())
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for b.Loop() {
		r, err := VerifyBundle(context.Background(), bytes.NewReader(bundle.Bytes()), BundleVerifyOptions{Verifier: bigReport.v})
		if err != nil {
			b.Fatal(err)
		}
		if r.Entries != bigReport.n {
			b.Fatalf("verified %d entries", r.Entries)
		}
	}
	b.ReportMetric(float64(bigReport.n)/(b.Elapsed().Seconds()/float64(b.N)), "entries/s")
	b.ReportMetric(float64(bigReport.n)*float64(b.N)/(cpuSeconds()-cpu0), "entries/cpu-s")
	b.Logf("load average after: %s", loadAverage())
}
