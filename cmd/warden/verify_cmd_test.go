package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

func runCmd(t *testing.T, cmd *cobra.Command, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		out.WriteString("error: " + err.Error() + "\n")
		return out.String(), exitCode(err)
	}
	return out.String(), 0
}

func TestKeygenAndVerify(t *testing.T) {
	dir := t.TempDir()
	out, code := runCmd(t, newKeygenCmd(), "--data-dir", dir, "--name", "acme-audit")
	if code != 0 || !strings.HasPrefix(out, "acme-audit+") {
		t.Fatalf("keygen: %d %s", code, out)
	}
	fi, err := os.Stat(filepath.Join(dir, "keys", "audit.signer"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signer key: %v %v", fi, err)
	}
	if out, code := runCmd(t, newKeygenCmd(), "--data-dir", dir); code == 0 {
		t.Fatalf("keygen overwrote an existing key: %s", out)
	}

	// A gateway run writes a log with the generated key.
	cfg := audit.Config{CheckpointEvery: 10}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "unused")
	if err != nil || v.Name() != "acme-audit" {
		t.Fatalf("load generated key: %v %v", v, err)
	}
	writeAdmissions(t, cfg, s, v, 30)

	out, code = runCmd(t, newVerifyCmd(), "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "verified entries [0, 32)") || !strings.HasSuffix(out, "OK\n") || !strings.Contains(out, "entries/s") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}

	seg := filepath.Join(t.TempDir(), "seg.jsonl")
	out, code = runCmd(t, newVerifyCmd(), "--data-dir", dir, "--write-segment", seg, "--from", "11", "--to", "32")
	if code != 0 {
		t.Fatalf("verify --write-segment: exit %d\n%s", code, out)
	}
	out, code = runCmd(t, newVerifyCmd(), "--segment", seg, "--key", filepath.Join(dir, "keys", "audit.verifier"))
	if code != 0 || !strings.Contains(out, "verified entries [11, 32)") {
		t.Fatalf("verify --segment: exit %d\n%s", code, out)
	}

	// Tamper with the segment and the store: exit 1, the place named.
	b, _ := os.ReadFile(seg)
	os.WriteFile(seg, bytes.Replace(b, []byte(`"model":"m"`), []byte(`"model":"M"`), 1), 0o644)
	out, code = runCmd(t, newVerifyCmd(), "--segment", seg, "--key", filepath.Join(dir, "keys", "audit.verifier"))
	if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "[11, 21)") {
		t.Fatalf("tampered segment: exit %d\n%s", code, out)
	}
	replaceInRecord(t, cfg.Path, 7, `"model":"m"`, `"model":"x"`)
	out, code = runCmd(t, newVerifyCmd(), "--data-dir", dir)
	if code != 1 || !strings.Contains(out, "FAILED: entry 7: leaf hash mismatch") {
		t.Fatalf("tampered store: exit %d\n%s", code, out)
	}
	if out, code = runCmd(t, newVerifyCmd(), "--data-dir", t.TempDir()); code != 2 {
		t.Fatalf("verify of an empty dir: exit %d\n%s", code, out)
	}
}

// TestKeygenRecordingsKEK: keygen --recordings-kek writes a key file the
// recorder loads (mode 0600) and never overwrites one.
func TestKeygenRecordingsKEK(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recordings.kek")
	if out, code := runCmd(t, newKeygenCmd(), "--recordings-kek", path); code != 0 {
		t.Fatalf("keygen --recordings-kek: %d %s", code, out)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kek file: %v %v", fi, err)
	}
	k, err := recording.LoadKEKFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if out, code := runCmd(t, newKeygenCmd(), "--recordings-kek", path); code == 0 {
		t.Fatalf("keygen overwrote an existing key: %s", out)
	}
	if again, err := recording.LoadKEKFile(path); err != nil || again.ID() != k.ID() {
		t.Fatalf("key changed after a refused keygen: %v", err)
	}
}

// writeAdmissions opens the SQLite store of cfg with a log signed by s,
// appends n admissions (request "r", model "m") and closes both.
func writeAdmissions(t *testing.T, cfg audit.Config, s note.Signer, v note.Verifier, n int) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, st, cfg, s, v)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := l.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: "r", Model: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close(ctx)
	st.Close()
}
