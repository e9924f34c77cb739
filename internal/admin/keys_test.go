package admin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// TestKeys: an admin creates a key (shown once), the key authenticates,
// the list shows neither keys nor hashes, a revoked key is refused at
// once; both changes are in the audit log with the admin who made them,
// never with the key.
func TestKeys(t *testing.T) {
	e := newEnv(t)
	a := e.do("POST", "/v1/keys", "erin", `{"name":"batch-indexer","groups":["auditors"],"expires":"720h"}`)
	m := a.json(t)
	key, _ := m["key"].(string)
	if a.status != 201 || !strings.HasPrefix(key, "wk_") || m["state"] != "active" || m["expires_at"] == nil {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	id := m["id"].(string)
	// The new key is a credential of the admin API (an auditor here).
	if a := e.do("GET", "/v1/audit/checkpoints", "", "", "X-API-Key", key); a.status != 200 {
		t.Fatalf("the new key: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/audit/checkpoints", "raw:Bearer "+key, ""); a.status != 200 {
		t.Fatalf("the new key as a bearer token: %d %s", a.status, a.body)
	}
	// An API key cannot manage keys unless its groups hold the admin role.
	if a := e.do("GET", "/v1/keys", "", "", "X-API-Key", key); a.status != 403 {
		t.Fatalf("auditor key lists keys: %d %s", a.status, a.body)
	}
	a = e.do("GET", "/v1/keys", "erin", "")
	if a.status != 200 || strings.Contains(string(a.body), key[3:]) || strings.Contains(string(a.body), `"hash"`) ||
		!strings.Contains(string(a.body), id) {
		t.Fatalf("list: %d %s", a.status, a.body)
	}
	a = e.do("POST", "/v1/keys/"+id+"/revoke", "erin", "")
	if a.status != 200 || a.json(t)["state"] != "revoked" {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	if a := e.do("GET", "/v1/audit/checkpoints", "", "", "X-API-Key", key); a.status != 401 || a.errorType(t) != "invalid_token" ||
		!strings.Contains(string(a.body), "revoked") {
		t.Fatalf("revoked key: %d %s", a.status, a.body)
	}
	es, err := e.audit.Search(context.Background(), audit.Query{Kind: audit.KindConfigChanged, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, en := range es {
		b, _ := audit.Marshal(en)
		if strings.Contains(string(b), key[3:]) {
			t.Fatalf("the key is in the audit log: %s", b)
		}
		if en.Details["what"] == "api_key" && en.Details["key_id"] == id && en.Details["actor"] == "admin:erin" && en.Principal.Subject == "erin" {
			actions = append(actions, en.Details["action"].(string))
		}
	}
	if strings.Join(actions, ",") != "created,revoked" {
		t.Fatalf("audit of key changes: %v", actions)
	}
}

// TestKeysFailClosed: when the audit log cannot record, a new key is
// revoked at once (and the caller told so), and a revocation does not
// happen.
func TestKeysFailClosed(t *testing.T) {
	e := newEnv(t)
	_, rec, err := e.keys.Create("old", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.audit.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := e.do("POST", "/v1/keys", "erin", `{"name":"sneaky"}`)
	if a.status != 503 || a.errorType(t) != "audit_unavailable" || strings.Contains(string(a.body), "wk_") {
		t.Fatalf("create without audit: %d %s", a.status, a.body)
	}
	a = e.do("POST", "/v1/keys/"+rec.ID+"/revoke", "erin", "")
	if a.status != 503 || a.errorType(t) != "audit_unavailable" {
		t.Fatalf("revoke without audit: %d %s", a.status, a.body)
	}
	keys, err := e.keys.List()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, k := range keys {
		switch {
		case k.Name == "sneaky" && k.State(now) != "revoked":
			t.Fatalf("an unrecorded key works: %+v", k)
		case k.Name == "old" && k.State(now) != "active":
			t.Fatalf("an unrecorded revocation happened: %+v", k)
		}
	}
	_ = http.StatusOK
}
