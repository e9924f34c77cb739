package console_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/policy"
)

// TestDetailListsApproval: the request detail of a call that needed a
// one-time approval lists the approval's entries, the approval by its
// reviewer included (approval.approved used to carry no request id, so
// the page showed only approval.requested).
func TestDetailListsApproval(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	set := &policy.ApprovalSetting{Kind: policy.ApprovalOneTime, Mode: policy.ApprovalAsync, Reviewers: []string{"ml-approvers"},
		MinApprovals: 1, TTL: time.Hour, HoldTimeout: 10 * time.Minute}
	out, err := e.svc.Check(ctx, approval.GateRequest{Principal: e.princ["alice"], SettingName: "tune-once", Setting: set,
		RequestID: "req-tune-1", Method: "POST", Path: "/v1/fine_tuning/jobs", Route: "openai", Model: "m", BodySHA256: "b1"})
	if err != nil || out.Decision != approval.Pending {
		t.Fatalf("check: %+v %v", out, err)
	}
	if _, err := e.svc.Approve(ctx, e.princ["bob"], out.ApprovalID, "dataset reviewed"); err != nil {
		t.Fatal(err)
	}
	es, err := e.audit.Search(ctx, audit.Query{ApprovalID: out.ApprovalID})
	if err != nil {
		t.Fatal(err)
	}
	seq := map[string]int64{}
	for _, x := range es {
		seq[x.Kind] = x.Seq
	}
	requested, okR := seq[audit.KindApprovalRequested]
	approved, okA := seq[audit.KindApprovalApproved]
	if !okR || !okA {
		t.Fatalf("approval entries %v, want requested and approved", seq)
	}
	p := e.browser().login("bob", "/ui/entry/"+strconv.FormatInt(requested, 10))
	if p.status != 200 || !strings.Contains(p.body, entryLink(approved)) {
		t.Fatalf("the detail of approval.requested (%d) does not list approval.approved (%d): %d\n%s", requested, approved, p.status, p.body)
	}
}
