package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/approval/approvaltest"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

func approvalsAPI(t *testing.T) string {
	t.Helper()
	st, err := sqlite.OpenApprovals(context.Background(), filepath.Join(t.TempDir(), "approvals.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := approval.New(st, approvaltest.NewAuditLog(t))
	users := map[string]*identity.Principal{"secret-alice": approvaltest.Alice, "secret-bob": approvaltest.Bob}
	authn := func(r *http.Request) (*identity.Principal, error) {
		if p := users[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]; p != nil {
			return p, nil
		}
		return nil, errors.New("unknown token")
	}
	lookup := func(name string) (*policy.ApprovalSetting, bool) {
		if name == "ft" {
			return approvaltest.Grant(policy.ApprovalAsync), true
		}
		return nil, false
	}
	srv := httptest.NewServer(approval.NewHandler(svc, authn, lookup, ""))
	t.Cleanup(srv.Close)
	return srv.URL
}

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
	if strings.Contains(all, "secret-") {
		t.Fatalf("the token was printed: %q", all)
	}
	return out.String(), err
}

// TestApprovalsCmd: request a grant as alice, refuse her self-approval,
// approve as bob (token from WARDEN_TOKEN), revoke it, list and show.
func TestApprovalsCmd(t *testing.T) {
	u := approvalsAPI(t)
	if _, err := runApprovals(t, "list", "--admin-url", u); err == nil || !strings.Contains(err.Error(), "token is required") {
		t.Fatalf("list without token: %v", err)
	}
	out, err := runApprovals(t, "request", "--admin-url", u, "--token", "secret-alice", "--json",
		"--setting", "ft", "--justification", "retrain after incident", "--duration", "30m", "--path", "/v1/fine_tuning/jobs")
	if err != nil {
		t.Fatal(err)
	}
	var v approval.View
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.State != approval.StatePending || v.Scope == nil || v.Scope.Paths[0] != "/v1/fine_tuning/jobs" {
		t.Fatalf("request: %v %q", err, out)
	}
	if _, err := runApprovals(t, "approve", v.ID, "--admin-url", u, "--token", "secret-alice", "--reason", "mine"); err == nil || !strings.Contains(err.Error(), "403 forbidden") {
		t.Fatalf("self-approval: %v", err)
	}
	t.Setenv("WARDEN_TOKEN", "secret-bob")
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
	if _, err := runApprovals(t, "show", "nope", "--admin-url", u); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("show unknown: %v", err)
	}
}
