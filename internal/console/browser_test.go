package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/console/consoletest"
)

// newBrowser starts a headless Chromium (consoletest.NewBrowser).
func newBrowser(t *testing.T) context.Context { return consoletest.NewBrowser(t) }

// shotDir is where screenshots go (consoletest.ShotDir).
func shotDir(t *testing.T) string { return consoletest.ShotDir(t) }

// screenshot saves a page (consoletest.Screenshot).
func screenshot(dir, name string) chromedp.Action[chromedp.Void] {
	return consoletest.Screenshot(dir, name)
}

// TestBrowserApproveSearchVerify drives a real Chromium: bob logs in
// through the demo issuer's picker, approves alice's fine-tuning grant
// with a reason, searches alice's denied call and opens its detail,
// which shows the proof verified. No injected script ever runs.
func TestBrowserApproveSearchVerify(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t)
	dir := shotDir(t)
	shot := func(name string) chromedp.Action[chromedp.Void] { return screenshot(dir, name) }
	// The same per-page checks as the replay and keyboard tests: no
	// injected script ran; axe-core (testdata/axe.min.js, npm axe-core
	// 4.14.1, MPL-2.0) finds no serious or critical violation.
	checks := newBrowserChecks(t)
	noXSS, axe := checks.noXSS, checks.axeRun
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	reason := chromedp.ID("reason-" + e.grantID)
	step("login as bob",
		chromedp.Navigate(e.srv.URL+"/ui/approvals"),
		chromedp.WaitVisible(chromedp.ID("user-bob")),
		shot("login-demo-issuer"),
		chromedp.Click(chromedp.ID("user-bob")),
		chromedp.WaitVisible(reason),
		noXSS("approvals"),
		axe("approvals"),
		shot("approvals"))
	// Live update: a request carol opens now appears in bob's open inbox
	// (htmx polls every 10 s), and the reason bob is typing survives it.
	step("type a reason", chromedp.SendKeys(reason, "training file reviewed"))
	second, err := e.svc.RequestGrant(t.Context(), e.princ["carol"], approval.GrantRequest{SettingName: "finetune",
		Setting: e.pol.Current().Approvals()["finetune"], Justification: "second run"})
	if err != nil {
		t.Fatal(err)
	}
	step("live update", chromedp.WaitVisible(chromedp.ID("req-"+second.ID)))
	if typed, err := chromedp.Run(ctx, chromedp.Value(reason)); err != nil || typed != "training file reviewed" {
		t.Fatalf("the reason being typed after the live update: %q %v", typed, err)
	}
	// By keyboard only: from the reason, Tab reaches Approve, Enter
	// presses it.
	step("tab to approve", chromedp.Focus(reason), chromedp.KeyEvent("\t"))
	if id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`)); err != nil || id != "approve-"+e.grantID {
		t.Fatalf("Tab from the reason focused %q (%v), not the Approve button", id, err)
	}
	step("approve",
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("p.message")),
		noXSS("approvals after approve"),
		shot("approvals-approved"))
	msg := text(chromedp.CSS("p.message"))
	step("search",
		chromedp.Navigate(e.srv.URL+"/ui/search"),
		chromedp.WaitVisible(chromedp.CSS("input[name=principal]")),
		chromedp.SendKeys(chromedp.CSS("input[name=principal]"), "alice"),
		chromedp.SetValue(chromedp.CSS("select[name=kind]"), "request.denied"),
		chromedp.Submit(chromedp.CSS("input[name=principal]")),
		chromedp.WaitVisible(chromedp.CSS("#results a")),
		noXSS("search"),
		axe("search"),
		shot("search"))
	step("detail",
		chromedp.Click(chromedp.CSS("#results a")),
		chromedp.WaitVisible(chromedp.ID("proof-state")),
		noXSS("detail"),
		axe("detail"),
		shot("entry-detail"))
	proof := text(chromedp.CSS("#proof-state"))
	step("overview",
		chromedp.Navigate(e.srv.URL+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS("svg.chart")),
		noXSS("overview"),
		axe("overview"),
		shot("overview"))
	step("policy",
		chromedp.Navigate(e.srv.URL+"/ui/policy"),
		chromedp.WaitVisible(chromedp.ID("history")),
		noXSS("policy"),
		axe("policy"),
		shot("policy"))
	step("report",
		chromedp.Navigate(e.srv.URL+"/ui/report"),
		chromedp.WaitVisible(chromedp.ID("generate")),
		axe("report form"),
		shot("report-form"),
		chromedp.SetValue(chromedp.CSS("select[name=format]"), "html"),
		chromedp.Click(chromedp.ID("generate")),
		// The form page has no chart: wait for the report's.
		chromedp.WaitReady(chromedp.CSS("svg")),
		shot("report-top"))
	reportTitle, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reportTitle, "27001") {
		t.Errorf("the report button led to %q", reportTitle)
	}
	if !strings.Contains(msg, e.grantID+" approved") {
		t.Errorf("after approve: %q", msg)
	}
	if strings.TrimSpace(proof) != "verified" {
		t.Errorf("proof state %q", proof)
	}
	r, err := e.svc.Get(t.Context(), e.grantID)
	if err != nil || r.State != "approved" || r.Reviews[0].Reviewer.Subject != "bob" || r.Reviews[0].Reason != "training file reviewed" {
		t.Fatalf("the grant after the browser approved it: %v %+v", err, r)
	}
	t.Logf("screenshots in %s", dir)
}
