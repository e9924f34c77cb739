// Package consoletest holds what the console's browser tests share with
// the end-to-end tests of cmd/warden: a headless Debian Chromium driven
// by chromedp, and screenshots. Only tests import it.
package consoletest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's Chromium (apt-get install chromium).
const ChromiumPath = "/usr/bin/chromium"

// NewBrowser starts a headless Chromium with a fresh profile, or skips
// (fails when WARDEN_TEST_REQUIRE_CHROMIUM=1, as in CI). The browser
// stops at the end of the test.
func NewBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("WARDEN_TEST_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("%s is required (WARDEN_TEST_REQUIRE_CHROMIUM=1): %v", ChromiumPath, err)
		}
		t.Skipf("skipping the browser test: %s is absent (apt-get install chromium)", ChromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// Generous: the machine may be loaded; this bounds a hang, it is no
	// timing assertion.
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// ShotDir is where screenshots go: WARDEN_CONSOLE_SCREENSHOTS (docs/console
// to refresh the documentation), else the test's temporary directory.
func ShotDir(t *testing.T) string {
	if d := os.Getenv("WARDEN_CONSOLE_SCREENSHOTS"); d != "" {
		return d
	}
	return t.TempDir()
}

// Screenshot saves the whole page as dir/name.png; a name ending in
// "-top" only the viewport (the report is 12 000 pixels tall).
func Screenshot(dir, name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		capture := chromedp.FullScreenshot(100) // 100: PNG (lower is JPEG)
		if strings.HasSuffix(name, "-top") {
			capture = chromedp.CaptureScreenshot()
		}
		b, err := capture(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Void{}, os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644)
	}
}
