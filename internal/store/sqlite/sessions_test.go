package sqlite_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// TestSessionsRefuseAuditFile: the console's sessions never go into the
// audit log's file.
func TestSessionsRefuseAuditFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := sqlite.OpenSessions(context.Background(), path); err == nil || !strings.Contains(err.Error(), "audit log") {
		t.Fatalf("OpenSessions on the audit file: %v", err)
	}
}

// TestSessionStoreRows: a session is stored, read back, touched (never
// backwards), deleted, and closed stores refuse work. The console's tests
// (internal/console TestSession*) cover restart, replicas and sweeping.
func TestSessionStoreRows(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.OpenSessions(ctx, filepath.Join(t.TempDir(), "console-sessions.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	h := bytes.Repeat([]byte{7}, 32)
	if err := s.CreateSession(ctx, console.StoredSession{Hash: h, Principal: []byte(`{"sub":"bob"}`), Created: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx, h, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx, h, now); err != nil { // an older touch from a slow replica
		t.Fatal(err)
	}
	got, err := s.GetSession(ctx, h)
	if err != nil || got == nil || string(got.Principal) != `{"sub":"bob"}` || !got.Created.Equal(now) || !got.LastSeen.Equal(now.Add(time.Minute)) {
		t.Fatalf("GetSession = %+v, %v", got, err)
	}
	if other, err := s.GetSession(ctx, bytes.Repeat([]byte{8}, 32)); other != nil || err != nil {
		t.Fatalf("an unknown hash: %+v, %v", other, err)
	}
	if err := s.DeleteSession(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSession(ctx, h); got != nil {
		t.Fatal("a deleted session is still there")
	}
	s.Close()
	if _, err := s.GetSession(ctx, h); err == nil {
		t.Fatal("a closed store answered")
	}
}
