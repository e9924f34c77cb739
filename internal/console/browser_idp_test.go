package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/identity/oidcprovidertest"
)

// TestBrowserRealIdP: Chromium logs in to the console through a real
// OpenID provider (npm oidc-provider, its development login form, then
// its consent form), code flow with PKCE; the groups of its ID token give
// bob the approver and auditor roles; alice, in another browser profile,
// lands in the console too but gets the 403 page on the auditor's search.
func TestBrowserRealIdP(t *testing.T) {
	ctx := newBrowser(t)
	e := newEnv(t)
	iss := oidcprovidertest.Start(t, "login.js", "REDIRECT_URI="+e.srv.URL+"/ui/callback")
	_, h := e.consoleOn(t, nil, console.Config{Issuer: iss, ClientID: "warden-console"})
	e.setHandler(h)
	dir := shotDir(t)

	login := func(ctx context.Context, user, next string, shots bool) {
		t.Helper()
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(e.srv.URL + next),
			chromedp.WaitVisible(chromedp.CSS("input[name=login]")),
			chromedp.SendKeys(chromedp.CSS("input[name=login]"), user),
			chromedp.SendKeys(chromedp.CSS("input[name=password]"), "any password: the dev form takes any"),
		}
		if shots {
			steps = append(steps, screenshot(dir, "login-oidc-provider"))
		}
		steps = append(steps, chromedp.Submit(chromedp.CSS("input[name=login]")),
			// oidc-provider's consent form (its dev interactions)
			chromedp.WaitReady(chromedp.CSS("input[name=prompt][value=consent]")),
			chromedp.Click(chromedp.CSS("button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS("span.who")))
		if err := chromedp.Do(ctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("login as %s (at %s): %v", user, loc, err)
		}
	}

	login(ctx, "bob", "/ui/approvals", true)
	// Read in the page in one step: a node id taken first can be gone by
	// the time its text is asked for, when the page replaces the header
	// (CI saw "No node with given id found").
	who, err := chromedp.Run(ctx, chromedp.Poll[string](`document.querySelector("span.who")?.textContent ?? ""`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(who, "bob") || !strings.Contains(who, "ml-approvers") {
		t.Errorf("bob's session shows %q", who)
	}
	// The approver sees alice's request with its review form; the auditor
	// role opens the search.
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("reason-"+e.grantID)),
		screenshot(dir, "approvals-oidc-provider"),
		chromedp.Navigate(e.srv.URL+"/ui/search"),
		chromedp.WaitVisible(chromedp.CSS("input[name=principal]"))); err != nil {
		t.Fatalf("bob in the console: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, e.srv.URL+"/ui/search") {
		t.Fatalf("bob's search landed on %s", loc)
	}

	// alice in a fresh profile: logged in, but no auditor.
	actx, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancel()
	login(actx, "alice", "/ui/search", false)
	body, err := chromedp.Run(actx, chromedp.Poll[string](`document.querySelector("main")?.textContent ?? ""`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "auditor role") {
		t.Errorf("alice on the search: %q", body)
	}
}
