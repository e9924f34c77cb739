package report

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

// scenarioBundle writes the scenario's bundle for the day.
func scenarioBundle(t *testing.T) ([]byte, *testLog) {
	t.Helper()
	tl := newTestLog(t)
	tl.fillScenario(t)
	res := generateScenario(t, tl, day)
	var b bytes.Buffer
	if err := WriteBundle(context.Background(), &b, res, BundleOptions{VerifierKey: verifierKey(t, tl)}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), tl
}

func verifierKey(t *testing.T, tl *testLog) string {
	t.Helper()
	_, vpath := audit.KeyPaths(tl.dir)
	b, err := os.ReadFile(vpath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unpack and repack a bundle, letting mod change its files; with fix the
// manifest is rewritten to match (a forger who edits the manifest too).
func repack(t *testing.T, bundle []byte, fix bool, mod func(files map[string][]byte)) []byte {
	t.Helper()
	files, err := readTarGz(bytes.NewReader(bundle), 0)
	if err != nil {
		t.Fatal(err)
	}
	mod(files)
	if fix {
		var m Manifest
		if err := json.Unmarshal(files[fileManifest], &m); err != nil {
			t.Fatal(err)
		}
		m.Files = nil
		for p, b := range files {
			if p == fileManifest {
				continue
			}
			sum := sha256.Sum256(b)
			m.Files = append(m.Files, ManifestFile{Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))})
		}
		sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
		files[fileManifest] = mustJSON(m)
	}
	var out bytes.Buffer
	gz := gzip.NewWriter(&out)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(files[p])), Typeflag: tar.TypeReg})
		tw.Write(files[p])
	}
	tw.Close()
	gz.Close()
	return out.Bytes()
}

func TestBundleVerifies(t *testing.T) {
	b, tl := scenarioBundle(t)
	res, err := VerifyBundle(context.Background(), bytes.NewReader(b), BundleVerifyOptions{Verifier: tl.v})
	if err != nil {
		t.Fatal(err)
	}
	if res.PeriodEntries != 30 || res.Entries != 30 || res.Figures < 40 || res.Proofs == 0 || res.UsedBundledKey {
		t.Fatalf("%+v", res)
	}
	files, _ := readTarGz(bytes.NewReader(b), 0)
	for _, p := range []string{fileManifest, fileEntries, fileCheckpoints, fileProofs, fileVerifier, filePolicies, fileDigests, fileReportJSON, fileReportHTML, fileReportPDF} {
		if len(files[p]) == 0 {
			t.Errorf("bundle has no %s", p)
		}
	}
	// Without a key the bundle's own is used, and said so.
	res, err = VerifyBundle(context.Background(), bytes.NewReader(b), BundleVerifyOptions{})
	if err != nil || !res.UsedBundledKey {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestBundleTampering: each change is refused with a message naming it,
// both when the manifest is left alone and when the forger rewrites it.
func TestBundleTampering(t *testing.T) {
	b, tl := scenarioBundle(t)
	replaceLine := func(files map[string][]byte, name string, pick func(line string) bool, with func(line string) string) {
		lines := strings.Split(string(files[name]), "\n")
		for i, l := range lines {
			if pick(l) {
				if n := with(l); n == "" {
					lines = append(lines[:i], lines[i+1:]...)
				} else {
					lines[i] = n
				}
				files[name] = []byte(strings.Join(lines, "\n"))
				return
			}
		}
		t.Fatalf("no line to change in %s", name)
	}
	isEntry := func(seq string) func(string) bool {
		return func(l string) bool { return strings.HasPrefix(l, `{"seq":`+seq+`,`) }
	}
	cases := []struct {
		name string
		mod  func(files map[string][]byte)
		want string // in the error when the manifest was rewritten
	}{
		{"entry removed", func(f map[string][]byte) {
			replaceLine(f, fileEntries, isEntry("12"), func(string) string { return "" })
		}, "entries.jsonl"},
		{"entry altered", func(f map[string][]byte) {
			replaceLine(f, fileEntries, isEntry("14"), func(l string) string { return strings.Replace(l, "chat-unapproved-model", "chat-approved-model!!", 1) })
		}, "entries.jsonl"},
		{"figure edited", func(f map[string][]byte) {
			var r map[string]any
			json.Unmarshal(f[fileReportJSON], &r)
			secs := r["sections"].([]any)
			for _, s := range secs {
				s := s.(map[string]any)
				if s["control"] == "A.8.3" {
					fig := s["figures"].([]any)[0].(map[string]any)
					fig["value"] = 0
					fig["by"] = map[string]any{}
				}
			}
			f[fileReportJSON], _ = json.Marshal(r)
		}, "A.8.3: figure denials_by_rule (Denials by rule): the report says 0, the entries give 1"},
		{"checkpoint swapped for an older one", func(f map[string][]byte) {
			var cf checkpointsFile
			json.Unmarshal(f[fileCheckpoints], &cf)
			cf.Checkpoints[len(cf.Checkpoints)-1] = cf.Checkpoints[0]
			f[fileCheckpoints] = mustJSON(cf)
		}, "a checkpoint was swapped or removed"},
		{"file left out of the manifest", func(f map[string][]byte) {
			f["extra/notes.txt"] = []byte("added later")
		}, ""},
		{"file removed", func(f map[string][]byte) { delete(f, fileReportPDF) }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, fix := range []bool{false, true} {
				if c.want == "" && fix {
					continue
				}
				tampered := repack(t, b, fix, c.mod)
				_, err := VerifyBundle(context.Background(), bytes.NewReader(tampered), BundleVerifyOptions{Verifier: tl.v})
				var be *BundleError
				if !errors.As(err, &be) {
					t.Fatalf("fix manifest %v: accepted or wrong error: %v", fix, err)
				}
				want := c.want
				if !fix {
					switch c.name {
					case "file left out of the manifest":
						want = "file extra/notes.txt is in the bundle but not in the manifest"
					case "file removed":
						want = "file report/report.pdf is in the manifest but not in the bundle"
					default:
						want = "does not match the manifest"
					}
				}
				if !strings.Contains(be.Msg, want) {
					t.Errorf("fix manifest %v: %q does not name the problem (%q)", fix, be.Msg, want)
				}
				t.Logf("fix manifest %v: %s", fix, be.Msg)
			}
		})
	}
}

func TestBundleMalformed(t *testing.T) {
	for _, in := range [][]byte{nil, []byte("not gzip"), gzipOf([]byte("not tar"))} {
		_, err := VerifyBundle(context.Background(), bytes.NewReader(in), BundleVerifyOptions{})
		var be *BundleError
		if !errors.As(err, &be) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func gzipOf(b []byte) []byte {
	var out bytes.Buffer
	gz := gzip.NewWriter(&out)
	gz.Write(b)
	gz.Close()
	return out.Bytes()
}
