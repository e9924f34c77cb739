// Command wardenbench measures Warden against the direct path, a
// do-nothing Go reverse proxy and nginx, feature by feature, in one run.
//
//	go run ./bench/cmd/wardenbench          # full mode, under 10 minutes
//	go run ./bench/cmd/wardenbench -short   # quick look, under 2 minutes
//
// It writes bench/results/<date>-<mode>.md and .json. See bench/README.md.
//
// The same binary also serves the harness's helper processes, which the
// runner starts by re-executing itself:
//
//	wardenbench upstream -listen 127.0.0.1:0 -deltas 20 -pace 10ms
//	wardenbench floor -listen 127.0.0.1:0 -upstream http://127.0.0.1:PORT
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wardenhq/warden/bench/configs"
	"github.com/wardenhq/warden/bench/runner"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	handled, err := runner.Helper(ctx, os.Args[1:])
	if !handled {
		err = bench(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wardenbench:", err)
		os.Exit(1)
	}
}

func bench(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("wardenbench", flag.ContinueOnError)
	short := fs.Bool("short", false, "quick mode: 1 repetition of 1.5 s per measurement (under 2 minutes)")
	reps := fs.Int("reps", 0, "repetitions per target and workload (default 3, or 1 with -short)")
	dur := fs.Duration("duration", 0, "length of one measurement (default 3s, or 1.5s with -short)")
	rate := fs.Float64("rate", 0, "open-loop rate in req/s (default: half of the most complete Warden stage's closed-loop maximum)")
	only := fs.String("only", "", "comma-separated target names to run (direct always runs), e.g. go-floor,warden-full")
	profile := fs.Bool("profile", false, "take CPU and allocation profiles of the most complete Warden stage during its last 64-connection run (Warden is built with a pprof listener added via go build -overlay)")
	profileAll := fs.Bool("profile-all", false, "like -profile, but CPU and allocation profiles of every Warden stage (last 64-connection run), and a table of CPU per request by component across them")
	var extra stageFlags
	fs.Var(&extra, "stage", "extra Warden stage NAME=FILE: a config template (Go text/template over bench/configs.Data, e.g. {{.Listen}}) measured after the built-in stages; repeatable")
	noNginx := fs.Bool("no-nginx", false, "leave nginx out (no install attempt)")
	out := fs.String("out", "bench/results", "directory for the report files (relative to the repository root); empty: do not write")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only; see -h)", fs.Args())
	}
	o := runner.DefaultOptions(*short)
	if *reps > 0 {
		o.Reps = *reps
	}
	if *dur > 0 {
		o.Duration = *dur
	}
	o.OpenRate = *rate
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}
	o.SkipNginx = *noNginx
	o.Profile = *profile
	o.ProfileAll = *profileAll
	o.ExtraStages = extra
	o.Command = "go run ./bench/cmd/wardenbench"
	if len(args) > 0 {
		o.Command += " " + strings.Join(args, " ")
	}
	o.Logf = func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	if *out != "" {
		root, err := runner.RepoRoot()
		if err != nil {
			return err
		}
		o.OutDir = *out
		if !strings.HasPrefix(o.OutDir, "/") {
			o.OutDir = root + "/" + o.OutDir
		}
	}
	rep, err := runner.Run(ctx, o)
	if err != nil {
		return err
	}
	fmt.Print(rep.Markdown())
	if o.OutDir != "" {
		fmt.Fprintf(os.Stderr, "wrote %s.md and .json\n", rep.BaseName(o.OutDir))
	}
	return nil
}

// stageFlags collects -stage NAME=FILE values.
type stageFlags []configs.Stage

func (s *stageFlags) String() string { return fmt.Sprint(len(*s)) }

func (s *stageFlags) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok || name == "" || file == "" {
		return fmt.Errorf("want NAME=FILE, got %q", v)
	}
	*s = append(*s, configs.Stage{Name: name, File: file, Summary: "custom config " + file})
	return nil
}
