package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const repoRoot = "../.."

var testSpec = Spec{
	Version: "v0.0.0-test",
	Commit:  "0123456789abcdef0123456789abcdef01234567",
	Date:    time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
	Arch:    "amd64",
}

// A small CA bundle stands in for the system's (the file's contents do
// not matter to the image, only that it is installed where Go looks).
var testCA = []byte("-----BEGIN CERTIFICATE-----\nMIIBhTCCASugAwIBAgIQIRi6zePL6mKjOipn+dNuaTAKBggqhkjOPQQDAjASMRAw\n-----END CERTIFICATE-----\n")

type file struct {
	mode     int64
	uid, gid int
	typ      byte
	size     int64
}

// TestImage builds the binary and the image as `go run ./deploy/image`
// does, opens the OCI layout it wrote and checks what is in it: the
// binary (static, runs, carries the version), uid 65532, no shell,
// entrypoint `warden serve --config …`, writable directories for a
// read-only root filesystem; the docker tarball holds the same image;
// building again gives the same digest.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the warden binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "warden")
	ctx := context.Background()
	if err := BuildBinary(ctx, repoRoot, bin, testSpec); err != nil {
		t.Fatal(err)
	}
	binData, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img, err := BuildImage(testSpec, binData, testCA)
	if err != nil {
		t.Fatal(err)
	}
	layoutDir, tarFile := filepath.Join(dir, "oci"), filepath.Join(dir, "warden.tar")
	if err := WriteLayout(layoutDir, img, testSpec.Version); err != nil {
		t.Fatal(err)
	}
	if err := WriteTarball(tarFile, img, "warden:"+testSpec.Version); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()

	// Everything below reads what was written, not the in-memory image.
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != want ||
		im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != testSpec.Version {
		t.Fatalf("layout index: %+v, want one manifest %s", im.Manifests, want)
	}
	got, err := idx.Image(want)
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := got.MediaType(); mt != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("manifest media type %s", mt)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q", c.User)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{"/usr/local/bin/warden", "serve"}) || !reflect.DeepEqual(c.Cmd, []string{"--config", "/etc/warden/warden.yaml"}) {
		t.Errorf("entrypoint %q cmd %q, want warden serve --config …", c.Entrypoint, c.Cmd)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(testSpec.Date) {
		t.Errorf("platform/created: %s/%s %s", cf.OS, cf.Architecture, cf.Created)
	}
	if c.Labels["org.opencontainers.image.revision"] != testSpec.Commit || c.Labels["org.opencontainers.image.version"] != testSpec.Version {
		t.Errorf("labels %v", c.Labels)
	}

	files, contents := listFiles(t, got)
	wantFiles := map[string]file{
		"etc":                               {0o755, 0, 0, tar.TypeDir, 0},
		"etc/passwd":                        {0o644, 0, 0, tar.TypeReg, int64(len(passwdFile))},
		"etc/group":                         {0o644, 0, 0, tar.TypeReg, int64(len(groupFile))},
		"etc/ssl":                           {0o755, 0, 0, tar.TypeDir, 0},
		"etc/ssl/certs":                     {0o755, 0, 0, tar.TypeDir, 0},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0, tar.TypeReg, int64(len(testCA))},
		"etc/warden":                        {0o755, 0, 0, tar.TypeDir, 0},
		"home":                              {0o755, 0, 0, tar.TypeDir, 0},
		"home/nonroot":                      {0o700, 65532, 65532, tar.TypeDir, 0},
		"tmp":                               {0o1777, 0, 0, tar.TypeDir, 0},
		"var":                               {0o755, 0, 0, tar.TypeDir, 0},
		"var/lib":                           {0o755, 0, 0, tar.TypeDir, 0},
		"var/lib/warden":                    {0o700, 65532, 65532, tar.TypeDir, 0},
		"usr":                               {0o755, 0, 0, tar.TypeDir, 0},
		"usr/local":                         {0o755, 0, 0, tar.TypeDir, 0},
		"usr/local/bin":                     {0o755, 0, 0, tar.TypeDir, 0},
		"usr/local/bin/warden":              {0o755, 0, 0, tar.TypeReg, int64(len(binData))},
	}
	if !reflect.DeepEqual(files, wantFiles) {
		for n, f := range files {
			if w, ok := wantFiles[n]; !ok || w != f {
				t.Errorf("image has %s %+v, want %+v", n, f, wantFiles[n])
			}
		}
		for n := range wantFiles {
			if _, ok := files[n]; !ok {
				t.Errorf("image lacks %s", n)
			}
		}
	}
	for n := range files {
		if base := filepath.Base(n); slices.Contains([]string{"sh", "bash", "ash", "dash", "busybox", "zsh"}, base) {
			t.Errorf("the image has a shell: %s", n)
		}
	}
	if !strings.Contains(string(contents["etc/passwd"]), ":65532:65532:") {
		t.Errorf("passwd: %q", contents["etc/passwd"])
	}
	for _, line := range strings.Split(strings.TrimSpace(string(contents["etc/passwd"])), "\n") {
		if !strings.HasSuffix(line, ":/sbin/nologin") {
			t.Errorf("passwd entry with a login shell: %q", line)
		}
	}
	checkBinary(t, contents["usr/local/bin/warden"], dir)

	// The docker tarball is the same image.
	ti, err := tarball.ImageFromPath(tarFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	tcn, _ := ti.ConfigName()
	gcn, _ := got.ConfigName()
	if tcn != gcn {
		t.Fatalf("tarball config %s, layout config %s", tcn, gcn)
	}
	if tags := tarballTags(t, tarFile); !reflect.DeepEqual(tags, []string{"warden:" + testSpec.Version}) {
		t.Fatalf("tarball tags %v", tags)
	}

	// Reproducible: the same inputs give the same digest, a different
	// date a different one.
	again, _ := BuildImage(testSpec, binData, testCA)
	if d, _ := again.Digest(); d != want {
		t.Fatalf("rebuilt image %s, first %s", d, want)
	}
	later := testSpec
	later.Date = later.Date.Add(time.Second)
	other, _ := BuildImage(later, binData, testCA)
	if d, _ := other.Digest(); d == want {
		t.Fatal("the date does not reach the image")
	}
}

// checkBinary: a static linux/amd64 ELF (no interpreter, no shared
// libraries) that runs and reports the version it was built with, and
// links none of the test-only deployment libraries.
func checkBinary(t *testing.T, b []byte, dir string) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != elf.EM_X86_64 {
		t.Errorf("machine %v", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("not a static binary: program header %v", p.Type)
		}
	}
	bi, err := buildinfo.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["GOOS"] != "linux" {
		t.Errorf("build settings %v", settings)
	}
	for _, d := range bi.Deps {
		if strings.HasPrefix(d.Path, "helm.sh/") || strings.HasPrefix(d.Path, "k8s.io/") || strings.HasPrefix(d.Path, "github.com/google/go-containerregistry") {
			t.Errorf("the warden binary links %s (a deployment-test dependency)", d.Path)
		}
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		return
	}
	p := filepath.Join(dir, "warden-from-image")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(p, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "warden v0.0.0-test\ncommit: 0123456789abcdef0123456789abcdef01234567\nbuilt:  2026-11-30T12:00:00Z\n"
	if !strings.HasPrefix(string(out), want) {
		t.Fatalf("warden version printed %q, want it to start %q", out, want)
	}
}

// listFiles flattens the image's layers (as a runtime would) and returns
// every entry with its metadata, and the contents of regular files.
func listFiles(t *testing.T, img v1.Image) (map[string]file, map[string][]byte) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files, contents := map[string]file{}, map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = file{mode: h.Mode, uid: h.Uid, gid: h.Gid, typ: h.Typeflag, size: h.Size}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			contents[h.Name] = b
		}
	}
	return files, contents
}

func tarballTags(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no manifest.json in the tarball: %v", err)
		}
		if h.Name == "manifest.json" {
			var m tarball.Manifest
			if err := json.NewDecoder(tr).Decode(&m); err != nil {
				t.Fatal(err)
			}
			if len(m) != 1 {
				t.Fatalf("manifest.json has %d images", len(m))
			}
			return m[0].RepoTags
		}
	}
}

// dockerfile is deploy/Dockerfile, its continuation lines joined.
func dockerfile(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || (l == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	return lines
}

// shellWords splits a command line the way sh does for the simple
// quoting a Dockerfile RUN uses (double and single quotes, no expansion).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

// TestDockerfileMatchesBuilder reads deploy/Dockerfile and checks that it
// builds the binary with exactly the builder's environment and go build
// flags, on the toolchain go.mod names, and assembles the same image:
// empty base, same user, entrypoint, command, environment and
// directories.
func TestDockerfileMatchesBuilder(t *testing.T) {
	lines := dockerfile(t)
	var builds [][]string
	var final []string
	for _, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			final = nil
		}
		final = append(final, l)
		if strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			words := shellWords(strings.TrimPrefix(l, "RUN "))
			for len(words) > 0 && strings.HasPrefix(words[0], "--") { // RUN --mount=…
				words = words[1:]
			}
			builds = append(builds, words)
		}
	}
	if len(builds) != 1 {
		t.Fatalf("want one RUN with go build, found %d", len(builds))
	}
	words := builds[0]
	i := slices.Index(words, "go")
	if i < 0 {
		t.Fatalf("no go command in %q", words)
	}
	env, args := words[:i], words[i+1:]
	if want := goBuildEnv("${TARGETARCH}"); !reflect.DeepEqual(env, want) {
		t.Errorf("Dockerfile go build environment %q, builder's %q", env, want)
	}
	if want := goBuildArgs("${VERSION}", "${COMMIT}", "${DATE}", "/out/warden"); !reflect.DeepEqual(args, want) {
		t.Errorf("Dockerfile go build arguments\n  %q\nbuilder's\n  %q", args, want)
	}

	// The toolchain: the golang image's version is go.mod's.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goVer == nil || !slices.Contains(lines, "FROM golang:"+string(goVer[1])+"-bookworm AS build") {
		t.Errorf("the build stage must be FROM golang:%s-bookworm (go.mod's version)", goVer[1])
	}

	img, err := BuildImage(testSpec, []byte("binary"), testCA)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	c := cf.Config
	jsonArr := func(v []string) string { b, _ := json.Marshal(v); return strings.ReplaceAll(string(b), `","`, `", "`) }
	ports := make([]string, 0, len(c.ExposedPorts))
	for p := range c.ExposedPorts {
		ports = append(ports, p)
	}
	sort.Strings(ports)
	want := []string{
		"FROM scratch",
		"USER " + c.User,
		"WORKDIR " + c.WorkingDir,
		"VOLUME " + dataDir,
		"ENV " + strings.Join(c.Env, " "),
		"EXPOSE " + strings.Join(ports, " "),
		"STOPSIGNAL " + c.StopSignal,
		"ENTRYPOINT " + jsonArr(c.Entrypoint),
		"CMD " + jsonArr(c.Cmd),
		"COPY --from=build --chmod=0755 /out/warden " + binaryPath,
		"COPY --from=build --chown=65532:65532 --chmod=0700 /rootfs/empty/ /var/lib/warden/",
		"COPY --from=build --chown=65532:65532 --chmod=0700 /rootfs/empty/ /home/nonroot/",
		"COPY --from=build --chmod=1777 /rootfs/empty/ /tmp/",
	}
	for _, w := range want {
		if !slices.Contains(final, w) {
			t.Errorf("the Dockerfile's final stage lacks %q", w)
		}
	}
	joined := strings.Join(lines, "\n")
	for _, w := range []string{strings.TrimSuffix(passwdFile, "\n"), strings.TrimSuffix(groupFile, "\n"), "cp /etc/ssl/certs/ca-certificates.crt /rootfs" + caBundlePath} {
		w = strings.ReplaceAll(w, "\n", `\n`)
		if !strings.Contains(joined, w) {
			t.Errorf("the Dockerfile does not write %q", w)
		}
	}
}

func TestSpecCheck(t *testing.T) {
	for _, bad := range []Spec{
		{Version: "v1 -X main.commit=evil", Commit: "c", Date: testSpec.Date, Arch: "amd64"},
		{Version: "v1", Commit: "$(id)", Date: testSpec.Date, Arch: "amd64"},
		{Version: "v1", Commit: "c", Arch: "amd64"},
		{Version: "v1", Commit: "c", Date: testSpec.Date, Arch: "386"},
	} {
		if _, err := BuildImage(bad, nil, nil); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestCommandLine runs the command as `go run ./image` would, with a
// prebuilt binary: it writes the layout and the tarball, and refuses a
// missing date source and a bad version.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "warden")
	ca := filepath.Join(dir, "ca.pem")
	for p, b := range map[string][]byte{bin: []byte("\x7fELF not really"), ca: testCA} {
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "dist")
	args := []string{"-out", out, "-binary", bin, "-ca-bundle", ca, "-version", "v9.9.9", "-commit", testSpec.Commit, "-date", "2026-11-30T12:00:00Z"}
	if err := run(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 {
		t.Fatalf("layout has %d images", len(im.Manifests))
	}
	if _, err := tarball.ImageFromPath(filepath.Join(out, "warden-v9.9.9-linux-amd64.tar"), nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1764504000")
	if err := run(context.Background(), []string{"-out", filepath.Join(dir, "d2"), "-binary", bin, "-ca-bundle", ca, "-version", "v1", "-commit", "c"}); err != nil {
		t.Fatalf("SOURCE_DATE_EPOCH as the date: %v", err)
	}
	if err := run(context.Background(), []string{"-out", filepath.Join(dir, "d3"), "-binary", bin, "-ca-bundle", ca, "-version", "v1 bad", "-commit", "c"}); err == nil {
		t.Fatal("a version with a space was accepted")
	}
}
