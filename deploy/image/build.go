package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's layout. deploy/Dockerfile produces the same (checked by
// TestDockerfileMatchesBuilder).
const (
	binaryPath   = "/usr/local/bin/warden"
	configPath   = "/etc/warden/warden.yaml"
	dataDir      = "/var/lib/warden"
	caBundlePath = "/etc/ssl/certs/ca-certificates.crt"
	uid          = 65532
	user         = "65532:65532"
)

var (
	entrypoint = []string{binaryPath, "serve"}
	cmdArgs    = []string{"--config", configPath}
)

// passwd and group name the unprivileged user (distroless's "nonroot")
// so that tools that look the uid up find it; no entry has a login
// shell, because the image has none.
const (
	passwdFile = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	groupFile  = "root:x:0:\nnonroot:x:65532:\n"
)

// Spec is what goes into one image build.
type Spec struct {
	Version string    // e.g. v0.4.0
	Commit  string    // full VCS revision
	Date    time.Time // build date: SOURCE_DATE_EPOCH or the commit's time
	Arch    string    // amd64 or arm64
}

// check refuses values that would break the -ldflags string or the
// image reference.
func (s Spec) check() error {
	for k, v := range map[string]string{"version": s.Version, "commit": s.Commit} {
		if v == "" || strings.ContainsAny(v, " \t\n'\"\\$") {
			return fmt.Errorf("image: %s %q must be non-empty without spaces, quotes or $", k, v)
		}
	}
	switch s.Arch {
	case "amd64", "arm64":
	default:
		return fmt.Errorf("image: arch %q: amd64 or arm64", s.Arch)
	}
	if s.Date.IsZero() {
		return fmt.Errorf("image: no build date (set SOURCE_DATE_EPOCH or -date)")
	}
	return nil
}

func (s Spec) dateString() string { return s.Date.UTC().Format(time.RFC3339) }

// goBuildEnv and goBuildArgs are the build of the binary in the image: a
// static binary (no cgo), paths trimmed, symbols stripped, version data
// from -ldflags instead of the VCS (so the result depends on the source
// and toolchain only). deploy/Dockerfile must use the same.
func goBuildEnv(arch string) []string {
	return []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + arch}
}

func goBuildArgs(version, commit, date, out string) []string {
	return []string{"build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version=" + version + " -X main.commit=" + commit + " -X main.date=" + date,
		"-o", out, "./cmd/warden"}
}

// BuildBinary builds cmd/warden from the module at repoRoot into out.
func BuildBinary(ctx context.Context, repoRoot, out string, s Spec) error {
	if err := s.check(); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", goBuildArgs(s.Version, s.Commit, s.dateString(), out)...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), goBuildEnv(s.Arch)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("image: go build: %v\n%s", err, stderr.String())
	}
	return nil
}

// tarEntry is one file or directory of a layer.
type tarEntry struct {
	name     string // without leading slash; directories end in /
	mode     int64
	uid, gid int
	data     []byte
}

// layerTar writes entries as a tar with fixed timestamps and owners, in
// the order given, so the same input gives the same bytes.
func layerTar(entries []tarEntry, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: mtime.UTC().Truncate(time.Second)}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		h.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("image: tar %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// withParents adds the parent directories of every entry (root-owned,
// 0755) before it, once.
func withParents(entries []tarEntry) []tarEntry {
	seen := map[string]bool{}
	var out []tarEntry
	for _, e := range entries {
		var parents []string
		for d := path.Dir(strings.TrimSuffix(e.name, "/")); d != "." && d != "/"; d = path.Dir(d) {
			parents = append([]string{d + "/"}, parents...)
		}
		for _, p := range parents {
			if !seen[p] {
				seen[p] = true
				out = append(out, tarEntry{name: p, mode: 0o755})
			}
		}
		if !seen[e.name] {
			seen[e.name] = true
			out = append(out, e)
		}
	}
	return out
}

func layer(entries []tarEntry, mtime time.Time) (v1.Layer, error) {
	b, err := layerTar(withParents(entries), mtime)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// BuildImage assembles the image on an empty base: a layer with the CA
// bundle, the user database and the writable directories, and a layer
// with the binary. Nothing else: no shell, no package manager.
func BuildImage(s Spec, binary, caBundle []byte) (v1.Image, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	base, err := layer([]tarEntry{
		{name: "etc/passwd", mode: 0o644, data: []byte(passwdFile)},
		{name: "etc/group", mode: 0o644, data: []byte(groupFile)},
		{name: strings.TrimPrefix(caBundlePath, "/"), mode: 0o644, data: caBundle},
		{name: "etc/warden/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: uid, gid: uid},
		{name: "tmp/", mode: 0o1777},
		{name: strings.TrimPrefix(dataDir, "/") + "/", mode: 0o700, uid: uid, gid: uid},
	}, s.Date)
	if err != nil {
		return nil, err
	}
	bin, err := layer([]tarEntry{{name: strings.TrimPrefix(binaryPath, "/"), mode: 0o755, data: binary}}, s.Date)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: s.Date.UTC()}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "warden image builder: CA bundle, users, directories"}},
		mutate.Addendum{Layer: bin, History: v1.History{Created: created, CreatedBy: "warden image builder: " + binaryPath}},
	)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = "linux", s.Arch, created
	cf.Config = v1.Config{
		User:         user,
		Entrypoint:   entrypoint,
		Cmd:          cmdArgs,
		Env:          []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=" + caBundlePath, "HOME=/home/nonroot"},
		WorkingDir:   dataDir,
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}},
		Volumes:      map[string]struct{}{dataDir: {}},
		StopSignal:   "SIGTERM",
		Labels: map[string]string{
			"org.opencontainers.image.title":    "warden",
			"org.opencontainers.image.version":  s.Version,
			"org.opencontainers.image.revision": s.Commit,
			"org.opencontainers.image.created":  s.dateString(),
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return img, nil
}

// WriteLayout writes img as an OCI image layout in dir (replacing what
// was there), its index naming it ref.
func WriteLayout(dir string, img v1.Image, ref string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image: layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		return fmt.Errorf("image: layout: %w", err)
	}
	return nil
}

// WriteTarball writes img as a `docker load` tarball tagged tag.
func WriteTarball(file string, img v1.Image, tag string) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image: tag %q: %w", tag, err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if err := tarball.WriteToFile(file, t, img); err != nil {
		return fmt.Errorf("image: tarball: %w", err)
	}
	return nil
}
