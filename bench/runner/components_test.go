package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseTraces: every sample of `go tool pprof -traces` output is
// charged once, to the first component on its stack, in the order of
// the components table (the writer before SQLite, the completion entry
// before masking).
func TestParseTraces(t *testing.T) {
	text, err := os.ReadFile("testdata/pprof-traces.txt")
	if err != nil {
		t.Fatal(err)
	}
	by, total, err := parseTraces(string(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{
		"audit: search indexer goroutine":                                20 * time.Millisecond,
		"audit: writer goroutine (group commit, SQLite, fsync, signing)": 40 * time.Millisecond,
		"audit: flush goroutine (fdatasync, hand-off to the index)":      30 * time.Millisecond,
		"audit: Append on the caller (entry id, canonical JSON)":         10 * time.Millisecond,
		"gateway: completion entry (outcome, mask actions)":              10 * time.Millisecond,
		"runtime: GC (background workers)":                               10 * time.Millisecond,
		"masking":                                                        10 * time.Millisecond,
	}
	var sum time.Duration
	for k, v := range want {
		sum += v
		if by[k] != v {
			t.Errorf("%s: %v, want %v (all: %v)", k, by[k], v, by)
		}
	}
	if total != sum || len(by) != len(want) {
		t.Errorf("total %v over %d components, want %v over %d: %v", total, len(by), sum, len(want), by)
	}
}

func TestParseTracesEmpty(t *testing.T) {
	if _, _, err := parseTraces("File: warden\nType: cpu\n"); err == nil {
		t.Error("a profile without samples gave no error")
	}
}

func TestComponentsMarkdown(t *testing.T) {
	stages := []stageCPU{
		{name: "warden-masking", requests: 1000, total: 100 * time.Millisecond, by: map[string]time.Duration{"masking": 20 * time.Millisecond, "other": 80 * time.Millisecond}},
		{name: "warden-full", requests: 500, total: 100 * time.Millisecond, by: map[string]time.Duration{"masking": 10 * time.Millisecond, "audit: search indexer goroutine": 90 * time.Millisecond}},
	}
	md := componentsMarkdown(stages)
	for _, want := range []string{
		"| component | warden-masking | warden-full | warden-full − warden-masking |",
		"| audit: search indexer goroutine | 0.0 | 180.0 | +180.0 |",
		"| masking | 20.0 | 20.0 | +0.0 |",
		"| other | 80.0 | 0.0 | -80.0 |",
		"| **total sampled** | 100.0 | 200.0 | +100.0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

// TestProfileAllWithFakeBuild: -profile-all profiles each Warden stage
// of the run (here the one the stand-in binary accepts) and writes the
// CPU-by-component table next to the report.
func TestProfileAllWithFakeBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary and drives load for a few seconds")
	}
	o := DefaultOptions(true)
	o.Duration, o.Warmup = 1500*time.Millisecond, 100*time.Millisecond
	o.Conns = []int{4}
	o.StreamConns, o.StreamDeltas, o.StreamPace = 4, 5, time.Millisecond
	o.Only = []string{"warden-passthrough"}
	o.WardenPkg = "./bench/runner/testdata/fakewarden"
	o.ProfileAll = true
	o.OutDir = t.TempDir()
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(o.OutDir, "*-cpu-components.md"))
	if len(files) != 1 {
		t.Fatalf("components files %v; notes %q", files, rep.Notes)
	}
	text, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "| component | warden-passthrough |") || !strings.Contains(string(text), "**total sampled**") {
		t.Errorf("components table:\n%s", text)
	}
	if profs, _ := filepath.Glob(filepath.Join(o.OutDir, "*-warden-passthrough-chat-c4.cpu.pprof")); len(profs) != 1 {
		t.Errorf("CPU profile of the stage missing: %v", profs)
	}
}
