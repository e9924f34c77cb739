package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// TestReadyzNamesApprovalStore: when only the approval store fails (its
// own database, as in SQLite mode, closed under a running gateway) while
// the audit log stays healthy, a request needing approval gets 503 and
// /readyz turns 503 naming the approvals check; requests that need no
// approval are still admitted and audited, and such a request (its
// "no grant" answered from the service's cache) does not make /readyz
// forget the failure. (The PostgreSQL stall test
// breaks both stores at once, so the audit check alone turns it 503;
// without the approvals check /readyz here stays 200.)
func TestReadyzNamesApprovalStore(t *testing.T) {
	dir := t.TempDir()
	pf := filepath.Join(dir, "approval-policy.yaml")
	if err := os.WriteFile(pf, []byte(testPolicy+`  - name: fine-tuning
    when: request.path.glob("/v1/fine_tuning/**") && principal.in_group("ml-users")
    action: require_approval
    approval: finetune
approvals:
  finetune: {kind: one_time, mode: async, reviewers: [ml-approvers]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(pf)
	if err != nil {
		t.Fatal(err)
	}
	ast, err := sqlite.OpenApprovals(context.Background(), filepath.Join(dir, "approvals.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer ast.Close()
	var cfg *config.Config
	var opts Options
	s := newStackWith(t, func(c *config.Config, o *Options) {
		o.Policy = eng
		o.Approvals = approval.New(ast, o.Audit.(*audit.Log))
		cfg, opts = c, *o
	})
	srv, err := NewServer(cfg, quietLog, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	gw, admin := "http://"+srv.Addr(), "http://"+srv.AdminAddr()
	tok := s.token(t, "alice")

	post := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, gw+path, strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := (&http.Client{Timeout: hangGuard}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	readyz := func() (int, string) {
		t.Helper()
		resp, err := (&http.Client{Timeout: hangGuard}).Get(admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorBody
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &eb)
		return resp.StatusCode, eb.Error.Message
	}
	deadline := time.Now().Add(hangGuard)
	for st, _ := readyz(); st != http.StatusOK; st, _ = readyz() {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never turned 200 after start: %d", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, body := post("/v1/fine_tuning/jobs"); st != http.StatusAccepted {
		t.Fatalf("fine-tuning with a working approval store: %d %s, want 202 pending", st, body)
	}

	// Only the approval store breaks.
	if err := ast.Close(); err != nil {
		t.Fatal(err)
	}
	if st, body := post("/v1/fine_tuning/jobs"); st != http.StatusServiceUnavailable {
		t.Fatalf("fine-tuning with a closed approval store: %d %s, want 503", st, body)
	}
	st, msg := readyz()
	if st != http.StatusServiceUnavailable || !strings.HasPrefix(msg, "approvals: ") {
		t.Fatalf("/readyz with the approval store closed: %d %q, want 503 naming the approvals check", st, msg)
	}
	// The audit log is healthy: its check passes and a request that
	// needs no approval is still admitted and recorded.
	if err := srv.Gateway().AuditReady(context.Background()); err != nil {
		t.Fatalf("audit check failed too, so this does not isolate the approvals check: %v", err)
	}
	if st, body := post("/v1/chat/completions"); st != http.StatusOK {
		t.Fatalf("chat (no approval needed) with the approval store closed: %d %s, want 200", st, body)
	}
	// Alice's "no grant" came from the approval service's cache, not
	// the store: that must not make the closed store look ready.
	if st, msg := readyz(); st != http.StatusServiceUnavailable || !strings.HasPrefix(msg, "approvals: ") {
		t.Fatalf("/readyz after an admitted chat: %d %q, want still 503 naming approvals (its probe fails)", st, msg)
	}
}
