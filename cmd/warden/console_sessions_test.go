package main

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// consoleLogin logs jar's browser in to the demo console as user through
// the demo issuer's picker (a plain HTTP client: no JavaScript needed).
func consoleLogin(t *testing.T, c *http.Client, adminURL, user string) {
	t.Helper()
	resp, err := c.Get(adminURL + "/ui/login?next=/ui/search")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "DEMO ONLY") {
		t.Fatalf("the login did not reach the demo picker: %d %s", resp.StatusCode, resp.Request.URL)
	}
	form := url.Values{"user": {user}}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(b), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	u := resp.Request.URL
	resp, err = c.PostForm(u.Scheme+"://"+u.Host+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(resp.Request.URL.Path, "/ui/search") {
		t.Fatalf("after the login: %d %s", resp.StatusCode, resp.Request.URL)
	}
}

// searchStatus is what the console's search answers the browser, without
// following a redirect to the login.
func searchStatus(t *testing.T, jar http.CookieJar, adminURL string) int {
	t.Helper()
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(adminURL + "/ui/search")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stopDemo stops a demo with Ctrl-C and waits for it.
func stopDemo(t *testing.T, d *runningDemo) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("demo exit after Ctrl-C: %v\n%s", err, d.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop after SIGINT")
	}
}

// TestConsoleSessionSurvivesRestart runs the real binary: bob logs in to
// the console, Warden stops and starts again on the same data directory
// (its sessions in warden-data/console-sessions.db), and bob's cookie
// still opens the console; after his logout it no longer does, on the
// next start either.
func TestConsoleSessionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	jar, _ := cookiejar.New(nil) // cookies ignore ports: the restarted admin listener gets them
	c := &http.Client{Jar: jar}

	d := startDemoIn(t, dir)
	admin := demoURL(t, d.out, "admin")
	consoleLogin(t, c, admin, "bob")
	if s := searchStatus(t, jar, admin); s != http.StatusOK {
		t.Fatalf("search right after the login: %d", s)
	}
	stopDemo(t, d)

	d = startDemoIn(t, dir)
	admin = demoURL(t, d.out, "admin")
	if s := searchStatus(t, jar, admin); s != http.StatusOK {
		t.Fatalf("search after the restart: %d (the session was lost)", s)
	}
	req, _ := http.NewRequest("POST", admin+"/ui/logout", nil)
	req.Header.Set("Origin", admin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	// Send the cookie by hand: logout clears it from the jar, and the
	// test must then present the old value again.
	u, _ := url.Parse(admin + "/ui/")
	old := jar.Cookies(u)
	if len(old) != 1 || old[0].Name != "warden_console" || old[0].Value == "" {
		t.Fatalf("the browser's cookies before logout: %v", old)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	stopDemo(t, d)

	d = startDemoIn(t, dir)
	admin = demoURL(t, d.out, "admin")
	replay, _ := cookiejar.New(nil)
	u, _ = url.Parse(admin + "/ui/")
	replay.SetCookies(u, old)
	if s := searchStatus(t, replay, admin); s != http.StatusSeeOther {
		t.Fatalf("the logged-out cookie after a restart: %d, want 303 to the login", s)
	}
	stopDemo(t, d)
}
