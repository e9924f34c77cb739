package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/devstack"
	"github.com/wardenhq/warden/internal/recording/recordingtest"
)

// recApp is the wired app with recording on, in-process, in front of the
// demo model server (counting the requests that reach it).
type recApp struct {
	a         *app
	cfgFile   string
	data      string
	gw, admin string
	upstream  atomic.Int64
	alice     string
	carol     string
	stop      func()
	stopOnce  sync.Once
}

const recPolicy = `version: 1
rules:
  - name: chat
    when: request.path == "/v1/chat/completions"
    action: allow
    mask: default
    record: full
  - name: models
    when: request.path == "/v1/models"
    action: allow
`

// startRecApp starts the app; extra is appended to the config (a
// recordings: section).
func startRecApp(t *testing.T, extra string) *recApp {
	t.Helper()
	dir := t.TempDir()
	r := &recApp{data: filepath.Join(dir, "data")}
	issuer, idpURL, _ := startIssuer(t)
	model := devstack.NewModelServer().Handler()
	up := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.upstream.Add(1)
		model.ServeHTTP(w, req)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(ln)
	t.Cleanup(func() { up.Close() })
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(recPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: %s
routes:
  - {name: openai, path_prefix: /v1/, upstream: http://%s, profile: openai}
identity:
  issuers: [{issuer: %s, audiences: [warden]}]
policy: {file: %s, watch: false}
audit: {checkpoint_interval: 100ms}
admin:
  roles: {auditor: [ml-admins], admin: [ml-admins]}
%s`, r.data, ln.Addr(), idpURL, pf, extra)
	r.cfgFile = filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(r.cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(r.cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.a, err = newApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := r.a.server.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.a.run(ctx) }()
	r.stop = func() {
		r.stopOnce.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(r.stop)
	r.gw, r.admin = "http://"+r.a.server.Addr(), "http://"+r.a.server.AdminAddr()
	r.alice, r.carol = token(t, issuer, "alice"), token(t, issuer, "carol")
	for i := 0; i < 200; i++ {
		if resp, err := http.Get(r.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return r
}

// stream sends alice's streamed chat request and returns the request id,
// the status, and the body exactly as the client received it.
func (r *recApp) stream(t *testing.T) (string, int, []byte) {
	t.Helper()
	body := `{"model":"warden-demo-small","stream":true,"messages":[{"role":"user","content":"Show me the customer record, my card is 4111 1111 1111 1111"}]}`
	req, _ := http.NewRequest("POST", r.gw+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+r.alice)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Get("X-Request-Id"), resp.StatusCode, b
}

// terminal waits for the request's request.completed entry.
func (r *recApp) terminal(t *testing.T, reqID string) *audit.Entry {
	t.Helper()
	for i := 0; i < 300; i++ {
		es, err := r.a.audit.Search(context.Background(), audit.Query{RequestID: reqID, Kind: audit.KindRequestCompleted, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) > 0 {
			return es[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no request.completed entry for %s", reqID)
	return nil
}

// replay runs `warden replay` in-process.
func (r *recApp) replay(t *testing.T, reqID string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newReplayCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(append([]string{reqID, "--admin-url", r.admin, "--token", r.carol, "--data-dir", r.data}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// sseEvents splits an SSE body into its events (blank-line terminated).
func sseEvents(b []byte) []string {
	var out []string
	for _, ev := range strings.SplitAfter(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n") {
		if strings.TrimSpace(ev) != "" {
			out = append(out, ev)
		}
	}
	return out
}

type replayLine struct {
	Type   string  `json:"type"`
	AtMS   float64 `json:"at_ms"`
	Data   string  `json:"data"`
	Events int     `json:"events"`
}

func parseReplayJSON(t *testing.T, out string) (events []replayLine, end replayLine) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var l replayLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("replay line %q: %v", sc.Text(), err)
		}
		switch l.Type {
		case "event":
			events = append(events, l)
		case "end":
			end = l
		}
	}
	return events, end
}

// TestRecordingEndToEnd: alice's streamed, masked answer is recorded by
// the gateway; `warden replay` gives back the same text and event count
// the client saw, its digest is the one in the terminal entry (checked
// with the inclusion proof by --verify), the events come at their
// recorded offsets at --speed 1, HAR has one entry with the SSE timings,
// a byte flipped in the pack file is reported by replay --verify and by
// verify --recordings, and erasure makes the content unreadable while
// the log still verifies and names who erased, when and why.
func TestRecordingEndToEnd(t *testing.T) {
	r := startRecApp(t, "")
	reqID, status, body := r.stream(t)
	if status != 200 || reqID == "" {
		t.Fatalf("stream: %d %q %s", status, reqID, body)
	}
	clientText := sseText(string(body))
	clientEvents := sseEvents(body)
	if !strings.Contains(clientText, "[REDACTED:") || strings.Contains(clientText, "4111") {
		t.Fatalf("the client's answer is not masked: %q", clientText)
	}
	te := r.terminal(t, reqID)
	recID, digest := admin.RecordingOf(te)
	if recID == "" || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("terminal entry has no recording: %+v", te.Details)
	}

	// Same text and event count, at maximum speed.
	out, _, err := r.replay(t, reqID, "--format", "json", "--speed", "max")
	if err != nil {
		t.Fatal(err)
	}
	events, end := parseReplayJSON(t, out)
	var replayed strings.Builder
	for _, e := range events {
		replayed.WriteString(e.Data)
	}
	if got := sseText(replayed.String()); got != clientText {
		t.Errorf("replayed text %q, the client saw %q", got, clientText)
	}
	if replayed.String() != string(body) {
		t.Error("the replayed events are not byte for byte what the client received")
	}
	if len(events) != len(clientEvents) || end.Events != len(clientEvents) {
		t.Errorf("replay has %d events (end says %d), the client saw %d", len(events), end.Events, len(clientEvents))
	}
	// The request was recorded redacted.
	if strings.Contains(out, "4111") {
		t.Error("the recorded request body holds the raw card number")
	}

	// --verify: the digest is the terminal entry's, the entry is in the
	// signed log.
	out, errOut, err := r.replay(t, reqID, "--verify", "--speed", "max")
	if err != nil || !strings.Contains(errOut, "verified: recording "+recID+" has digest "+digest) {
		t.Fatalf("replay --verify: %v\n%s\n%s", err, out, errOut)
	}
	var view admin.RecordingView
	c := &admin.Client{BaseURL: r.admin, Token: r.carol}
	if err := c.Do(context.Background(), "GET", "/v1/recordings/"+reqID, nil, &view); err != nil {
		t.Fatal(err)
	}
	if view.Recording.Digest != digest || view.Verification.LogDigest != digest || view.Verification.Content != "ok" {
		t.Errorf("admin view: %+v", view)
	}

	// Offsets at --speed 1: each event is printed within 5 ms of its
	// recorded offset (measured from the player's first line). A loaded
	// machine deschedules the player for longer now and then, so the
	// replay runs up to five times and each event keeps its best run; a
	// player that ignores the timing (wrong speed, accumulating delay)
	// misses in every run.
	var best []time.Duration
	for attempt := 0; attempt < 5; attempt++ {
		offs := replayOffsets(t, r, reqID)
		if best == nil {
			best = offs
		}
		if len(offs) != len(best) {
			t.Fatalf("replay runs played %d and %d events", len(best), len(offs))
		}
		worst := time.Duration(0)
		for i, d := range offs {
			best[i] = min(best[i], d)
			worst = max(worst, best[i])
		}
		if worst <= 5*time.Millisecond {
			break
		}
	}
	for i, d := range best {
		if d > 5*time.Millisecond {
			t.Errorf("replay at speed 1: event %d was %s off its recorded offset in its best of 5 runs (> 5 ms)", i, d)
		}
	}

	// HAR: one entry, with the SSE events' timings.
	out, _, err = r.replay(t, reqID, "--format", "har")
	if err != nil {
		t.Fatal(err)
	}
	var har struct {
		Log struct {
			Version string `json:"version"`
			Entries []struct {
				SSE []struct {
					Time float64 `json:"time"`
				} `json:"_sseEvents"`
			} `json:"entries"`
		} `json:"log"`
	}
	if err := json.Unmarshal([]byte(out), &har); err != nil || har.Log.Version != "1.2" || len(har.Log.Entries) != 1 || len(har.Log.Entries[0].SSE) != len(clientEvents) {
		t.Errorf("HAR: %v %+v", err, har)
	}

	// A byte flipped in the stored object.
	flipInTree(t, filepath.Join(r.data, "recordings", "objects"), ".pack")
	out, _, err = r.replay(t, reqID, "--verify", "--speed", "max")
	if err == nil || !strings.Contains(out, "VERIFY FAILED") {
		t.Errorf("replay --verify after a byte flip: %v\n%s", err, out)
	}
	vout, err := runVerifyCmd(t, "--data-dir", r.data, "--recordings")
	if err == nil || !strings.Contains(vout, "FAILED: recording "+recID) {
		t.Errorf("verify --recordings after a byte flip: %v\n%s", err, vout)
	}

	// Erasure: a second recording, then erase alice's recordings.
	reqID2, _, _ := r.stream(t)
	r.terminal(t, reqID2)
	ecmd := newRecordingsCmd()
	var eout bytes.Buffer
	ecmd.SetOut(&eout)
	ecmd.SetArgs([]string{"erase", "--principal", "alice", "--reason", "subject access request 42", "--admin-url", r.admin, "--token", r.carol})
	if err := ecmd.Execute(); err != nil || !strings.Contains(eout.String(), "2 recordings erased") {
		t.Fatalf("erase: %v %s", err, eout.String())
	}
	if _, _, err := r.replay(t, reqID2); err == nil || !strings.Contains(err.Error(), "was erased") {
		t.Errorf("replay after erasure: %v", err)
	}
	if _, _, err := c.GetRaw(context.Background(), "/v1/recordings/"+reqID2+"/content", 1<<20); err == nil {
		t.Error("the content of an erased recording was served")
	}
	if _, err := r.a.recorder.Open(context.Background(), recID); err == nil {
		t.Error("an erased recording opened")
	}
	erased, err := r.a.audit.Search(context.Background(), audit.Query{Kind: audit.KindRecordingErased, Limit: 10})
	if err != nil || len(erased) != 2 {
		t.Fatalf("recording.erased entries: %v %d", err, len(erased))
	}
	for _, e := range erased {
		d := e.Details
		if e.Principal == nil || e.Principal.Subject != "carol" || d["erased_by"] != "carol" || d["reason"] != "subject access request 42" || d["erased_at"] == "" || d["digest"] == "" {
			t.Errorf("erasure entry does not say who, when and why: %+v %+v", e.Principal, d)
		}
	}
	// Wait for a checkpoint over the erasure entries; the log verifies.
	time.Sleep(300 * time.Millisecond)
	if vout, err := runVerifyCmd(t, "--data-dir", r.data); err != nil || !strings.Contains(vout, "OK") {
		t.Errorf("warden verify after erasure: %v\n%s", err, vout)
	}
	if vout, err := runVerifyCmd(t, "--data-dir", r.data, "--recordings"); err != nil || !strings.Contains(vout, "0 verified, 2 erased (digest kept in the log), 0 failed") {
		t.Errorf("verify --recordings after erasure: %v\n%s", err, vout)
	}
}

// replayOffsets plays the recording at speed 1 and returns, per event,
// the difference between its arrival (from the first line) and its
// recorded offset.
func replayOffsets(t *testing.T, r *recApp, reqID string) []time.Duration {
	t.Helper()
	w := &stampWriter{}
	cmd := newReplayCmd()
	cmd.SetOut(w)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{reqID, "--admin-url", r.admin, "--token", r.carol, "--format", "json", "--speed", "1"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var start time.Time
	var out []time.Duration
	for _, l := range w.lines {
		var rl replayLine
		if err := json.Unmarshal(l.b, &rl); err != nil {
			t.Fatal(err)
		}
		if rl.Type == "request" {
			start = l.at
			continue
		}
		if rl.Type != "event" {
			continue
		}
		d := l.at.Sub(start) - time.Duration(rl.AtMS*float64(time.Millisecond))
		if d < 0 {
			d = -d
		}
		out = append(out, d)
	}
	return out
}

// stampWriter notes when each write (one JSON line of the player)
// happens, in the writer's goroutine: no scheduling hop in the
// measurement.
type stampWriter struct {
	lines []struct {
		at time.Time
		b  []byte
	}
}

func (s *stampWriter) Write(p []byte) (int, error) {
	s.lines = append(s.lines, struct {
		at time.Time
		b  []byte
	}{time.Now(), bytes.Clone(p)})
	return len(p), nil
}

// flipInTree flips one byte in the middle of the first file under dir
// whose name ends in suffix.
func flipInTree(t *testing.T, dir, suffix string) {
	t.Helper()
	var path string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && path == "" && !d.IsDir() && strings.HasSuffix(p, suffix) {
			if fi, _ := d.Info(); fi != nil && fi.Size() > 0 {
				path = p
			}
		}
		return nil
	})
	if path == "" {
		t.Fatalf("no %s file under %s", suffix, dir)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	b := make([]byte, 1)
	off := fi.Size() / 2
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// runVerifyCmd runs `warden verify` in-process.
func runVerifyCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newVerifyCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// recordingSummary is details.recording of a terminal entry.
func recordingSummary(t *testing.T, e *audit.Entry) map[string]any {
	t.Helper()
	m, _ := e.Details["recording"].(map[string]any)
	if m == nil {
		t.Fatalf("terminal entry %d has no recording summary: %+v", e.Seq, e.Details)
	}
	return m
}

// TestRecordingS3 runs the gateway with recordings in S3 (versitygw): a
// byte flipped in a stored object is reported by replay --verify and by
// verify --recordings --config; with the S3 server stopped, strict mode
// answers 503 and nothing reaches the upstream, and best-effort serves
// the request and records the failure in the terminal entry.
func TestRecordingS3(t *testing.T) {
	srv := recordingtest.StartS3(t)
	s3 := func(mode string) string {
		c := srv.Config
		return fmt.Sprintf(`recordings:
  mode: %s
  store: s3
  probe_interval: 100ms
  probe_timeout: 500ms
  s3: {endpoint: %s, bucket: %s, prefix: %s/, access_key: %s, secret_key_file: %s, path_style: true, create_bucket: true, max_retries: 1}
`, mode, c.Endpoint, c.Bucket, strings.ReplaceAll(mode, "_", "-"), c.AccessKey, c.SecretKeyFile)
	}
	strict := startRecApp(t, s3("strict"))
	loose := startRecApp(t, s3("best_effort"))

	reqID, status, _ := strict.stream(t)
	if status != 200 {
		t.Fatalf("strict, S3 up: %d", status)
	}
	te := strict.terminal(t, reqID)
	if sum := recordingSummary(t, te); sum["outcome"] != "stored" {
		t.Fatalf("S3 recording: %+v", sum)
	}
	if _, _, err := strict.replay(t, reqID, "--verify", "--speed", "max"); err != nil {
		t.Fatalf("replay --verify from S3: %v", err)
	}
	flipInTree(t, filepath.Join(srv.Dir, srv.Config.Bucket), ".wrec")
	out, _, err := strict.replay(t, reqID, "--verify", "--speed", "max")
	if err == nil || !strings.Contains(out, "VERIFY FAILED") {
		t.Errorf("replay --verify after a byte flip in S3: %v\n%s", err, out)
	}
	vout, err := runVerifyCmd(t, "--data-dir", strict.data, "--recordings", "--config", strict.cfgFile)
	if err == nil || !strings.Contains(vout, "FAILED: recording") {
		t.Errorf("verify --recordings after a byte flip in S3: %v\n%s", err, vout)
	}

	srv.Stop()
	// Strict: once the probe has seen the outage, 503 and nothing
	// forwarded.
	var got503 bool
	for i := 0; i < 100 && !got503; i++ {
		before := strict.upstream.Load()
		_, status, body := strict.stream(t)
		switch status {
		case 503:
			got503 = true
			if strict.upstream.Load() != before {
				t.Error("a request refused for its recording reached the upstream")
			}
			if !strings.Contains(string(body), `"type":"unavailable"`) {
				t.Errorf("503 body: %s", body)
			}
		case 200:
			time.Sleep(50 * time.Millisecond) // forwarded before the probe saw the outage
		default:
			t.Fatalf("strict, S3 down: %d %s", status, body)
		}
	}
	if !got503 {
		t.Fatal("strict mode never refused with the S3 server down")
	}
	// Best effort: served, and the terminal entry says recording failed.
	reqID, status, body := loose.stream(t)
	if status != 200 || !strings.Contains(sseText(string(body)), "[REDACTED:") {
		t.Fatalf("best effort, S3 down: %d %s", status, body)
	}
	if sum := recordingSummary(t, loose.terminal(t, reqID)); sum["outcome"] != "failed" || sum["error"] == "" {
		t.Errorf("best effort, S3 down: terminal entry says %+v", sum)
	}
}

// TestSixtyFourConcurrentRecordedStreams: 64 streams at once through the
// gateway, every one recorded, stored and verifiable.
func TestSixtyFourConcurrentRecordedStreams(t *testing.T) {
	r := startRecApp(t, "")
	const n = 64
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, status, body := r.stream(t)
			if status != 200 || !strings.Contains(string(body), "data: [DONE]") {
				t.Errorf("stream %d: %d", i, status)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if sum := recordingSummary(t, r.terminal(t, id)); sum["outcome"] != "stored" {
			t.Errorf("request %s: recording %+v", id, sum)
		}
	}
	vout, err := runVerifyCmd(t, "--data-dir", r.data, "--recordings")
	if err != nil || !strings.Contains(vout, fmt.Sprintf("recordings: %d verified, 0 erased (digest kept in the log), 0 failed", n)) {
		t.Errorf("verify --recordings: %v\n%s", err, vout)
	}
}

// readyzStatus is the status and body of the admin listener's /readyz.
func (r *recApp) readyzStatus(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(r.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReadyz polls /readyz until it answers want (the recorder's probe
// runs every 100 ms in these tests) and returns the body.
func (r *recApp) waitReadyz(t *testing.T, want int) string {
	t.Helper()
	var code int
	var body string
	for i := 0; i < 250; i++ {
		if code, body = r.readyzStatus(t); code == want {
			return body
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("/readyz answered %d %s, want %d", code, body, want)
	return ""
}

// TestReadyzFollowsRecordingStore: with recordings.mode strict and a
// policy that records, /readyz answers 503 naming the recording store
// while the filesystem store cannot be written, and 200 again once it
// can; in best_effort mode the same outage leaves the gateway ready.
func TestReadyzFollowsRecordingStore(t *testing.T) {
	const probe = "  probe_interval: 100ms\n  probe_timeout: 500ms\n"
	for _, tc := range []struct {
		mode     string
		notReady bool
	}{{"strict", true}, {"best_effort", false}} {
		t.Run(tc.mode, func(t *testing.T) {
			r := startRecApp(t, "recordings:\n  mode: "+tc.mode+"\n"+probe)
			if code, body := r.readyzStatus(t); code != 200 {
				t.Fatalf("store writable: /readyz %d %s", code, body)
			}
			// Unwritable: the objects directory becomes a file (chmod
			// would not stop a test running as root).
			objects := filepath.Join(r.data, "recordings", "objects")
			if err := os.Rename(objects, objects+".away"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(objects, []byte("not a directory"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.notReady {
				if body := r.waitReadyz(t, 503); !strings.Contains(body, "recording store") {
					t.Errorf("/readyz while the store is unwritable: %s", body)
				}
			} else {
				time.Sleep(300 * time.Millisecond) // three probes
				if code, body := r.readyzStatus(t); code != 200 {
					t.Errorf("best_effort, store unwritable: /readyz %d %s", code, body)
				}
			}
			if err := os.Remove(objects); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(objects+".away", objects); err != nil {
				t.Fatal(err)
			}
			r.waitReadyz(t, 200)
			if _, status, _ := r.stream(t); status != 200 {
				t.Errorf("store writable again: the request got %d", status)
			}
		})
	}
}

// TestReadyzFollowsS3RecordingStore: strict mode with an S3 store;
// /readyz is 503 while the S3 server is stopped and 200 again after it
// restarts.
func TestReadyzFollowsS3RecordingStore(t *testing.T) {
	srv := recordingtest.StartS3(t)
	c := srv.Config
	r := startRecApp(t, fmt.Sprintf(`recordings:
  mode: strict
  store: s3
  probe_interval: 100ms
  probe_timeout: 500ms
  s3: {endpoint: %s, bucket: %s, prefix: readyz/, access_key: %s, secret_key_file: %s, path_style: true, create_bucket: true, max_retries: 1}
`, c.Endpoint, c.Bucket, c.AccessKey, c.SecretKeyFile))
	if code, body := r.readyzStatus(t); code != 200 {
		t.Fatalf("S3 up: /readyz %d %s", code, body)
	}
	srv.Stop()
	if body := r.waitReadyz(t, 503); !strings.Contains(body, "recording store") {
		t.Errorf("/readyz with S3 stopped: %s", body)
	}
	srv.Restart(t)
	r.waitReadyz(t, 200)
	if _, status, _ := r.stream(t); status != 200 {
		t.Errorf("S3 restarted: the request got %d", status)
	}
}
