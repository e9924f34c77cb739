package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestVerifyDSNReadOnly: `warden verify --dsn` checks a PostgreSQL store
// through a role that may only SELECT (it migrates nothing), and fails —
// without printing OK or creating anything — on a database that holds no
// Warden schema.
func TestVerifyDSNReadOnly(t *testing.T) {
	dsn := testDatabase(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	gw, adm := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf("listen: %s\nadmin_listen: %s\ndata_dir: %s\nallow_anonymous: true\nroutes:\n  - {name: r, path_prefix: /, upstream: \"http://127.0.0.1:9\"}\naudit:\n  store: postgres\n  dsn: %s\n  postgres: {schema: audit_ro}\n", gw, adm, data, dsn)
	cp := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cp, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	stopServe(t, startServe(t, cp, adm))

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	role := "auditor_" + strings.TrimPrefix(filepath.Base(dsn[:strings.IndexByte(dsn+"?", '?')]), "warden_e2e_")
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT USAGE ON SCHEMA audit_ro TO " + role,
		"GRANT SELECT ON ALL TABLES IN SCHEMA audit_ro TO " + role,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = conn.Exec(context.Background(), "DROP ROLE "+role)
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	key := filepath.Join(data, "keys", "audit.verifier")

	code, out := runWarden(t, dir, "verify", "--dsn", u.String(), "--schema", "audit_ro", "--key", key)
	if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(out, "verified entries [0, ") || !strings.Contains(out, "search index:") {
		t.Fatalf("verify through a SELECT-only role: exit %d:\n%s", code, out)
	}

	// The default schema "warden" does not exist in this database.
	code, out = runWarden(t, dir, "verify", "--dsn", dsn, "--key", key)
	if code == 0 || strings.Contains(out, "OK") || !strings.Contains(out, `schema "warden" holds no Warden audit store`) {
		t.Fatalf("verify of a database without the schema: exit %d:\n%s", code, out)
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = 'warden')").Scan(&exists); err != nil || exists {
		t.Fatalf("verify created schema warden (exists %v, err %v)", exists, err)
	}
}
