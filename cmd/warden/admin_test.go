package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/identity"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAdminSurface runs the wired app in-process and drives its admin
// listener: the operations endpoints and the admin API share one
// listener, one request id and one error shape; a reload through the
// API is in the policy history (written by the app's config.changed
// recorder); a key created through the API is in the same store as
// `warden keys`; the deprecated admin keys still work, with a warning.
func TestAdminSurface(t *testing.T) {
	dir := t.TempDir()
	issuer, idpURL, upURL := startIssuer(t)
	pf := filepath.Join(dir, "policy.yaml")
	pol := "version: 1\nrules:\n  - {name: models, when: 'request.path == \"/v1/models\"', action: allow}\n"
	if err := os.WriteFile(pf, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	cfg, err := config.Parse("warden.yaml", []byte(fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
data_dir: %s
routes:
  - {name: openai, path_prefix: /v1/, upstream: %s, profile: openai}
identity:
  issuers: [{issuer: %s, audiences: [warden]}]
policy: {file: %s, watch: false}
admin:
  auditor_groups: [ml-admins]
`, data, upURL, idpURL, pf)))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
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
	if !strings.Contains(logs.String(), "admin.auditor_groups is deprecated") {
		t.Errorf("no deprecation warning in:\n%s", logs.String())
	}
	base := "http://" + a.server.AdminAddr()
	carol, alice := token(t, issuer, "carol"), token(t, issuer, "alice")
	do := func(method, path, tok, body string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	var st int
	for i := 0; i < 100; i++ { // Serve runs in a goroutine
		if st, _, _ = do("GET", "/readyz", "", ""); st == 200 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", identity.JWKSPath} {
		if st, h, _ := do("GET", p, "", ""); st != 200 || h.Get("X-Request-Id") == "" {
			t.Errorf("%s: %d, X-Request-Id %q", p, st, h.Get("X-Request-Id"))
		}
	}
	for _, c := range []struct {
		method, path, tok string
		status            int
		typ               string
	}{
		{"GET", "/v1/models", carol, 404, "not_found"}, // the admin listener is not the gateway
		{"GET", "/v1/audit/entries", "", 401, "unauthenticated"},
		{"GET", "/v1/audit/entries", alice, 403, "forbidden"},
		{"POST", "/v1/policy/reload", alice, 403, "forbidden"},
		{"DELETE", "/v1/policy", carol, 405, "method_not_allowed"},
	} {
		st, h, body := do(c.method, c.path, c.tok, "")
		var b struct {
			Error struct{ Type, Message, RequestID string } `json:"error"`
		}
		_ = json.Unmarshal([]byte(body), &b)
		if st != c.status || b.Error.Type != c.typ {
			t.Errorf("%s %s: %d %s", c.method, c.path, st, body)
		}
		if !strings.Contains(body, `"request_id":"`+h.Get("X-Request-Id")+`"`) {
			t.Errorf("%s %s: request_id not the header's: %s", c.method, c.path, body)
		}
	}

	if err := os.WriteFile(pf, []byte(strings.Replace(pol, "models,", "models-v2,", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, _, body := do("POST", "/v1/policy/reload", carol, ""); st != 200 || !strings.Contains(body, `"changed":true`) {
		t.Fatalf("reload: %d %s", st, body)
	}
	var hist struct {
		Versions []struct{ Actor string } `json:"versions"`
	}
	for i := 0; i < 100; i++ {
		_, _, body := do("GET", "/v1/policy/versions", carol, "")
		_ = json.Unmarshal([]byte(body), &hist)
		if len(hist.Versions) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(hist.Versions) != 1 || hist.Versions[0].Actor != "admin:carol" {
		t.Fatalf("policy history: %+v", hist)
	}

	st, _, body := do("POST", "/v1/keys", carol, `{"name":"indexer","groups":["ml-services"]}`)
	var key struct{ ID, Key string }
	if err := json.Unmarshal([]byte(body), &key); st != 201 || err != nil || key.ID == "" {
		t.Fatalf("create key: %d %s", st, body)
	}
	cmd := newKeysCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"list", "--data-dir", data})
	if err := cmd.Execute(); err != nil || !strings.Contains(out.String(), key.ID) {
		t.Fatalf("warden keys list does not show the API's key: %v %s", err, out.String())
	}
	if strings.Contains(logs.String(), key.Key) || strings.Contains(logs.String(), carol) {
		t.Fatal("a secret reached the log")
	}
}
