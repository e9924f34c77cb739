package console_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

var (
	segmentRE = regexp.MustCompile(`<tr data-at-ms="([0-9.]+)"><td>[^<]*</td><td>([a-z]+)</td>`)
	stateRE   = regexp.MustCompile(`id="(recording|witness|export)-state"[^>]*>([^<]*)`)
)

// states returns the text of the page's recording-, witness- and
// export-state paragraphs.
func states(body string) map[string]string {
	out := map[string]string{}
	for _, m := range stateRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// TestRequestPageReplay: the request page of alice's recorded stream
// shows the recording verified (digest equal to the terminal entry's,
// its proof checked), the whole answer and the event list with offsets
// in the HTML itself (no JavaScript needed), every payload as text, and
// the witness that cosigned the checkpoint; an erased recording says
// who erased it, when and why; without witnesses the page says so.
func TestRequestPageReplay(t *testing.T) {
	e := newReplayEnv(t, true)
	b := e.browser()
	b.login("carol", "/ui/")
	p := b.get("/ui/request/" + e.streamID)
	if p.status != 200 || !strings.HasSuffix(p.url, "/ui/entry/"+strconv.FormatInt(e.streamSeq, 10)) {
		t.Fatalf("/ui/request/%s: %d %s, want the terminal entry %d", e.streamID, p.status, p.url, e.streamSeq)
	}
	st := states(p.body)
	if st["recording"] != "verified" {
		t.Errorf("recording state %q, want verified", st["recording"])
	}
	if want := "verified against the checkpoint of size"; !strings.HasPrefix(st["witness"], want) || !strings.Contains(st["witness"], "witness.example") {
		t.Errorf("witness state %q, want %q … witness.example", st["witness"], want)
	}
	if !strings.Contains(p.body, "equals</") && !strings.Contains(p.body, "equals the digest in the terminal entry") {
		t.Errorf("the page does not say the digest equals the terminal entry's")
	}
	// The event list: request, response head, one row per event (the
	// words and [DONE]), the end — offsets never decreasing.
	segs := segmentRE.FindAllStringSubmatch(p.body, -1)
	if want := len(streamWords) + 4; len(segs) != want {
		t.Fatalf("%d rows in the event list, want %d", len(segs), want)
	}
	var last float64
	for i, m := range segs {
		at, _ := strconv.ParseFloat(m[1], 64)
		if at < last {
			t.Errorf("row %d at %v ms after %v ms", i, at, last)
		}
		last = at
	}
	if segs[0][2] != "request" || segs[2][2] != "event" || segs[len(segs)-1][2] != "end" {
		t.Errorf("row kinds %v", segs)
	}
	// The whole answer, as text: every delta, every payload escaped.
	answer := regexp.MustCompile(`(?s)<pre id="answer"[^>]*>(.*?)</pre>`).FindStringSubmatch(p.body)
	if answer == nil {
		t.Fatal("no recorded answer on the page")
	}
	if text := html.UnescapeString(answer[1]); !strings.Contains(text, strings.Join(streamWords, "")) {
		t.Errorf("the recorded answer lacks the streamed text:\n%s", text)
	}
	for _, x := range xss[:2] {
		if strings.Contains(p.body, x) {
			t.Errorf("the page holds the payload %q unescaped", x)
		}
	}
	if strings.Contains(p.body, `href="javascript:`) {
		t.Error("the page links to a javascript: URL")
	}
	if !strings.Contains(p.body, `<div id="player" class="player" hidden>`) || !strings.Contains(p.body, `<script src="/ui/static/player.js" defer></script>`) {
		t.Error("the player is not hidden until its script runs, or the script is missing")
	}
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}

	erased := b.get("/ui/request/" + e.erasedID)
	if st := states(erased.body)["recording"]; !strings.HasPrefix(st, "erased by carol at ") || !strings.Contains(st, "GDPR erasure request #42") {
		t.Errorf("erased recording state %q", st)
	}
	if strings.Contains(erased.body, "secret answer") || strings.Contains(erased.body, `id="events"`) {
		t.Error("the erased recording's content is on the page")
	}

	plain := newReplayEnv(t, false)
	pb := plain.browser()
	pb.login("carol", "/ui/")
	if st := states(pb.get("/ui/request/" + plain.streamID).body)["witness"]; !strings.HasPrefix(st, "no witness configured") {
		t.Errorf("without witnesses: %q", st)
	}
}

// TestPlayerScriptTextOnly: the player script never interprets what it
// plays as HTML.
func TestPlayerScriptTextOnly(t *testing.T) {
	e := newEnv(t)
	p := e.browser().get("/ui/static/player.js")
	if p.status != 200 || !strings.Contains(p.body, "textContent") {
		t.Fatalf("player.js: %d", p.status)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(p.body, bad) {
			t.Errorf("player.js uses %s", bad)
		}
	}
}

// TestOverviewWitnessAndExport: the overview shows the newest cosigned
// checkpoint with its witness and each export sink's lag.
func TestOverviewWitnessAndExport(t *testing.T) {
	e := newReplayEnv(t, true)
	b := e.browser()
	p := b.login("carol", "/ui/")
	st := states(p.body)
	if !strings.HasPrefix(st["witness"], "newest cosigned checkpoint, size ") || !strings.Contains(st["witness"], "witness.example") {
		t.Errorf("overview witness state %q", st["witness"])
	}
	if !strings.Contains(st["export"], "does not export") {
		t.Errorf("export state %q", st["export"])
	}
	if !regexp.MustCompile(`<tr><td>siem</td><td>0</td><td>[1-9][0-9]*</td>`).MatchString(p.body) {
		t.Errorf("no lag row for the siem sink:\n%s", p.body)
	}
}

// TestSearchFilters: the rule, outcome, masking entity and approval
// filters narrow each page to exactly the matching entries, and carry
// through "Older entries" and both downloads.
func TestSearchFilters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.princ["alice"]
	// 120 entries over several pages: every third masks an IBAN, every
	// fourth used a grant, every fifth ended upstream_error.
	want := map[string][]int64{}
	for i := range 120 {
		en := &audit.Entry{Kind: audit.KindRequestCompleted, RequestID: fmt.Sprintf("f-%d", i), Principal: alice, Route: "openai",
			Model: "demo", Status: 200, Outcome: "ok", Decision: &audit.Decision{Action: "allow", Rule: "chat"}}
		if i%3 == 0 {
			en.Masking = []audit.MaskAction{{Rule: "iban", Entity: "IBAN_CODE", Location: "response", Count: 1, Fingerprint: "ff"}}
		}
		if i%4 == 0 {
			en.GrantID = "grant-7"
			en.Decision.Rule = "finetune"
		}
		if i%5 == 0 {
			en.Outcome, en.Status = "upstream_error", 502
		}
		ref, err := e.audit.Append(ctx, en)
		if err != nil {
			t.Fatal(err)
		}
		for key, ok := range map[string]bool{"entity": i%3 == 0, "approval": i%4 == 0, "outcome": i%5 == 0, "rule+entity": i%4 == 0 && i%3 == 0} {
			if ok {
				want[key] = append(want[key], ref.Seq)
			}
		}
	}
	for _, k := range []string{"entity", "approval", "outcome", "rule+entity"} {
		slices.Reverse(want[k]) // newest first
	}
	b := e.browser()
	b.login("carol", "/ui/")
	tests := []struct {
		name, query, want string
	}{
		{"masking entity", "principal=alice&kind=request.completed&entity=iban_code", "entity"},
		{"approval involved", "principal=alice&kind=request.completed&approval=involved", "approval"},
		{"grant id", "principal=alice&kind=request.completed&approval_id=grant-7", "approval"},
		{"outcome", "principal=alice&kind=request.completed&outcome=upstream_error", "outcome"},
		{"rule and entity", "principal=alice&kind=request.completed&rule=finetune&entity=IBAN_CODE", "rule+entity"},
	}
	seqRE := regexp.MustCompile(`<tr><td><a href="/ui/entry/([0-9]+)">`)
	nextRE := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			pages := 0
			for path := "/ui/search?" + tc.query; path != ""; pages++ {
				p := b.get(path)
				if p.status != 200 {
					t.Fatalf("%s: %d", path, p.status)
				}
				for _, m := range seqRE.FindAllStringSubmatch(p.body, -1) {
					n, _ := strconv.ParseInt(m[1], 10, 64)
					got = append(got, n)
				}
				path = ""
				if m := nextRE.FindStringSubmatch(p.body); m != nil {
					path = html.UnescapeString(m[1])
					for _, kv := range strings.Split(tc.query, "&") {
						if !strings.Contains(path, kv) {
							t.Errorf("the next page's link %s lost the filter %s", path, kv)
						}
					}
				}
			}
			if pages < 2 {
				t.Errorf("%d pages: the test does not reach pagination", pages)
			}
			if !slices.Equal(got, want[tc.want]) {
				t.Errorf("pages hold %v\nwant %v", got, want[tc.want])
			}
			csvPage := b.get("/ui/search.csv?" + tc.query)
			recs, err := csv.NewReader(strings.NewReader(csvPage.body)).ReadAll()
			if err != nil || len(recs) == 0 {
				t.Fatalf("CSV: %v", err)
			}
			var csvSeqs []int64
			for _, r := range recs[1:] {
				n, _ := strconv.ParseInt(r[0], 10, 64)
				csvSeqs = append(csvSeqs, n)
			}
			if !slices.Equal(csvSeqs, want[tc.want]) {
				t.Errorf("CSV holds %v\nwant %v", csvSeqs, want[tc.want])
			}
			jl := b.get("/ui/search.jsonl?" + tc.query)
			if n := strings.Count(jl.body, "\n"); n != len(want[tc.want]) {
				t.Errorf("JSON lines: %d lines, want %d", n, len(want[tc.want]))
			}
		})
	}
	if p := b.get("/ui/search?approval=maybe"); p.status != 400 {
		t.Errorf("approval=maybe: %d, want 400", p.status)
	}
}
