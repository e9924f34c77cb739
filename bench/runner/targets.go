package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/bench/configs"
	"github.com/wardenhq/warden/bench/loadgen"
	"github.com/wardenhq/warden/bench/nginx"
	"github.com/wardenhq/warden/bench/upstream"
)

// Target kinds.
const (
	KindDirect = "direct"
	KindFloor  = "floor"
	KindNginx  = "nginx"
	KindWarden = "warden"
)

// Target is one thing the harness measures.
type Target struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Summary string `json:"summary"`
	// BaseURL is where requests go, e.g. http://127.0.0.1:41234.
	BaseURL string `json:"base_url,omitempty"`
	// Unavailable says why the target was not measured ("" when it was).
	Unavailable string `json:"unavailable,omitempty"`
	// Config is the rendered config file, when the target has one.
	Config string `json:"config,omitempty"`
	// PeakRSS is the peak resident set of the proxy process(es), bytes.
	PeakRSS int64 `json:"peak_rss_bytes,omitempty"`

	proc  *Proc
	admin string
	pprof string // base URL of the pprof listener (-profile builds only)
	// sinkPID is the export stage's sink server on this machine (the
	// NATS server), 0 when there is none or it was not found: its CPU
	// is reported apart from other load (listenerPID).
	sinkPID int
}

// Available reports whether the target is measured.
func (t *Target) Available() bool { return t.Unavailable == "" }

func (t *Target) pid() int {
	if t.proc == nil {
		return 0
	}
	return t.proc.PID()
}

func (t *Target) stop() {
	if t.proc == nil {
		return
	}
	if rss, err := PeakRSS(t.proc.PID()); err == nil && rss > 0 {
		t.PeakRSS = rss
	}
	t.proc.Stop()
}

// env is the shared fixture of one run: temp dir, upstream, issuer, token.
type env struct {
	dir       string
	self      string
	root      string
	upURL     string
	upProc    *Proc
	issuer    *upstream.Issuer
	issuerSrv *http.Server
	token     string
	logf      func(string, ...any)
	profile   bool // build Warden with the pprof overlay
	// natsStreams are the JetStream streams export stages created,
	// deleted at the end of the run.
	natsStreams []string
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (e *env) startUpstream(ctx context.Context, o Options) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	p, err := StartProc("upstream", e.dir, e.self, "upstream", "-listen", addr,
		"-deltas", fmt.Sprint(o.StreamDeltas), "-pace", o.StreamPace.String())
	if err != nil {
		return err
	}
	e.upProc = p
	e.upURL = "http://" + addr
	if err := WaitReady(ctx, p, e.upURL+"/healthz", 10*time.Second); err != nil {
		return fmt.Errorf("upstream: %w\n%s", err, p.Tail(5))
	}
	return nil
}

func (e *env) startIssuer() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	iss, err := upstream.NewIssuer("http://" + l.Addr().String())
	if err != nil {
		l.Close()
		return err
	}
	e.issuer = iss
	e.issuerSrv = &http.Server{Handler: iss.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.issuerSrv.Serve(l) }()
	tok, err := iss.Mint("bench-user", []string{"ml-users"}, "warden", 2*time.Hour)
	if err != nil {
		return err
	}
	e.token = tok
	return nil
}

func (e *env) close() {
	if e.issuerSrv != nil {
		_ = e.issuerSrv.Close()
	}
	e.upProc.Stop()
	for _, name := range e.natsStreams {
		deleteNATSStream(natsURL(), name)
	}
}

func (e *env) direct() *Target {
	return &Target{Name: "direct", Kind: KindDirect, Summary: "the fake upstream, no proxy", BaseURL: e.upURL}
}

func (e *env) startFloor(ctx context.Context) *Target {
	t := &Target{Name: "go-floor", Kind: KindFloor, Summary: "do-nothing httputil.ReverseProxy (Rewrite, full duplex, 512 idle conns)"}
	addr, err := freeAddr()
	if err != nil {
		t.Unavailable = err.Error()
		return t
	}
	p, err := StartProc("go-floor", e.dir, e.self, "floor", "-listen", addr, "-upstream", e.upURL)
	if err != nil {
		t.Unavailable = err.Error()
		return t
	}
	t.proc, t.BaseURL = p, "http://"+addr
	if err := WaitReady(ctx, p, t.BaseURL+"/healthz", 10*time.Second); err != nil {
		t.Unavailable = fmt.Sprintf("did not start: %v", err)
		p.Stop()
	}
	return t
}

func (e *env) startNginx(ctx context.Context) *Target {
	t := &Target{Name: "nginx", Kind: KindNginx, Summary: "nginx proxy_pass, upstream keepalive, proxy_buffering off"}
	bin, err := nginx.Ensure(e.logf)
	if err != nil {
		t.Unavailable = err.Error()
		e.logf("note: %v", err)
		return t
	}
	addr, err := freeAddr()
	if err != nil {
		t.Unavailable = err.Error()
		return t
	}
	dir := filepath.Join(e.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Unavailable = err.Error()
		return t
	}
	argv, err := nginx.Prepare(bin, nginx.Config{Dir: dir, Listen: addr, Upstream: strings.TrimPrefix(e.upURL, "http://"), Workers: runtime.NumCPU()})
	if err != nil {
		t.Unavailable = err.Error()
		return t
	}
	t.Config = filepath.Join(dir, "nginx.conf")
	p, err := StartProc("nginx", e.dir, argv...)
	if err != nil {
		t.Unavailable = err.Error()
		return t
	}
	t.proc, t.BaseURL = p, "http://"+addr
	if err := WaitReady(ctx, p, t.BaseURL+"/healthz", 10*time.Second); err != nil {
		t.Unavailable = fmt.Sprintf("did not start: %v: %s", err, tailFile(filepath.Join(dir, "error.log"), 3))
		p.Stop()
	}
	return t
}

// pprofOverlay is added to package main of the Warden build when the run
// profiles: it serves net/http/pprof on the address in $WARDENBENCH_PPROF
// (a loopback port of its own, never the gateway or admin listener). It
// is compiled in through `go build -overlay`, so the repository's sources
// are untouched and the request path is the same as in any build.
const pprofOverlay = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("WARDENBENCH_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// buildWarden builds ./cmd/warden into the run directory.
func (e *env) buildWarden(ctx context.Context, pkg string) (string, error) {
	bin := filepath.Join(e.dir, "warden")
	args := []string{"build", "-o", bin}
	if e.profile {
		src := filepath.Join(e.dir, "wardenbench_pprof.go")
		if err := os.WriteFile(src, []byte(pprofOverlay), 0o644); err != nil {
			return "", err
		}
		target := filepath.Join(e.root, filepath.FromSlash(strings.TrimPrefix(pkg, "./")), "zz_wardenbench_pprof.go")
		ov, _ := json.Marshal(map[string]map[string]string{"Replace": {target: src}})
		ovFile := filepath.Join(e.dir, "overlay.json")
		if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
			return "", err
		}
		args = append(args, "-overlay", ovFile)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = e.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s failed: %v: %s", pkg, err, firstLines(out, 4))
	}
	return bin, nil
}

// startWarden renders the stage's config, starts the gateway and checks
// it forwards a chat call and a whole stream. Any failure makes the
// target unavailable with the reason.
func (e *env) startWarden(ctx context.Context, bin string, st configs.Stage) *Target {
	t := &Target{Name: st.Name, Kind: KindWarden, Summary: st.Summary}
	fail := func(format string, args ...any) *Target {
		t.Unavailable = "not available in this build: " + fmt.Sprintf(format, args...)
		if t.proc != nil {
			t.proc.Stop()
			t.proc = nil
		}
		return t
	}
	listen, err1 := freeAddr()
	admin, err2 := freeAddr()
	if err := errors.Join(err1, err2); err != nil {
		return fail("%v", err)
	}
	sdir := filepath.Join(e.dir, st.Name)
	if err := os.MkdirAll(filepath.Join(sdir, "data"), 0o755); err != nil {
		return fail("%v", err)
	}
	d := configs.Data{
		Listen: listen, AdminListen: admin, DataDir: filepath.Join(sdir, "data"),
		Upstream: e.upURL, IssuerURL: e.issuer.URL,
	}
	if st.Export {
		d.NATSURL = natsURL()
		if err := natsReachable(d.NATSURL); err != nil {
			return fail("the export stage needs NATS JetStream (set WARDENBENCH_NATS): %v", err)
		}
		d.NATSStream = "WARDENBENCH_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		d.NATSSubject = "wardenbench." + strings.ToLower(d.NATSStream)
		e.natsStreams = append(e.natsStreams, d.NATSStream)
		t.sinkPID = listenerPID(d.NATSURL)
	}
	if st.Policy != "" {
		pol, err := configs.Render(st.Policy, d)
		if err != nil {
			return fail("%v", err)
		}
		d.PolicyFile = filepath.Join(sdir, "policy.yaml")
		if err := os.WriteFile(d.PolicyFile, pol, 0o644); err != nil {
			return fail("%v", err)
		}
	}
	t.Config = filepath.Join(sdir, "warden.yaml")
	d.AuditOff = true
	for {
		conf, err := configs.RenderStage(st, d)
		if err != nil {
			return fail("%v", err)
		}
		if err := os.WriteFile(t.Config, conf, 0o644); err != nil {
			return fail("%v", err)
		}
		var extra []string
		if e.profile {
			pp, err := freeAddr()
			if err != nil {
				return fail("%v", err)
			}
			extra = []string{"WARDENBENCH_PPROF=" + pp}
			t.pprof = "http://" + pp
		}
		p, err := StartProcEnv(st.Name, e.dir, extra, bin, "serve", "--config", t.Config, "--log-level", "warn")
		if err != nil {
			return fail("%v", err)
		}
		t.proc, t.BaseURL, t.admin = p, "http://"+listen, "http://"+admin
		err = WaitReady(ctx, p, t.admin+"/readyz", 30*time.Second)
		if err == nil {
			break
		}
		tail := oneLine(p.Tail(3))
		if d.AuditOff && p.Exited() && strings.Contains(tail, `unknown key "audit"`) {
			// This build has no audit section, so there is no audit to
			// switch off: run the stage without the key.
			d.AuditOff = false
			t.Summary += " (this build has no audit section)"
			_ = os.Truncate(p.LogPath, 0) // report only the last attempt's errors
			continue
		}
		return fail("%v: %s", err, tail)
	}
	if err := e.smoke(ctx, t.BaseURL); err != nil {
		return fail("smoke test: %v", err)
	}
	if err := e.featuresActive(ctx, st, t.BaseURL, d.DataDir); err != nil {
		return fail("config accepted, but %v", err)
	}
	return t
}

// featuresActive checks that each feature the stage turns on really acts,
// so a stage is never measured without the work it claims to do.
func (e *env) featuresActive(ctx context.Context, st configs.Stage, base, dataDir string) error {
	c := loadgen.NewClient(1)
	defer c.CloseIdleConnections()
	status := func(r loadgen.Request) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(r.Body))
		if err != nil {
			return 0, "", err
		}
		req.Header = r.Header.Clone()
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b), err
	}
	if st.Identity {
		r := chatRequest(base, e.token, false)
		r.Header.Del("Authorization")
		if code, _, err := status(r); err != nil || code != http.StatusUnauthorized {
			return fmt.Errorf("identity is not active: a call without a token got %d (%v), want 401", code, err)
		}
	}
	if st.PolicyOn {
		r := chatRequest(base, e.token, false)
		r.Body = []byte(`{"model":"bench","n":9,"messages":[{"role":"user","content":"hi"}]}`)
		if code, _, err := status(r); err != nil || code != http.StatusForbidden {
			return fmt.Errorf("policy is not active: a call the policy denies (n=9) got %d (%v), want 403", code, err)
		}
	}
	if st.Masking {
		_, body, err := status(chatRequest(base, e.token, false))
		if err != nil || strings.Contains(body, upstream.PIIEmail) {
			return fmt.Errorf("masking is not active: the chat answer still holds the email (%v)", err)
		}
		res := loadgen.NewStreamResult()
		out, text, err := loadgen.StreamContent(ctx, c, chatRequest(base, e.token, true), upstream.StreamEnd, &res)
		if out != loadgen.StreamCompleted {
			return fmt.Errorf("masked stream did not complete: %v", err)
		}
		if strings.Contains(text, upstream.PIIEmail) {
			return fmt.Errorf("masking is not active on streams: the email split over three deltas came through")
		}
	}
	if st.Audit {
		var size int64
		_ = filepath.WalkDir(dataDir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					size += fi.Size()
				}
			}
			return nil
		})
		if size == 0 {
			return fmt.Errorf("audit is not active: nothing was written under data_dir %s", dataDir)
		}
	}
	if st.Recording {
		// Recordings are stored after the answer, in the background.
		objects := filepath.Join(dataDir, "recordings", "objects")
		deadline := time.Now().Add(5 * time.Second)
		for packBytes(objects) == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("recording is not active: no recording was stored under %s", objects)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if st.Export {
		// The start-up entries are signed at once, so the file sink has
		// events within a few seconds.
		path := filepath.Join(dataDir, "export", "ocsf.jsonl")
		deadline := time.Now().Add(20 * time.Second)
		for {
			if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("export is not active: the file sink wrote nothing to %s within 20 s", path)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// packBytes is the size of the recording pack files under dir.
func packBytes(dir string) int64 {
	var size int64
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".pack") {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	return size
}

// smoke sends one chat call and one stream through base.
func (e *env) smoke(ctx context.Context, base string) error {
	c := loadgen.NewClient(1)
	defer c.CloseIdleConnections()
	chat := chatRequest(base, e.token, false)
	req, err := http.NewRequestWithContext(ctx, chat.Method, chat.URL, bytes.NewReader(chat.Body))
	if err != nil {
		return err
	}
	req.Header = chat.Header.Clone()
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("chat call: %s: %s", resp.Status, oneLine(string(body)))
	}
	out, err := loadgen.Stream(ctx, c, chatRequest(base, e.token, true), upstream.StreamEnd)
	if out != loadgen.StreamCompleted {
		return fmt.Errorf("stream: outcome %d: %v", out, err)
	}
	return nil
}

// chatRequest is the request every target gets: the PII chat model, with
// the bearer token (ignored by targets without identity).
func chatRequest(base, token string, stream bool) loadgen.Request {
	s := "false"
	if stream {
		s = "true"
	}
	return loadgen.Request{
		Method: http.MethodPost,
		URL:    base + "/v1/chat/completions",
		Header: http.Header{
			"Content-Type":  {"application/json"},
			"Authorization": {"Bearer " + token},
		},
		Body: []byte(`{"model":"` + upstream.ModelPII + `","stream":` + s +
			`,"messages":[{"role":"user","content":"Summarise the customer record in two sentences."}]}`),
	}
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func firstLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
