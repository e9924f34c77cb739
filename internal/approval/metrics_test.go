package approval_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/approval/approvaltest"
	"github.com/wardenhq/warden/internal/policy"
)

func TestCollector(t *testing.T) {
	svc := approval.New(openStore(t), approvaltest.NewAuditLog(t))
	out, err := svc.Check(context.Background(), approvaltest.Call(approvaltest.Alice, "ft", approvaltest.OneTime(policy.ApprovalAsync), "m"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(context.Background(), approvaltest.Bob, out.ApprovalID, "ok"); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(svc.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "warden_approval_transitions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"approval.requested": 1, "approval.reviewed": 1, "approval.approved": 1}
	if len(got) != len(want) {
		t.Fatalf("transitions %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("transitions %v, want %v", got, want)
		}
	}
}
