// Command image builds Warden's container image without a container
// engine: a static binary and a CA bundle on an empty base, non-root
// (uid 65532), no shell, written as an OCI image layout and as a tarball
// for `docker load`. The same source, toolchain and inputs give the same
// image digest (fixed timestamps from SOURCE_DATE_EPOCH or the commit's
// time, -trimpath, no VCS stamping).
//
//	go run ./deploy/image -out dist -version v0.4.0
//
// deploy/Dockerfile builds the same binary for users with Docker.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	out := fs.String("out", "dist", "output directory")
	version := fs.String("version", "", "version (default: dev-<short commit>)")
	commit := fs.String("commit", "", "VCS revision (default: git rev-parse HEAD)")
	date := fs.String("date", "", "build date, RFC 3339 (default: $SOURCE_DATE_EPOCH, else the commit's time)")
	arch := fs.String("arch", "amd64", "target architecture: amd64 or arm64")
	ca := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to install (Debian's ca-certificates)")
	binary := fs.String("binary", "", "use this static linux binary instead of building one")
	tag := fs.String("tag", "", "image reference in the tarball (default: warden:<version>)")
	root := fs.String("repo", ".", "repository root (the module with ./cmd/warden)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := Spec{Version: *version, Commit: *commit, Arch: *arch}
	if s.Commit == "" {
		s.Commit = gitOut(ctx, *root, "rev-parse", "HEAD")
	}
	if s.Commit == "" {
		return errors.New("no -commit and no git checkout")
	}
	if s.Version == "" {
		s.Version = "dev-" + s.Commit[:min(12, len(s.Commit))]
	}
	var err error
	if s.Date, err = buildDate(ctx, *date, *root); err != nil {
		return err
	}
	if *tag == "" {
		*tag = "warden:" + s.Version
	}
	if err := s.check(); err != nil {
		return err
	}

	bin := *binary
	if bin == "" {
		bin = filepath.Join(*out, "warden-linux-"+s.Arch)
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		abs, _ := filepath.Abs(bin)
		if err := BuildBinary(ctx, *root, abs, s); err != nil {
			return err
		}
	}
	binData, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	caData, err := os.ReadFile(*ca)
	if err != nil {
		return fmt.Errorf("CA bundle: %w (install Debian's ca-certificates or pass -ca-bundle)", err)
	}
	img, err := BuildImage(s, binData, caData)
	if err != nil {
		return err
	}
	layoutDir := filepath.Join(*out, "oci")
	tarFile := filepath.Join(*out, fmt.Sprintf("warden-%s-linux-%s.tar", s.Version, s.Arch))
	if err := WriteLayout(layoutDir, img, s.Version); err != nil {
		return err
	}
	if err := WriteTarball(tarFile, img, *tag); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("image %s  %s\n  version %s, commit %s, built %s, linux/%s\n  OCI layout: %s\n  docker load -i %s\n",
		*tag, d, s.Version, s.Commit, s.dateString(), s.Arch, layoutDir, tarFile)
	return nil
}

// buildDate is -date, else SOURCE_DATE_EPOCH, else the commit's time: a
// value that does not change from one build of the same commit to the
// next.
func buildDate(ctx context.Context, flagVal, root string) (time.Time, error) {
	if flagVal != "" {
		return time.Parse(time.RFC3339, flagVal)
	}
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", e, err)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	if ct := gitOut(ctx, root, "log", "-1", "--format=%ct"); ct != "" {
		n, err := strconv.ParseInt(ct, 10, 64)
		if err == nil {
			return time.Unix(n, 0).UTC(), nil
		}
	}
	return time.Time{}, errors.New("no build date: pass -date or set SOURCE_DATE_EPOCH")
}

func gitOut(ctx context.Context, dir string, args ...string) string {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
