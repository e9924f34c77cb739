package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/devstack"
)

// runningDemo is a `warden demo` process started as a new user would.
type runningDemo struct {
	cmd    *exec.Cmd
	out    []string // stdout lines up to "Ctrl-C stops the demo."
	stderr *bytes.Buffer
	done   chan error
}

func startDemo(t *testing.T) *runningDemo {
	t.Helper()
	return startDemoIn(t, t.TempDir())
}

// startDemoIn starts `warden demo` in dir (its data under dir/warden-data).
func startDemoIn(t *testing.T, dir string) *runningDemo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, wardenBin, "demo",
		"--gateway-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--issuer-addr", "127.0.0.1:0", "--model-addr", "127.0.0.1:0")
	cmd.Dir = dir // data goes under ./warden-data, as for a new user
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &runningDemo{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		d.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited early; stdout:\n%s\nstderr:\n%s", strings.Join(d.out, "\n"), d.stderr)
			}
			d.out = append(d.out, l)
			if l == "Ctrl-C stops the demo." {
				go func() {
					for l := range lines {
						_ = l
					}
				}()
				return d
			}
		case <-timeout:
			t.Fatalf("demo did not print its examples; stderr:\n%s", d.stderr)
		}
	}
}

type demoExample struct {
	title string
	cmds  []string
}

var stepTitle = regexp.MustCompile(`^# \d+\. (.*)$`)

func (d *runningDemo) examples() []demoExample {
	var ex []demoExample
	for _, l := range d.out {
		if m := stepTitle.FindStringSubmatch(l); m != nil {
			ex = append(ex, demoExample{title: m[1]})
		} else if c, ok := strings.CutPrefix(l, "$ "); ok && len(ex) > 0 {
			ex[len(ex)-1].cmds = append(ex[len(ex)-1].cmds, c)
		}
	}
	return ex
}

// TestDemoCommandsWorkVerbatim runs `warden demo`, takes the curl commands
// it printed, runs them verbatim in one shell, and checks each answer.
func TestDemoCommandsWorkVerbatim(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed; .ci/run installs it")
	}
	d := startDemo(t)
	ex := d.examples()
	if len(ex) < 4 {
		t.Fatalf("demo printed %d examples:\n%s", len(ex), strings.Join(d.out, "\n"))
	}
	checkConsoleURL(t, d.out)
	// One shell, so that variables set by one command (a token) are there
	// for the next; markers split the output per command.
	var script strings.Builder
	script.WriteString("set -o pipefail\n")
	var idx []string
	for i, e := range ex {
		for j, c := range e.cmds {
			if strings.Contains(e.title, "approval chain") {
				// request.completed is written after the answer has
				// gone out (the completion path runs in the
				// background); on a loaded machine the next command can
				// come first. A reader pasting commands is slower.
				c = "for try in $(seq 40); do out=$(" + c + "); case \"$out\" in *request.completed*) break;; esac; sleep 0.25; done; printf '%s\\n' \"$out\""
			}
			fmt.Fprintf(&script, "echo '@@@ %d %d'\n%s\necho \"@@@rc $?\"\n", i, j, c)
			idx = append(idx, e.title)
		}
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = d.cmd.Dir
	outB, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("shell: %v\n%s", err, outB)
	}
	parts := strings.Split(string(outB), "@@@ ")[1:]
	if len(parts) != len(idx) {
		t.Fatalf("ran %d commands, got %d outputs:\n%s", len(idx), len(parts), outB)
	}
	outputs := map[string]string{}
	for k, p := range parts {
		title := idx[k]
		body, rc, _ := strings.Cut(p, "@@@rc ")
		if strings.TrimSpace(rc) != "0" {
			t.Errorf("%q: exit status %s\n%s", title, strings.TrimSpace(rc), body)
		}
		outputs[title] += body
	}
	for _, e := range ex {
		checkDemoOutput(t, e.title, outputs[e.title])
	}

	// Ctrl-C stops it cleanly.
	stopDemo(t, d)
}

// demoExpectations: for each example (matched by a word of its title),
// what its output must contain and must not contain.
var demoExpectations = []struct {
	titleHas string
	want     []string
	wantNot  []string
}{
	{"Get access tokens", []string{"alice's token: ey", "bob's token: ey", "carol's token: ey"}, nil},
	{"Fine-tuning", []string{"pending approval: ", `"object":"fine_tuning.job"`, `"status":"queued"`}, nil},
	{"approval chain", []string{"approval.requested", "approval.approved", "approval.used", "request.admitted", "request.completed"}, nil},
	{"Bulk export", []string{"HTTP/1.1 202", "Retry-After", `"approval_id"`}, nil},
	{"No token", []string{"HTTP/1.1 401", `Www-Authenticate: Bearer realm="warden"`}, nil},
	{"alice chats", []string{`"object":"chat.completion"`, "[REDACTED:"}, demoRawPII},
	{"streamed", []string{"data: [DONE]"}, demoRawPII},
	{"unapproved model", []string{`"type":"forbidden"`, `"rule":"chat-unapproved-model"`}, nil},
	{"admin routes", []string{`"rule":"admin-routes-others"`, `"fine_tuning_jobs"`}, nil},
	{"Ambiguous paths", []string{`"type":"bad_request"`}, nil},
	{"admin API", []string{`"kind":"request.denied"`, `"rule":"chat-unapproved-model"`, `"policy_version":"sha256:`}, nil},
	{"verify it offline", []string{"OK"}, nil},
	{"Replay alice's masked chat stream", []string{"request ", "verified: recording", "[REDACTED:", "22 events", "replay it in the console: http"}, demoRawPII},
	{"Health, readiness", []string{`"status":"ready"`, "warden_requests_total{"}, nil},
	{"evidence report", []string{"wrote evidence bundle warden-evidence.tar.gz", "wrote warden-report.html (html)", "figures recomputed", "OK"}, nil},
}

// demoRawPII are the demo model server's fake PII values: none may reach
// the caller, whole or split across stream events.
var demoRawPII = []string{devstack.DemoPII.Card, devstack.DemoPII.Email, devstack.DemoPII.Phone, devstack.DemoPII.IBAN, "4111", "jane.doe"}

// sseText concatenates the delta contents of an OpenAI chat stream, so a
// value split across events is checked whole.
func sseText(out string) string {
	var b strings.Builder
	for _, line := range strings.Split(out, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ev struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal([]byte(data), &ev) == nil {
			for _, c := range ev.Choices {
				b.WriteString(c.Delta.Content)
			}
		}
	}
	return b.String()
}

func checkDemoOutput(t *testing.T, title, out string) {
	t.Helper()
	if strings.Contains(title, "streamed") {
		text := sseText(out)
		if !strings.Contains(text, "[REDACTED:") {
			t.Errorf("%q: reassembled stream text shows no masking: %q", title, text)
		}
		for _, raw := range demoRawPII {
			if strings.Contains(text, raw) {
				t.Errorf("%q: reassembled stream text contains raw %q: %q", title, raw, text)
			}
		}
	}
	if strings.TrimSpace(out) == "" {
		t.Errorf("%q printed nothing", title)
		return
	}
	for _, e := range demoExpectations {
		if !strings.Contains(title, e.titleHas) {
			continue
		}
		for _, w := range e.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q: output lacks %q:\n%s", title, w, out)
			}
		}
		for _, w := range e.wantNot {
			if strings.Contains(out, w) {
				t.Errorf("%q: output contains %q:\n%s", title, w, out)
			}
		}
	}
}

// checkConsoleURL: the demo prints the console's URL, and it answers
// with the login redirect (then the demo issuer's picker).
func checkConsoleURL(t *testing.T, out []string) {
	t.Helper()
	var consoleURL string
	for _, l := range out {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "console" {
			consoleURL = f[1]
		}
	}
	if !strings.HasSuffix(consoleURL, "/ui/") {
		t.Fatalf("the demo printed no console URL:\n%s", strings.Join(out, "\n"))
	}
	resp, err := http.Get(consoleURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "DEMO ONLY") {
		t.Fatalf("console URL %s led to %d %s:\n%s", consoleURL, resp.StatusCode, resp.Request.URL, b)
	}
}
