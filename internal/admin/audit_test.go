package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

func appendRequests(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		en := &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: fmt.Sprintf("req-%d", i),
			Principal: &identity.Principal{Issuer: "https://idp.example", Subject: "alice", Kind: "user", Email: "alice@example.com"},
			Route:     "chat", Method: "POST", Path: "/v1/chat/completions", Model: "llama-3",
			Params: map[string]any{"temperature": 0.2, "n": i}, Decision: &audit.Decision{Action: "allow", Rule: "default"}}
		if i == 7 {
			en.Params["prompt"] = "summarise the quarterly <numbers> & more"
			en.Masking = []audit.MaskAction{{Rule: "iban", Entity: "IBAN_CODE", Count: 1}}
		}
		if _, err := l.Append(context.Background(), en); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditAPI: search with paging, full text and filters; an entry's
// canonical bytes with an inclusion proof a client checks itself;
// consistency proofs; checkpoints. (The audit API's former test, moved
// with the endpoints.)
func TestAuditAPI(t *testing.T) {
	e := newEnv(t)
	appendRequests(t, e.audit, 25) // the log's gateway.started entry is seq 0
	get := func(path string, v any) {
		t.Helper()
		a := e.do("GET", path, "dan", "")
		if a.status != 200 {
			t.Fatalf("GET %s: %d %s", path, a.status, a.body)
		}
		if err := json.Unmarshal(a.body, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	type page struct {
		Entries []struct {
			Seq   int64           `json:"seq"`
			Entry json.RawMessage `json:"entry"`
		} `json:"entries"`
		Next string `json:"next"`
	}
	var seen []int64
	q := "kind=request.admitted&limit=10"
	for i := 0; i < 10 && q != ""; i++ {
		var p page
		get("/v1/audit/entries?"+q, &p)
		for _, en := range p.Entries {
			seen = append(seen, en.Seq)
			// The bytes are the stored canonical bytes: they parse strictly.
			if _, err := audit.ParseEntry(en.Seq, en.Entry); err != nil {
				t.Fatalf("entry %d is not canonical: %v", en.Seq, err)
			}
			if strings.Contains(string(en.Entry), "alice@example.com") {
				t.Fatal("an email reached the audit record")
			}
		}
		q = p.Next
	}
	if len(seen) != 25 || seen[0] != 1 || seen[24] != 25 {
		t.Fatalf("paged search saw %v", seen)
	}
	var p page
	get("/v1/audit/entries?q=quarterly", &p)
	if len(p.Entries) != 1 || p.Entries[0].Seq != 8 || !strings.Contains(string(p.Entries[0].Entry), "<numbers> & more") {
		t.Fatalf("full text search (HTML must not be escaped): %+v", p)
	}
	get("/v1/audit/entries?mask_rule=iban", &p)
	if len(p.Entries) != 1 || p.Entries[0].Seq != 8 {
		t.Fatalf("mask rule search: %+v", p)
	}
	get("/v1/audit/entries?desc=true&limit=3", &p)
	if len(p.Entries) != 3 || p.Entries[0].Seq != 25 || p.Next == "" {
		t.Fatalf("newest first: %+v", p)
	}

	var ent struct {
		Seq        int64            `json:"seq"`
		Entry      json.RawMessage  `json:"entry"`
		LeafHash   tlog.Hash        `json:"leaf_hash"`
		TreeSize   int64            `json:"tree_size"`
		Checkpoint string           `json:"checkpoint"`
		Proof      tlog.RecordProof `json:"proof"`
		Pending    bool             `json:"pending"`
	}
	get("/v1/audit/entries/8", &ent)
	cp, err := audit.OpenCheckpoint([]byte(ent.Checkpoint), e.ver)
	if err != nil {
		t.Fatal(err)
	}
	// Every batch is signed before it is acknowledged: the proof is
	// against the head covering all 26 entries.
	if cp.Size != ent.TreeSize || cp.Size != 26 || ent.LeafHash != tlog.RecordHash(ent.Entry) {
		t.Fatalf("proof against tree %d (checkpoint %d), want 26", ent.TreeSize, cp.Size)
	}
	if err := audit.CheckEntryProof(ent.Proof, cp, 8, ent.Entry); err != nil {
		t.Fatalf("inclusion proof from the API does not verify: %v", err)
	}
	ent.Proof, ent.Pending = nil, false
	get("/v1/audit/entries/25", &ent)
	if ent.Pending || ent.Proof == nil || ent.TreeSize != 26 {
		t.Fatalf("the last acknowledged entry: pending=%v proof=%v tree %d", ent.Pending, ent.Proof, ent.TreeSize)
	}

	var cps struct {
		Checkpoints []struct {
			Size int64  `json:"size"`
			Note string `json:"note"`
		} `json:"checkpoints"`
	}
	get("/v1/audit/checkpoints", &cps)
	if len(cps.Checkpoints) != 3 { // 1, 11, 21
		t.Fatalf("checkpoints: %+v", cps)
	}
	older, _ := audit.OpenCheckpoint([]byte(cps.Checkpoints[1].Note), e.ver)
	newer, _ := audit.OpenCheckpoint([]byte(cps.Checkpoints[2].Note), e.ver)
	var cons struct {
		Proof tlog.TreeProof `json:"proof"`
	}
	get("/v1/audit/consistency?"+url.Values{"from": {"11"}, "to": {"21"}}.Encode(), &cons)
	if err := audit.CheckConsistencyProof(cons.Proof, older, newer); err != nil {
		t.Fatal(err)
	}

	a := e.do("GET", "/v1/audit/checkpoint", "dan", "")
	if c, err := audit.OpenCheckpoint(a.body, e.ver); err != nil || c.Size != 26 || !strings.HasPrefix(string(a.body), "admin-test\n26\n") ||
		a.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("latest checkpoint: %q, %v", a.body, err)
	}
	// HEAD is GET without a body.
	if h := e.do("HEAD", "/v1/audit/checkpoint", "dan", ""); h.status != 200 || len(h.body) != 0 {
		t.Fatalf("HEAD: %d %q", h.status, h.body)
	}
}

// TestAuditAPIStoreClosed: a closed audit store is 503 "unavailable",
// never its error text.
func TestAuditAPIStoreClosed(t *testing.T) {
	e := newEnv(t)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/v1/audit/entries", "/v1/audit/checkpoints", "/v1/audit/entries/0"} {
		a := e.do("GET", p, "dan", "")
		if a.status != 503 || a.errorType(t) != "unavailable" {
			t.Fatalf("%s on a closed store: %d %s", p, a.status, a.body)
		}
		if strings.Contains(string(a.body), "sqlite") || strings.Contains(string(a.body), "store closed") {
			t.Fatalf("internal detail in %s", a.body)
		}
	}
}

// TestAuditCounts: counts come from the log, grouped as asked, tied to
// the checkpoint they were taken over; the kind catalogue is served.
func TestAuditCounts(t *testing.T) {
	e := newEnv(t)
	appendRequests(t, e.audit, 12)
	for i := range 3 {
		en := &audit.Entry{Kind: audit.KindRequestDenied, RequestID: fmt.Sprintf("d-%d", i),
			Principal: &identity.Principal{Issuer: "https://idp.example", Subject: "mallory", Kind: "user"},
			Decision:  &audit.Decision{Action: "deny", Rule: "no-mallory"}}
		if _, err := e.audit.Append(context.Background(), en); err != nil {
			t.Fatal(err)
		}
	}
	var c struct {
		Total  int64 `json:"total"`
		Groups []struct {
			Kind, Principal, Rule string
			Count                 int64
		} `json:"groups"`
		TreeSize   int64  `json:"tree_size"`
		Checkpoint string `json:"checkpoint"`
	}
	a := e.do("GET", "/v1/audit/counts?by=kind,principal,rule&kind=", "dan", "")
	if a.status != 200 {
		t.Fatalf("counts: %d %s", a.status, a.body)
	}
	if err := json.Unmarshal(a.body, &c); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, g := range c.Groups {
		got[g.Kind+"/"+g.Principal+"/"+g.Rule] = g.Count
	}
	// The checkpoint may lag the last appends; what it covers is counted.
	if c.TreeSize == 0 || c.Total != c.TreeSize || !strings.Contains(c.Checkpoint, fmt.Sprintf("\n%d\n", c.TreeSize)) {
		t.Fatalf("counts %+v not tied to its checkpoint", c)
	}
	if got["gateway.started//"] != 1 || got["request.admitted/alice/default"] > 12 || len(got) > 3 {
		t.Fatalf("groups = %v", got)
	}
	var k struct {
		Kinds []audit.KindInfo `json:"kinds"`
	}
	a = e.do("GET", "/v1/audit/kinds", "dan", "")
	if err := json.Unmarshal(a.body, &k); err != nil || a.status != 200 || len(k.Kinds) != len(audit.Kinds()) {
		t.Fatalf("kinds: %d %s", a.status, a.body)
	}
}
