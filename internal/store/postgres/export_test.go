package postgres

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestExportLease: one replica exports at a time; the other cannot move a
// cursor; when the exporter's session dies the other takes over on its
// next Lead and continues from the saved position.
func TestExportLease(t *testing.T) {
	dsn, schema := testDSN(t), newSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := OpenExport(ctx, Config{DSN: dsn, Schema: schema}, "gw-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenExport(ctx, Config{DSN: dsn, Schema: schema}, "gw-b", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if ok, err := a.Lead(ctx); err != nil || !ok {
		t.Fatalf("a.Lead = %v, %v; want true", ok, err)
	}
	if ok, err := b.Lead(ctx); err != nil || ok {
		t.Fatalf("b.Lead while a exports = %v, %v; want false", ok, err)
	}
	if n, err := a.Cursor("siem").Load(ctx); err != nil || n != 0 {
		t.Fatalf("fresh cursor = %d, %v", n, err)
	}
	if err := a.Cursor("siem").Save(ctx, 42); err != nil {
		t.Fatal(err)
	}
	if err := b.Cursor("siem").Save(ctx, 7); !errors.Is(err, errNotExporter) {
		t.Fatalf("save by the replica without the lock: %v, want errNotExporter", err)
	}
	if n, err := b.Cursor("siem").Load(ctx); err != nil || n != 42 {
		t.Fatalf("b reads %d, %v; want 42", n, err)
	}

	// The exporter's session dies (as when its process is killed).
	a.mu.Lock()
	pid := a.conn.PgConn().PID()
	a.mu.Unlock()
	if _, err := b.pool.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	took := false
	for i := 0; i < 50 && !took; i++ {
		if took, err = b.Lead(ctx); err != nil {
			t.Fatal(err)
		}
		if !took {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !took {
		t.Fatal("b did not take over after a's session ended")
	}
	if err := a.Cursor("siem").Save(ctx, 50); err == nil {
		t.Fatal("the old exporter moved the cursor after losing the lock")
	}
	if ok, _ := a.Lead(ctx); ok {
		t.Fatal("a leads again while b holds the lock")
	}
	if err := b.Cursor("siem").Save(ctx, 43); err != nil {
		t.Fatal(err)
	}
	pos, err := a.Positions(ctx)
	if err != nil || pos["siem"] != 43 {
		t.Fatalf("positions %v, %v", pos, err)
	}
	if err := b.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Lead(ctx); err != nil || !ok {
		t.Fatalf("a.Lead after b resigned = %v, %v", ok, err)
	}
}
