package sqlite_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/approval/approvaltest"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

func TestApprovalSuite(t *testing.T) {
	approvaltest.Run(t, func(t *testing.T) approvaltest.Opener {
		path := filepath.Join(t.TempDir(), "approvals.db")
		return func(t *testing.T) approval.Store {
			st, err := sqlite.OpenApprovals(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	})
}

func TestApprovalsRefuseAuditFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = sqlite.OpenApprovals(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "audit log") {
		t.Fatalf("OpenApprovals on the audit file: %v", err)
	}
}
