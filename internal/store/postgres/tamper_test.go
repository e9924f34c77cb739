package postgres

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

func TestPendingLeavesOnlyBySequencing(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	st := openStore(t, schema)
	ctx := context.Background()
	es := []*audit.Entry{testEntry(0, "p"), testEntry(1, "p")}
	var ps []audit.Pending
	for _, e := range es {
		data, err := audit.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, audit.Pending{ID: e.ID, Data: data, Entry: e})
	}
	if err := st.Enqueue(ctx, ps); err != nil {
		t.Fatal(err)
	}
	// Enqueueing the same IDs again is a no-op.
	if err := st.Enqueue(ctx, ps); err != nil {
		t.Fatal(err)
	}
	c := rawConn(t, schema)
	for _, sql := range []string{
		"DELETE FROM pending",
		"DELETE FROM pending WHERE id = '" + es[0].ID + "'",
		"UPDATE pending SET data = 'forged'",
		"TRUNCATE pending",
	} {
		if _, err := c.Exec(ctx, sql); err == nil || !strings.Contains(err.Error(), "audit pending entries") {
			t.Errorf("%s: err = %v, want the queue guard", sql, err)
		}
	}
	got, err := st.Unsequenced(ctx, 10)
	if err != nil || len(got) != 2 || got[0].ID != es[0].ID || got[1].ID != es[1].ID {
		t.Fatalf("Unsequenced = %v, %v; want both entries in enqueue order", got, err)
	}
	// Sequencing removes them (the guard lets that through).
	appendDirect(t, st, es)
	if n, err := st.PendingCount(ctx); err != nil || n != 0 {
		t.Fatalf("pending after sequencing = %d, %v; want 0", n, err)
	}
	// An ID that is already sequenced is not queued again.
	if err := st.Enqueue(ctx, ps[:1]); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Unsequenced(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("Unsequenced after re-enqueueing a sequenced entry = %v, %v; want none", got, err)
	}
	if seq, err := st.SeqOf(ctx, es[1].ID); err != nil || seq != 1 {
		t.Fatalf("SeqOf = %d, %v; want 1", seq, err)
	}
}

// TestDirectSQLEditDetected: an administrator who bypasses the triggers
// (session_replication_role = replica needs superuser) can change bytes,
// but audit.Verify finds the entry.
func TestDirectSQLEditDetected(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	st := openStore(t, schema)
	ctx := context.Background()
	s, v, err := audit.LoadOrCreateKeys(filepath.Join(t.TempDir(), "k"), "test-tamper")
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.Config{Store: "postgres", DSN: testDSN(t), CheckpointInterval: 50 * time.Millisecond}
	l, err := audit.Open(ctx, st, cfg, s, v, audit.WithInstance("t"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := l.Append(ctx, testEntry(i, "t")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(ctx, st, v, audit.VerifyOptions{}); err != nil {
		t.Fatalf("Verify before tampering: %v", err)
	}
	c := rawConn(t, schema)
	if _, err := c.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		t.Skipf("cannot bypass triggers (not superuser): %v", err)
	}
	if _, err := c.Exec(ctx, `UPDATE entries SET data = replace(convert_from(data, 'UTF8'), '"t-000004"', '"t-000005"')::bytea WHERE seq = 5`); err != nil {
		t.Fatal(err)
	}
	_, err = audit.Verify(ctx, st, v, audit.VerifyOptions{})
	var d *audit.Divergence
	if !errors.As(err, &d) || d.Seq != 5 {
		t.Fatalf("Verify after editing entry 5 with SQL: err = %v, want a divergence at seq 5", err)
	}
	t.Logf("detected: %v", err)
}

// TestForeignPendingRowIsRejected: a row put into the queue with SQL that
// is not a canonical entry is set aside, and the integrator goes on.
func TestForeignPendingRowIsRejected(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	st := openStore(t, schema)
	ctx := context.Background()
	c := rawConn(t, schema)
	good := testEntry(1, "g")
	gdata, err := audit.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	renamed := testEntry(2, "g")
	rdata, _ := audit.Marshal(renamed)
	for _, row := range []struct {
		id   string
		data []byte
	}{
		{"junk", []byte("not json")},
		{"spaced", []byte(`{ "v": 1, "kind": "x" }`)},
		{"other-id", rdata}, // valid bytes, queued under another ID
	} {
		if _, err := c.Exec(ctx, "INSERT INTO pending (id, data) VALUES ($1, $2)", row.id, row.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Enqueue(ctx, []audit.Pending{{ID: good.ID, Data: gdata}}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Unsequenced(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != good.ID || got[0].Entry == nil || got[0].Entry.RequestID != good.RequestID {
		t.Fatalf("Unsequenced = %+v; want only the valid entry, decoded", got)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM rejected").Scan(&n); err != nil || n != 3 {
		t.Fatalf("rejected rows = %d, %v; want 3", n, err)
	}
	if p, err := st.PendingCount(ctx); err != nil || p != 1 {
		t.Fatalf("pending = %d, %v; want 1", p, err)
	}
	if _, err := c.Exec(ctx, "DELETE FROM rejected"); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("DELETE FROM rejected: err = %v, want the append-only trigger", err)
	}
}
