package postgres

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/audit"
)

// selectOnlyRole creates a login role with USAGE on schema and SELECT on
// its tables, nothing else, and returns a DSN for it.
func selectOnlyRole(t *testing.T, schema string) string {
	t.Helper()
	ctx := context.Background()
	role := "ro_" + strings.TrimPrefix(schema, "wt_")
	c, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT USAGE ON SCHEMA " + schema + " TO " + role,
		"GRANT SELECT ON ALL TABLES IN SCHEMA " + schema + " TO " + role,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), testDSN(t))
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = c.Exec(context.Background(), "DROP ROLE "+role)
	})
	u, err := url.Parse(testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	return u.String()
}

// TestOpenReadOnly: a role with only SELECT reads a store; nothing is
// written (writes fail even for a role that could write); a schema
// without Warden's tables is an error and is not created.
func TestOpenReadOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	schema := newSchema(t)
	st := openStore(t, schema)
	var es []*audit.Entry
	for i := range 5 {
		es = append(es, testEntry(i, "a"))
	}
	appendDirect(t, st, es)

	ro, err := OpenReadOnly(ctx, Config{DSN: selectOnlyRole(t, schema), Schema: schema})
	if err != nil {
		t.Fatalf("OpenReadOnly with a SELECT-only role: %v", err)
	}
	defer ro.Close()
	if n, err := ro.Size(ctx); err != nil || n != 5 {
		t.Fatalf("Size = %d, %v", n, err)
	}
	if recs, err := ro.ReadRecords(ctx, 0, 5); err != nil || len(recs) != 5 {
		t.Fatalf("ReadRecords: %d, %v", len(recs), err)
	}

	// Even with the owner's credentials the session is read-only.
	rw, err := OpenReadOnly(ctx, Config{DSN: testDSN(t), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if err := rw.Append(ctx, tlogBatch(st, 5, []*audit.Entry{testEntry(5, "a")})); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("Append through a read-only store: %v", err)
	}

	missing := newSchema(t)
	if _, err := OpenReadOnly(ctx, Config{DSN: testDSN(t), Schema: missing}); err == nil || !strings.Contains(err.Error(), "holds no Warden audit store") {
		t.Fatalf("OpenReadOnly on an empty schema: %v", err)
	}
	c := rawConn(t, "public")
	var exists bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)", missing).Scan(&exists); err != nil || exists {
		t.Fatalf("OpenReadOnly created schema %s (exists %v, err %v)", missing, exists, err)
	}
}
