package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/identity"
)

func runKeys(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newKeysCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// TestKeysCmd: create prints the key once, list never shows it, revoke
// takes effect for an Authenticator reading the same data dir.
func TestKeysCmd(t *testing.T) {
	dir := t.TempDir()
	out, err := runKeys(t, "create", "--data-dir", dir, "--name", "batch", "--groups", "ml, eng", "--expires", "720h")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out)
	if !strings.HasPrefix(key, identity.APIKeyPrefix) {
		t.Fatalf("create printed %q", out)
	}
	auth, err := identity.New(t.Context(), identity.Config{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer auth.Close()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-API-Key", key)
	p, err := auth.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "svc:batch" || strings.Join(p.Groups, ",") != "ml,eng" || p.ExpiresAt.IsZero() {
		t.Fatalf("principal %+v", p)
	}

	out, err = runKeys(t, "list", "--data-dir", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		ID, Name, State string
		Hash            string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].State != "active" || rows[0].Hash != "" {
		t.Fatalf("list: %v %s", err, out)
	}
	if strings.Contains(out, key[len(key)-20:]) {
		t.Fatal("list shows the key")
	}
	if out, err = runKeys(t, "list", "--data-dir", dir); err != nil || !strings.Contains(out, rows[0].ID) {
		t.Fatalf("table list: %v %s", err, out)
	}
	if _, err := runKeys(t, "revoke", "--data-dir", dir, rows[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := runKeys(t, "revoke", "--data-dir", dir, "nope"); err == nil {
		t.Fatal("revoking an unknown id succeeded")
	}
	out, _ = runKeys(t, "list", "--data-dir", dir)
	if !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke: %s", out)
	}
}

// TestKeysListRefusesMissingDataDir: a mistyped --data-dir is an error
// naming the directory, not an empty table with exit 0. An existing data
// dir without keys yet is an empty table.
func TestKeysListRefusesMissingDataDir(t *testing.T) {
	typo := t.TempDir() + "/warden-dta"
	for _, args := range [][]string{{"list", "--data-dir", typo}, {"list", "--data-dir", typo, "--json"}, {"revoke", "--data-dir", typo, "k1"}} {
		out, err := runKeys(t, args...)
		if err == nil || !strings.Contains(err.Error(), typo+" does not exist") {
			t.Errorf("keys %v: err %v, out %q", args, err, out)
		}
	}
	out, err := runKeys(t, "list", "--data-dir", t.TempDir())
	if err != nil || !strings.HasPrefix(out, "ID") {
		t.Fatalf("keys list on an empty data dir: %q %v", out, err)
	}
}
