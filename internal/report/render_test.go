package report

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestHTMLSelfContained(t *testing.T) {
	tl := newTestLog(t)
	tl.fillScenario(t)
	r := generateScenario(t, tl, day).Report
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, s := range r.Sections {
		if !strings.Contains(html, s.Control+" "+s.Title) {
			t.Errorf("no heading %s %s", s.Control, s.Title)
		}
	}
	if n := strings.Count(html, "<svg"); n != 4 {
		t.Errorf("%d inline charts, want 4", n)
	}
	// Self-contained: no script, no external resource.
	for _, bad := range []string{"<script", "src=", "href=\"http", "@import", "url("} {
		if strings.Contains(html, bad) {
			t.Errorf("HTML has %q", bad)
		}
	}
	if !strings.Contains(html, "None: no exception in the period.") {
		t.Error("an empty exception list is not said explicitly")
	}
	if !strings.Contains(html, "self-approval attempt by alice") {
		t.Error("the self-approval exception is not shown")
	}
}

// TestPDFRenders draws the PDF, renders every page with pdftoppm and
// extracts its text with pdftotext: every control heading and every
// figure of the JSON must be in the text.
func TestPDFRenders(t *testing.T) {
	tl := newTestLog(t)
	tl.fillScenario(t)
	r := generateScenario(t, tl, day).Report
	checkPDF(t, r, "")
}

// requirePoppler skips without pdftoppm/pdftotext unless
// WARDEN_TEST_REQUIRE_POPPLER=1 (set by .ci/run).
func requirePoppler(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"pdftoppm", "pdftotext"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("WARDEN_TEST_REQUIRE_POPPLER") == "1" {
				t.Fatalf("%s not installed (poppler-utils) but WARDEN_TEST_REQUIRE_POPPLER=1", tool)
			}
			t.Skipf("%s not installed: apt-get install poppler-utils (.ci/run does)", tool)
		}
	}
}

// checkPDF renders r as PDF and checks it with poppler; with keepDir it
// also keeps the first page images there.
func checkPDF(t *testing.T, r *Report, keepDir string) {
	t.Helper()
	requirePoppler(t)
	dir := t.TempDir()
	pdf := filepath.Join(dir, "report.pdf")
	var b bytes.Buffer
	if err := WritePDF(&b, r); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pdf, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftoppm", "-r", "60", "-png", pdf, filepath.Join(dir, "page")).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("pdftoppm: %v %s", err, out)
	}
	pages, _ := filepath.Glob(filepath.Join(dir, "page-*.png"))
	if len(pages) < len(r.Sections)+1 {
		t.Fatalf("%d pages rendered, want at least %d", len(pages), len(r.Sections)+1)
	}
	text, err := exec.Command("pdftotext", "-layout", pdf, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	txt := string(text)
	for _, s := range r.Sections {
		if !strings.Contains(txt, s.Control+" "+s.Title) {
			t.Errorf("pdftotext: no heading %q", s.Control+" "+s.Title)
		}
		for _, f := range s.Figures {
			// The label and the value on one line.
			re := regexp.MustCompile(regexp.QuoteMeta(f.Label) + `\s+` + regexp.QuoteMeta(figureValue(f)))
			if !re.MatchString(txt) {
				t.Errorf("pdftotext: %s %s: no %q with value %s", s.Control, f.ID, f.Label, figureValue(f))
			}
			for _, b := range byRows(f.By) {
				re := regexp.MustCompile(regexp.QuoteMeta(b.Key) + `\s+` + fmt.Sprint(b.Value) + `\b`)
				if !re.MatchString(txt) {
					t.Errorf("pdftotext: %s %s: no %q = %d", s.Control, f.ID, b.Key, b.Value)
				}
			}
		}
	}
	if keepDir != "" {
		hi := filepath.Join(dir, "hi")
		if out, err := exec.Command("pdftoppm", "-r", "70", "-png", "-f", "1", "-l", "3", pdf, hi).CombinedOutput(); err != nil {
			t.Fatalf("pdftoppm: %v %s", err, out)
		}
		files, _ := filepath.Glob(hi + "-*.png")
		for _, f := range files {
			b, _ := os.ReadFile(f)
			name := "page-" + strings.TrimLeft(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "hi-"), ".png"), "0") + ".png"
			if err := os.WriteFile(filepath.Join(keepDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(keepDir, "sample.pdf"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
