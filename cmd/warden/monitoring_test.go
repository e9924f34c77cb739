package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/report"
)

// TestMonitoringEvidence runs the wired app with a webhook sink whose
// receiver refuses every event about a refused request. The refused
// event goes to the dead-letter file and becomes an export.dead_lettered
// entry; that entry names the refused kind too, so the receiver refuses
// it as well: it is dead-lettered without a further entry (no loop). At
// shutdown serve writes export.status. `warden report` counts both in
// A.8.16 and `warden verify --bundle` recomputes them.
func TestMonitoringEvidence(t *testing.T) {
	dir := t.TempDir()
	_, idpURL, upURL := startIssuer(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if bytes.Contains(b, []byte(`request.refused`)) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer hook.Close()
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
    - {name: siem, type: webhook, batch_wait: 20ms, backoff_max: 200ms, webhook: {url: %s}}
`, data, upURL, idpURL, hook.URL)))
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
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
	resp, err := http.Post("http://"+a.server.Addr()+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	dl := filepath.Join(data, "export", "siem.deadletter.jsonl")
	lines := func() []string {
		b, _ := os.ReadFile(dl)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(lines()) < 2 || lines()[0] == "" {
		if time.Now().After(deadline) {
			t.Fatalf("dead letters: %q", lines())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a loop would add more
	cancel()
	if err := <-done; err != nil && err != context.Canceled {
		t.Fatal(err)
	}
	var kinds []string
	for _, l := range lines() {
		var d struct{ Kind string }
		json.Unmarshal([]byte(l), &d)
		kinds = append(kinds, d.Kind)
	}
	if strings.Join(kinds, ",") != "request.refused,export.dead_lettered" {
		t.Fatalf("dead-lettered kinds: %v (a loop, or the entry missing)", kinds)
	}

	to := time.Now().UTC().Add(time.Minute).Truncate(time.Second)
	period := []string{"--data-dir", data, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--seed", "1"}
	out := filepath.Join(dir, "report.json")
	if b, err := exec.Command(wardenBin, append([]string{"report", "--out", out}, period...)...).CombinedOutput(); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	b, _ := os.ReadFile(out)
	var r report.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Sections {
		if s.Control != "A.8.16" {
			continue
		}
		figs := map[string]report.Figure{}
		for _, f := range s.Figures {
			figs[f.ID] = f
		}
		if f := figs["export_dead_letters"]; f.Value != 1 || f.By["siem"] != 1 {
			t.Errorf("export_dead_letters: %+v", f)
		}
		if f := figs["export_status_reports"]; f.Value != 1 || f.By["shutdown"] != 1 {
			t.Errorf("export_status_reports: %+v", f)
		}
		if f := figs["export_max_lag_entries"]; f.By["siem"] < 0 || len(f.By) != 1 {
			t.Errorf("export_max_lag_entries: %+v", f)
		}
		if s.ExceptionsTotal != 1 || !strings.Contains(s.Exceptions[0].What, "export sink siem refused event") {
			t.Errorf("A.8.16 exceptions: %+v", s.Exceptions)
		}
	}
	bundle := filepath.Join(dir, "bundle.tar.gz")
	if b, err := exec.Command(wardenBin, append([]string{"evidence", "export", "--out", bundle}, period...)...).CombinedOutput(); err != nil {
		t.Fatalf("evidence export: %v\n%s", err, b)
	}
	if b, err := exec.Command(wardenBin, "verify", "--bundle", bundle, "--key", filepath.Join(data, "keys", "audit.verifier")).CombinedOutput(); err != nil || !strings.Contains(string(b), "\nOK") {
		t.Fatalf("verify --bundle: %v\n%s", err, b)
	}
}
