package audit_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

func getJSON(t *testing.T, url string, status int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: status %d, want %d: %s", url, resp.StatusCode, status, body)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, body)
		}
	}
}

func TestHandler(t *testing.T) {
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 10 })
	for i := 0; i < 25; i++ {
		en := request(i)
		if i == 7 {
			en.Params["prompt"] = "summarise the quarterly numbers"
			en.Masking = []audit.MaskAction{{Rule: "iban", Entity: "IBAN_CODE", Count: 1}}
		}
		if _, err := e.log.Append(context.Background(), en); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(audit.NewHandler(e.log))
	defer srv.Close()
	base := srv.URL + "/v1/audit"

	// Search with paging.
	type page struct {
		Entries []struct {
			Seq   int64          `json:"seq"`
			Entry map[string]any `json:"entry"`
		} `json:"entries"`
		Next string `json:"next"`
	}
	var seen []int64
	q := "kind=request.admitted&limit=10"
	for i := 0; i < 10 && q != ""; i++ {
		var p page
		getJSON(t, base+"/entries?"+q, 200, &p)
		for _, en := range p.Entries {
			seen = append(seen, en.Seq)
			if en.Entry["kind"] != "request.admitted" {
				t.Fatalf("entry %d has kind %v", en.Seq, en.Entry["kind"])
			}
		}
		q = p.Next
	}
	if len(seen) != 25 || seen[0] != 1 || seen[24] != 25 {
		t.Fatalf("paged search saw %v", seen)
	}
	var p page
	getJSON(t, base+"/entries?q=quarterly", 200, &p)
	if len(p.Entries) != 1 || p.Entries[0].Seq != 8 {
		t.Fatalf("full text search: %+v", p)
	}
	getJSON(t, base+"/entries?mask_rule=iban", 200, &p)
	if len(p.Entries) != 1 || p.Entries[0].Seq != 8 {
		t.Fatalf("mask rule search: %+v", p)
	}
	getJSON(t, base+"/entries?from=yesterday", 400, nil)
	getJSON(t, base+"/entries?limit=-1", 400, nil)

	// An entry with its inclusion proof, checked by the client.
	var ent struct {
		Seq        int64            `json:"seq"`
		Entry      json.RawMessage  `json:"entry"`
		TreeSize   int64            `json:"tree_size"`
		Checkpoint string           `json:"checkpoint"`
		Proof      tlog.RecordProof `json:"proof"`
		Pending    bool             `json:"pending"`
	}
	getJSON(t, base+"/entries/8", 200, &ent)
	cp, err := audit.OpenCheckpoint([]byte(ent.Checkpoint), e.ver)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != ent.TreeSize || cp.Size != 21 {
		t.Fatalf("proof against tree %d (checkpoint %d), want 21", ent.TreeSize, cp.Size)
	}
	if err := audit.CheckEntryProof(ent.Proof, cp, 8, ent.Entry); err != nil {
		t.Fatalf("inclusion proof from the API does not verify: %v", err)
	}
	ent.Proof, ent.Pending = nil, false
	getJSON(t, base+"/entries/24", 200, &ent)
	if !ent.Pending || ent.Proof != nil {
		t.Fatalf("entry beyond the latest checkpoint: pending=%v proof=%v", ent.Pending, ent.Proof)
	}
	getJSON(t, base+"/entries/999", 404, nil)
	getJSON(t, base+"/entries/x", 400, nil)

	// Consistency between two checkpoints.
	var cps struct {
		Checkpoints []struct {
			Size int64  `json:"size"`
			Note string `json:"note"`
		} `json:"checkpoints"`
	}
	getJSON(t, base+"/checkpoints", 200, &cps)
	if len(cps.Checkpoints) != 3 { // 1, 11, 21
		t.Fatalf("checkpoints: %+v", cps)
	}
	older, _ := audit.OpenCheckpoint([]byte(cps.Checkpoints[1].Note), e.ver)
	newer, _ := audit.OpenCheckpoint([]byte(cps.Checkpoints[2].Note), e.ver)
	var cons struct {
		Proof tlog.TreeProof `json:"proof"`
	}
	getJSON(t, base+"/consistency?"+url.Values{"from": {"11"}, "to": {"21"}}.Encode(), 200, &cons)
	if err := audit.CheckConsistencyProof(cons.Proof, older, newer); err != nil {
		t.Fatal(err)
	}
	getJSON(t, base+"/consistency?from=0&to=21", 400, nil)
	getJSON(t, base+"/consistency?from=5&to=9999", 400, nil)

	resp, err := http.Get(base + "/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if c, err := audit.OpenCheckpoint(body, e.ver); err != nil || c.Size != 21 || !strings.HasPrefix(string(body), "test-audit\n21\n") {
		t.Fatalf("latest checkpoint: %q, %v", body, err)
	}
}
