package approval_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/approval/approvaltest"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// gate is the wiring the gateway uses (the snippet given to the lead):
// it answers the call itself unless the request may proceed, and then
// returns the approval or grant id to record in the audit entries.
func gate(w http.ResponseWriter, r *http.Request, svc *approval.Service, p *identity.Principal, d policy.Decision, requestID, route, model string, body []byte) (approvalID, grantID string, proceed bool) {
	sum := sha256.Sum256(body)
	g := approval.GateRequest{
		Principal: p, SettingName: d.ApprovalName, Setting: d.Approval, RequestID: requestID,
		Method: r.Method, Path: r.URL.Path, Route: route, Model: model, BodySHA256: hex.EncodeToString(sum[:]),
		Justification: r.Header.Get(approval.JustificationHeader),
	}
	out, err := svc.Check(r.Context(), g)
	if err == nil && out.Decision == approval.Pending && d.Approval.Mode == policy.ApprovalHold {
		ctx, cancel := context.WithTimeout(r.Context(), d.Approval.HoldTimeout)
		out, err = svc.HoldAlive(ctx, g, out.ApprovalID, 15*time.Second, func() { w.WriteHeader(http.StatusProcessing) })
		cancel()
	}
	switch {
	case err != nil: // fail closed
		http.Error(w, `{"error":{"type":"approval_unavailable"}}`, http.StatusServiceUnavailable)
	case out.Decision == approval.Denied:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"type": "approval_denied", "message": out.Reason}, "approval_id": out.ApprovalID})
	case out.Decision == approval.Pending:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", strconv.Itoa(int(out.RetryAfter.Seconds())))
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]any{"status": "pending_approval", "approval_id": out.ApprovalID, "review_url": out.ReviewURL, "expires_at": out.ExpiresAt})
	default:
		return out.ApprovalID, out.GrantID, true
	}
	return "", "", false
}

// TestGatewayWiring runs the snippet behind a real HTTP server: an async
// call gets 202 then runs once approved; a held call gets interim 102s
// and then the upstream answer once bob approves.
func TestGatewayWiring(t *testing.T) {
	log := approvaltest.NewAuditLog(t)
	svc := approval.New(openStore(t), log, approval.WithConfig(approval.Config{ReviewURLBase: "https://warden.test"}))
	mode := policy.ApprovalAsync
	var keepAlive time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		set := approvaltest.OneTime(mode)
		d := policy.Decision{Action: policy.ActionRequireApproval, ApprovalName: "fine-tune", Approval: set}
		var aid, gid string
		var ok bool
		if keepAlive > 0 {
			// Same as gate, with a short keep-alive interval for the test.
			sum := sha256.Sum256(body)
			g := approval.GateRequest{Principal: approvaltest.Alice, SettingName: d.ApprovalName, Setting: set, RequestID: "r",
				Method: r.Method, Path: r.URL.Path, Route: "fine-tune", BodySHA256: hex.EncodeToString(sum[:])}
			out, err := svc.Check(r.Context(), g)
			if err == nil && out.Decision == approval.Pending {
				ticks := 0
				out, err = svc.HoldAlive(r.Context(), g, out.ApprovalID, 5*time.Millisecond, func() {
					w.WriteHeader(http.StatusProcessing)
					if ticks++; ticks == 2 {
						go svc.Approve(context.Background(), approvaltest.Bob, out.ApprovalID, "ok")
					}
				})
			}
			if err != nil || out.Decision != approval.Proceed {
				http.Error(w, fmt.Sprint(out, err), 500)
				return
			}
			aid, ok = out.ApprovalID, true
		} else {
			aid, gid, ok = gate(w, r, svc, approvaltest.Alice, d, "req-1", "fine-tune", "m", body)
		}
		if ok {
			fmt.Fprintf(w, `{"ran":true,"approval_id":%q,"grant_id":%q}`, aid, gid)
		}
	}))
	defer srv.Close()

	post := func(trace *httptrace.ClientTrace) (*http.Response, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/fine_tuning/jobs", strings.NewReader(`{"model":"m"}`))
		req.Header.Set(approval.JustificationHeader, "monthly retrain")
		if trace != nil {
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post(nil)
	if resp.StatusCode != 202 || resp.Header.Get("Retry-After") != "30" || !strings.Contains(body, "https://warden.test/v1/approvals/") {
		t.Fatalf("async: %d %s", resp.StatusCode, body)
	}
	var pending struct {
		ApprovalID string `json:"approval_id"`
	}
	json.Unmarshal([]byte(body), &pending)
	if r, err := svc.Get(context.Background(), pending.ApprovalID); err != nil || r.Justification != "monthly retrain" {
		t.Fatalf("request: %+v %v", r, err)
	}
	if _, err := svc.Approve(context.Background(), approvaltest.Bob, pending.ApprovalID, "fine"); err != nil {
		t.Fatal(err)
	}
	if resp, body = post(nil); resp.StatusCode != 200 || !strings.Contains(body, pending.ApprovalID) {
		t.Fatalf("retry after approval: %d %s", resp.StatusCode, body)
	}
	if resp, _ = post(nil); resp.StatusCode != 202 {
		t.Fatalf("second retry: %d, want a new pending approval", resp.StatusCode)
	}

	// Hold mode with keep-alives.
	mode, keepAlive = policy.ApprovalHold, 5*time.Millisecond
	interim := 0
	resp, body = post(&httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
		if code == http.StatusProcessing {
			interim++
		}
		return nil
	}})
	if resp.StatusCode != 200 || !strings.Contains(body, `"ran":true`) || interim < 2 {
		t.Fatalf("hold: %d %s after %d interim responses", resp.StatusCode, body, interim)
	}
}
