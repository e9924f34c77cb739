package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/export"
)

// TestExportStatusCommand runs the wired app in-process with a file sink
// and asks `warden export status` (through the admin API) for each
// sink's cursor and lag: an auditor sees the sink exporting and caught
// up; a caller without the role is refused; no token is an error.
func TestExportStatusCommand(t *testing.T) {
	dir := t.TempDir()
	issuer, idpURL, upURL := startIssuer(t)
	data := filepath.Join(dir, "data")
	cfg, err := config.Parse("warden.yaml", []byte(fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: %s
routes:
  - {name: openai, path_prefix: /v1/, upstream: %s, profile: openai}
identity:
  issuers: [{issuer: %s, audiences: [warden]}]
audit: {checkpoint_interval: 100ms}
export:
  sinks:
    - {name: archive, type: file, batch_wait: 20ms, file: {path: %s}}
`, data, upURL, idpURL, filepath.Join(dir, "siem", "ocsf.jsonl"))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.server.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + a.server.AdminAddr()
	carol, alice := token(t, issuer, "carol"), token(t, issuer, "alice")

	var rep export.Report
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, code := runCmd(t, newExportCmd(), "status", "--admin-url", base, "--token", carol, "--json")
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("--json output: %v\n%s", err, out)
			}
			if rep.Exporting && len(rep.Sinks) == 1 && rep.LogSize > 0 && rep.Sinks[0].Cursor == rep.LogSize {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink did not catch up: exit %d\n%s", code, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := rep.Sinks[0]; s.Sink != "archive" || s.LagEntries != 0 || s.Delivered < rep.LogSize {
		t.Fatalf("status %+v", s)
	}
	out, code := runCmd(t, newExportCmd(), "status", "--admin-url", base, "--token", carol)
	if code != 0 || !strings.Contains(out, "exporting since") || !strings.Contains(out, "archive") {
		t.Fatalf("table output (exit %d):\n%s", code, out)
	}
	if out, code := runCmd(t, newExportCmd(), "status", "--admin-url", base, "--token", alice); code == 0 || !strings.Contains(out, "forbidden") {
		t.Fatalf("a caller without the auditor role got (exit %d):\n%s", code, out)
	}
	t.Setenv("WARDEN_TOKEN", "")
	if out, code := runCmd(t, newExportCmd(), "status", "--admin-url", base); code == 0 || strings.Contains(out, carol) {
		t.Fatalf("no token (exit %d):\n%s", code, out)
	}
}
