package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/approval/approvaltest"
	"github.com/wardenhq/warden/internal/devstack"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// approvalsAPI serves the real admin API (real OIDC tokens from the demo
// issuer, real approval service and audit log) and returns its URL and
// the tokens of alice (ml-users) and bob (ml-approvers).
func approvalsAPI(t *testing.T) (url string, alice, bob string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	issuer, idpURL, _ := startIssuer(t)
	auth, err := identity.New(ctx, identity.Config{Issuers: []identity.IssuerConfig{{Issuer: idpURL, Audiences: []string{devstack.DemoAudience}}}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { auth.Close() })
	pf := filepath.Join(dir, "policy.yaml")
	pol := "version: 1\nrules: [{name: none, when: \"false\", action: allow}]\napprovals:\n  ft: {kind: grant, mode: async, reviewers: [ml-approvers], grant_duration: 2h, scope: {paths: [\"/v1/fine_tuning/**\"]}}\n"
	if err := os.WriteFile(pf, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.NewEngine(pf)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.OpenApprovals(ctx, filepath.Join(dir, "approvals.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := approval.New(st, approvaltest.NewAuditLog(t))
	srv := httptest.NewServer(admin.New(admin.Options{Authenticators: []admin.Authenticator{auth}, Policy: eng, Approvals: svc,
		Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	secrets = []string{token(t, issuer, "alice"), token(t, issuer, "bob")}
	return srv.URL, secrets[0], secrets[1]
}

// secrets are the tokens no command output may contain.
var secrets []string

func runApprovals(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newApprovalsCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	all := out.String() + errOut.String()
	if err != nil {
		all += err.Error()
	}
	for _, sec := range secrets {
		if strings.Contains(all, sec) || strings.Contains(all, sec[len(sec)-20:]) {
			t.Fatalf("the token was printed: %q", all)
		}
	}
	return out.String(), err
}

// TestApprovalsCmd: request a grant as alice, refuse her self-approval,
// approve as bob (token from WARDEN_TOKEN), revoke it, list and show.
func TestApprovalsCmd(t *testing.T) {
	u, alice, bob := approvalsAPI(t)
	if _, err := runApprovals(t, "list", "--admin-url", u); err == nil || !strings.Contains(err.Error(), "token is required") {
		t.Fatalf("list without token: %v", err)
	}
	out, err := runApprovals(t, "request", "--admin-url", u, "--token", alice, "--json",
		"--setting", "ft", "--justification", "retrain after incident", "--duration", "30m", "--path", "/v1/fine_tuning/jobs")
	if err != nil {
		t.Fatal(err)
	}
	var v admin.View
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.State != approval.StatePending || v.Scope == nil || v.Scope.Paths[0] != "/v1/fine_tuning/jobs" {
		t.Fatalf("request: %v %q", err, out)
	}
	if _, err := runApprovals(t, "approve", v.ID, "--admin-url", u, "--token", alice, "--reason", "mine"); err == nil || !strings.Contains(err.Error(), "403 forbidden") {
		t.Fatalf("self-approval: %v", err)
	}
	t.Setenv("WARDEN_TOKEN", bob)
	if _, err := runApprovals(t, "approve", v.ID, "--admin-url", u); err == nil || !strings.Contains(err.Error(), "--reason is required") {
		t.Fatalf("approve without reason: %v", err)
	}
	out, err = runApprovals(t, "list", "--admin-url", u, "--state", "pending")
	if err != nil || !strings.Contains(out, v.ID) || !strings.Contains(out, "alice") {
		t.Fatalf("list: %v %q", err, out)
	}
	out, err = runApprovals(t, "approve", v.ID, "--admin-url", u, "--reason", "incident confirmed")
	if err != nil || !strings.Contains(out, "APPROVED") || !strings.Contains(out, "approve by bob") {
		t.Fatalf("approve: %v %q", err, out)
	}
	out, err = runApprovals(t, "revoke", v.ID, "--admin-url", u, "--reason", "done")
	if err != nil || !strings.Contains(out, "REVOKED") {
		t.Fatalf("revoke: %v %q", err, out)
	}
	out, err = runApprovals(t, "show", v.ID, "--admin-url", u, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.State != approval.StateRevoked || v.RevokedBy.Subject != "bob" {
		t.Fatalf("show: %v %q", err, out)
	}
	// Errors come in the one error shape: status, type, message and the
	// request id to quote to an operator.
	if _, err := runApprovals(t, "show", "nope", "--admin-url", u); err == nil || !strings.Contains(err.Error(), "404 not_found: no approval request nope (request id ") {
		t.Fatalf("show unknown: %v", err)
	}
	if _, err := runApprovals(t, "list", "--admin-url", u, "--token", "not-a-token"); err == nil || !strings.Contains(err.Error(), "401 invalid_token: malformed token") {
		t.Fatalf("bad token: %v", err)
	}
}
