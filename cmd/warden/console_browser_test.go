package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wardenhq/warden/internal/console/consoletest"
)

// demoURL returns the URL the demo printed for a component ("gateway",
// "admin", "issuer").
func demoURL(t *testing.T, out []string, name string) string {
	t.Helper()
	for _, l := range out {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == name {
			return f[1]
		}
		if len(f) >= 3 && f[0] == "demo" && f[1] == name {
			return f[2]
		}
	}
	t.Fatalf("the demo printed no %s URL:\n%s", name, strings.Join(out, "\n"))
	return ""
}

// demoToken gets a demo user's access token from the demo issuer, as the
// demo's printed curl does (client_credentials, secret "demo").
func demoToken(t *testing.T, issuerURL, user string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", issuerURL+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(user, "demo")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("demo token for %s: %d %v", user, resp.StatusCode, err)
	}
	return body.AccessToken
}

// heldCall is the outcome of alice's held HTTP call.
type heldCall struct {
	status    int
	body      string
	requestID string
	err       error
}

// TestBrowserHeldFineTuning runs the real binary (`warden demo`): alice
// starts a fine-tuning job, which the demo policy holds for an
// ml-approver (mode: hold, her HTTP call stays open); bob logs in to the
// console in Chromium, approves it in the inbox with a reason, and
// alice's call then completes with 200 from the upstream. The detail page
// of her request shows the approval chain (requested, bob's review with
// his reason, used) and the request's terminal entry.
func TestBrowserHeldFineTuning(t *testing.T) {
	ctx := consoletest.NewBrowser(t)
	dir := consoletest.ShotDir(t)
	d := startDemo(t)
	gw, adminURL, issuerURL := demoURL(t, d.out, "gateway"), demoURL(t, d.out, "admin"), demoURL(t, d.out, "issuer")
	alice := demoToken(t, issuerURL, "alice")

	done := make(chan heldCall, 1)
	go func() {
		req, _ := http.NewRequest("POST", gw+"/v1/fine_tuning/jobs", strings.NewReader(`{"model":"warden-demo-small","training_file":"file-q3"}`))
		req.Header.Set("Authorization", "Bearer "+alice)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Warden-Justification", "monthly retrain on Q3 tickets")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- heldCall{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- heldCall{status: resp.StatusCode, body: string(b), requestID: resp.Header.Get("X-Request-Id"), err: err}
	}()

	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s (at %s): %v", what, loc, err)
		}
	}
	// bob logs in at the demo issuer's picker and waits for alice's
	// request in his inbox (it polls every 10 s).
	step("bob's inbox",
		chromedp.Navigate(adminURL+"/ui/approvals"),
		chromedp.WaitVisible(chromedp.ID("user-bob")),
		chromedp.Click(chromedp.ID("user-bob")),
		chromedp.WaitVisible(chromedp.CSS(`textarea[id^="reason-"], input[id^="reason-"]`)))
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[id^="reason-"]').id.slice("reason-".length)`))
	if err != nil || id == "" {
		t.Fatalf("the pending request's id: %q %v", id, err)
	}
	select {
	case c := <-done:
		t.Fatalf("alice's call returned before any approval: %+v", c)
	default: // still held, as it must be
	}
	step("approve",
		screenshot(dir, "approvals-held"),
		chromedp.SendKeys(chromedp.ID("reason-"+id), "training file reviewed"),
		chromedp.Click(chromedp.ID("approve-"+id)),
		chromedp.WaitVisible(chromedp.CSS("p.message")))

	var c heldCall
	select {
	case c = <-done:
	case <-time.After(2 * time.Minute): // bounds a hang; not a timing assertion
		t.Fatal("alice's call did not complete after bob's approval")
	}
	if c.err != nil || c.status != http.StatusOK || !strings.Contains(c.body, "ftjob-") || c.requestID == "" {
		t.Fatalf("alice's held call: %+v", c)
	}

	// The detail of her admitted entry: the approval chain and, once the
	// completion path has written it, the terminal entry.
	step("search her request",
		chromedp.Navigate(adminURL+"/ui/search?kind=request.admitted&request_id="+url.QueryEscape(c.requestID)),
		chromedp.WaitVisible(chromedp.CSS("#results a")),
		chromedp.Click(chromedp.CSS("#results a")),
		chromedp.WaitVisible(chromedp.ID("chain")))
	detail, _ := chromedp.Run(ctx, chromedp.Location())
	var chain, related string
	for try := 0; ; try++ {
		chain, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`section[aria-labelledby="chain"]`)))
		if err != nil {
			t.Fatal(err)
		}
		related, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`section[aria-labelledby="related"]`)))
		if strings.Contains(related, "request.completed") && strings.Contains(chain, "Used") || try == 40 {
			break
		}
		time.Sleep(250 * time.Millisecond)
		step("reload the detail", chromedp.Navigate(detail), chromedp.WaitVisible(chromedp.ID("chain")))
	}
	step("screenshot", screenshot(dir, "entry-approval-chain"))
	for _, want := range []string{"Requested", "by alice", "monthly retrain on Q3 tickets", "by bob", "training file reviewed",
		"Used", "by request " + c.requestID, "State: used"} {
		if !strings.Contains(chain, want) {
			t.Errorf("the approval chain lacks %q:\n%s", want, chain)
		}
	}
	if !strings.Contains(related, "request.completed") {
		t.Errorf("the detail page shows no terminal entry:\n%s", related)
	}
	t.Logf("approval %s, request %s; screenshots in %s", id, c.requestID, dir)
}

// screenshot saves a page (consoletest.Screenshot).
func screenshot(dir, name string) chromedp.Action[chromedp.Void] {
	return consoletest.Screenshot(dir, name)
}
