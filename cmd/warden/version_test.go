package main

import (
	"bytes"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveBuild(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name          string
		v, c, d       string
		bi            *debug.BuildInfo
		want          buildInfo
		wantPrintLine string
	}{
		{"linker flags win", "v1.2.3", "feedbeef", "2026-01-02T03:04:05Z", vcs,
			buildInfo{Version: "v1.2.3", Commit: "feedbeef", Date: "2026-01-02T03:04:05Z", Go: "go1.26.8"}, "commit: feedbeef\n"},
		{"toolchain fallback", "", "", "", vcs,
			buildInfo{Version: "dev", Commit: "0123abcd", Date: "2026-11-30T10:00:00Z", Go: "go1.26.8", Modified: true}, "commit: 0123abcd (with uncommitted changes)\n"},
		{"go install of a tagged module", "", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}},
			buildInfo{Version: "v0.4.0", Commit: "unknown", Date: "unknown"}, "warden v0.4.0\n"},
		{"nothing known", "", "", "", nil, buildInfo{Version: "dev", Commit: "unknown", Date: "unknown"}, "built:  unknown\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolveBuild(tt.v, tt.c, tt.d, tt.bi)
			got.Platform = ""
			if tt.want.Go == "" {
				tt.want.Go = got.Go
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			var b bytes.Buffer
			got.print(&b)
			if !strings.Contains(b.String(), tt.wantPrintLine) {
				t.Fatalf("printed %q, want a line %q", b.String(), tt.wantPrintLine)
			}
		})
	}
}

// TestVersionOfBuiltBinary: the real binary answers `warden version`
// with the four lines. (That -ldflags values reach them is checked on the
// image's binary by deploy/image's TestImage.)
func TestVersionOfBuiltBinary(t *testing.T) {
	out, err := exec.Command(wardenBin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "warden ") || !strings.HasPrefix(lines[1], "commit: ") ||
		!strings.HasPrefix(lines[2], "built:  ") || !strings.HasPrefix(lines[3], "go:     go1.") {
		t.Fatalf("output %q", out)
	}
}
