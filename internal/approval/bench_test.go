package approval_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/approval/approvaltest"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

func benchService(b *testing.B, cfg approval.Config) *approval.Service {
	st, err := sqlite.OpenApprovals(context.Background(), filepath.Join(b.TempDir(), "approvals.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return approval.New(st, approvaltest.NewAuditLog(b), approval.WithConfig(cfg))
}

// BenchmarkActiveGrants is the per-request cost of the policy's grants
// input for a caller without grants (the common case), with the
// negative cache (default) and without it.
func BenchmarkActiveGrants(b *testing.B) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(tc.name, func(b *testing.B) {
			svc := benchService(b, approval.Config{NoGrantCacheTTL: tc.ttl})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.ActiveGrants(ctx, approvaltest.Mallory); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckUnderGrant is the gate's cost for a call covered by an
// active grant (one indexed store read).
func BenchmarkCheckUnderGrant(b *testing.B) {
	svc := benchService(b, approval.Config{})
	ctx := context.Background()
	set := approvaltest.Grant(policy.ApprovalAsync)
	r, err := svc.RequestGrant(ctx, approvaltest.Alice, approval.GrantRequest{SettingName: "ft", Setting: set, Justification: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.Approve(ctx, approvaltest.Bob, r.ID, "ok"); err != nil {
		b.Fatal(err)
	}
	call := approvaltest.Call(approvaltest.Alice, "ft", set, "x")
	b.ReportAllocs()
	for b.Loop() {
		if o, err := svc.Check(ctx, call); err != nil || o.Decision != approval.Proceed {
			b.Fatal(o, err)
		}
	}
}
