package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/approval/approvaltest"
	"github.com/wardenhq/warden/internal/store/postgres"
)

// approvalSchema returns a fresh schema name, dropped when the test ends.
func approvalSchema(t *testing.T) (dsn, schema string) {
	t.Helper()
	dsn = os.Getenv("WARDEN_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("WARDEN_TEST_POSTGRES not set; skipping PostgreSQL test")
	}
	var b [6]byte
	rand.Read(b[:])
	schema = "wt_apr_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return dsn, schema
}

func TestApprovalSuite(t *testing.T) {
	approvaltest.Run(t, func(t *testing.T) approvaltest.Opener {
		dsn, schema := approvalSchema(t)
		return func(t *testing.T) approval.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			st, err := postgres.OpenApprovals(ctx, postgres.Config{DSN: dsn, Schema: schema, MaxConns: 8}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	})
}
