package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// TestIndexCommands: an edit of the search index alone (the log still
// verifies) is reported by warden index check (exit 1) and warden verify
// (exit 3); warden index rebuild repairs it.
func TestIndexCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	ctx := context.Background()
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "idx-audit")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, st, cfg, s, v)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := l.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "r",
			Principal: &identity.Principal{Issuer: "https://idp", Subject: "alice", Kind: "user"}}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close(ctx)
	if _, err := st.Search(ctx, audit.Query{}); err != nil { // catches the index up
		t.Fatal(err)
	}
	st.Close()

	if out, code := runCmd(t, newIndexCmd(), "check", "--data-dir", dir); code != 0 || !strings.HasSuffix(out, "OK\n") {
		t.Fatalf("index check of an untouched index: exit %d\n%s", code, out)
	}
	db, err := sql.Open("sqlite", "file:"+sqlite.IndexPath(cfg.Path))
	if err != nil {
		t.Fatal(err)
	}
	// The request id is a term of the full text (decision 046): x and the
	// hex of "forged" instead of "r"'s.
	if _, err := db.Exec("INSERT INTO entry_text(entry_text, rowid, ids) VALUES ('delete', 3, 'x72')"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO entry_text(rowid, ids) VALUES (3, 'x' || lower(hex('forged')))"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, code := runCmd(t, newIndexCmd(), "check", "--data-dir", dir)
	if code != 1 || !strings.Contains(out, `search index: entry 3: altered text: terms the entry does not have: request_id=forged; terms missing: request_id=r`) {
		t.Fatalf("index check of an edited index: exit %d\n%s", code, out)
	}
	out, code = runCmd(t, newVerifyCmd(), "--data-dir", dir)
	if code != 3 || !strings.Contains(out, "verified entries [0, 12)") || !strings.Contains(out, "LOG OK, SEARCH INDEX DIFFERS") {
		t.Fatalf("verify with an edited index: exit %d\n%s", code, out)
	}
	if out, code := runCmd(t, newVerifyCmd(), "--data-dir", dir, "--skip-index"); code != 0 {
		t.Fatalf("verify --skip-index: exit %d\n%s", code, out)
	}
	if out, code := runCmd(t, newIndexCmd(), "rebuild", "--data-dir", dir); code != 0 || !strings.Contains(out, "12 entries") {
		t.Fatalf("index rebuild: exit %d\n%s", code, out)
	}
	if out, code := runCmd(t, newVerifyCmd(), "--data-dir", dir); code != 0 || !strings.Contains(out, "search index: matches the log's 12 entries") {
		t.Fatalf("verify after rebuild: exit %d\n%s", code, out)
	}
}
