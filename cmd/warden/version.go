package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time by the image builder (deploy/image) and the
// Dockerfile:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<sha> -X main.date=<RFC 3339>"
//
// Left empty, `warden version` falls back to what the Go toolchain
// recorded (module version, VCS revision and commit time).
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildInfo is what `warden version` prints.
type buildInfo struct {
	Version, Commit, Date, Go, Platform string
	Modified                            bool // built from a tree with uncommitted changes
}

// currentBuild combines the linker-set variables with the toolchain's
// build information.
func currentBuild() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return resolveBuild(version, commit, date, bi)
}

func resolveBuild(v, c, d string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: v, Commit: c, Date: d, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			case "vcs.modified":
				b.Modified = c == "" && s.Value == "true"
			}
		}
		if bi.GoVersion != "" {
			b.Go = bi.GoVersion
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

func (b buildInfo) print(w io.Writer) {
	fmt.Fprintln(w, "warden", b.Version)
	mod := ""
	if b.Modified {
		mod = " (with uncommitted changes)"
	}
	fmt.Fprintf(w, "commit: %s%s\n", b.Commit, mod)
	fmt.Fprintf(w, "built:  %s\n", b.Date)
	fmt.Fprintf(w, "go:     %s %s\n", b.Go, b.Platform)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			currentBuild().print(cmd.OutOrStdout())
			return nil
		},
	}
}
