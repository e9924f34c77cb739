package export

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/export/ocsfschema"
	"github.com/wardenhq/warden/internal/identity"
)

// schemaDir finds ../shared/ocsf-schema-1.8.0 beside the module root (or
// WARDEN_OCSF_SCHEMA), skipping the test where it is absent.
func schemaDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("WARDEN_OCSF_SCHEMA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("no go.mod above the test directory")
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "ocsf-schema-1.8.0")
	if _, err := os.Stat(filepath.Join(d, "dictionary.json")); err != nil {
		t.Skipf("OCSF 1.8 schema not found at %s (it ships in the project's shared folder); skipping schema validation", d)
	}
	return d
}

var (
	schemaOnce *ocsfschema.Schema
)

func loadSchema(t testing.TB) *ocsfschema.Schema {
	t.Helper()
	if schemaOnce != nil {
		return schemaOnce
	}
	s, err := ocsfschema.Load(schemaDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != OCSFVersion {
		t.Fatalf("schema version %s, want %s", s.Version, OCSFVersion)
	}
	schemaOnce = s
	return s
}

// catalogue is the list of event kinds the log holds today (audit
// constants, the approval machine's kinds, the gateway's literal
// request.pending_approval) plus request.abandoned from the terminal-
// record work. When internal/audit gains the complete catalogue (issue
// 14), this list is replaced by it.
var catalogue = []string{
	audit.KindRequestAdmitted, audit.KindRequestCompleted, audit.KindRequestDenied,
	audit.KindRequestRefused, "request.pending_approval", "request.abandoned",
	audit.KindApprovalRequested, audit.KindGrantExpired,
	"approval.reviewed", "approval.approved", "approval.denied", "approval.expired",
	"approval.cancelled", "approval.used", "grant.active", "grant.revoked",
	audit.KindConfigChanged, audit.KindGatewayStarted, audit.KindGatewayStopped, audit.KindVerifyFailed,
	audit.KindExportDeadLettered, audit.KindExportStatus, audit.KindWitnessRefused,
}

func TestEveryKindMapped(t *testing.T) {
	for _, k := range catalogue {
		if _, ok := kindTable[k]; !ok {
			t.Errorf("kind %q has no row in the OCSF mapping table (kinds.go)", k)
		}
	}
	for k := range kindTable {
		if !slices.Contains(catalogue, k) {
			t.Errorf("mapping row for %q, which the catalogue does not list", k)
		}
	}
}

var t0 = time.Date(2026, 11, 26, 20, 0, 0, 123456789, time.UTC)

func alice() *identity.Principal {
	return &identity.Principal{Issuer: "https://idp.example", Subject: "alice", Kind: "user", Name: "Alice",
		Groups: []string{"ml-users", "staff"}, AuthMethod: "oidc"}
}

// sampleEntries returns realistic entries of kind k (several shapes where
// the mapping branches).
func sampleEntries(k string) []*audit.Entry {
	req := func(kind string) *audit.Entry {
		return &audit.Entry{V: 1, Time: t0, Kind: kind, ID: "0193a1b2-0000-7000-8000-000000000001",
			RequestID: "req-1", Instance: "gw-1", Principal: alice(), Route: "openai", Method: "POST",
			Path: "/v1/chat/completions", Model: "llama-3", RequestSHA256: strings.Repeat("ab", 32),
			Params:   map[string]any{"temperature": json.Number("0.2"), "stream": true},
			Decision: &audit.Decision{Action: "allow", Rule: "chat-ok", PolicyVersion: "sha256:00ff", Reason: "approved model"},
			BytesIn:  120}
	}
	switch k {
	case audit.KindRequestCompleted:
		ok := req(k)
		ok.Status, ok.BytesOut, ok.Outcome = 200, 2048, audit.OutcomeOK
		ok.Upstream, ok.Gateway = 800*time.Millisecond, 2*time.Millisecond
		ok.ResponseSHA256 = strings.Repeat("cd", 32)
		ok.Masking = []audit.MaskAction{{Rule: "cards", Entity: "CREDIT_CARD", Location: "choices[0].message.content", Count: 2, Fingerprint: "hmac:1"},
			{Rule: "mails", Entity: "EMAIL_ADDRESS", Count: 1}}
		bad := req(k)
		bad.Status, bad.Outcome = 502, audit.OutcomeUpstreamError
		mf := req(k)
		mf.Status, mf.Outcome = 502, audit.OutcomeMaskingFailed
		mf.Details = map[string]any{"masking_failure": "unterminated string"}
		odd := req(k)
		odd.Method, odd.Principal, odd.Decision, odd.Model = "PROPFIND", nil, nil, ""
		odd.Status, odd.Outcome = 200, audit.OutcomeOK
		return []*audit.Entry{ok, bad, mf, odd}
	case audit.KindRequestDenied:
		e := req(k)
		e.Status = 403
		e.Decision = &audit.Decision{Action: "deny", Rule: "chat-unapproved-model", PolicyVersion: "sha256:00ff", Reason: "only approved models"}
		return []*audit.Entry{e}
	case audit.KindRequestRefused:
		tok := req(k)
		tok.Principal, tok.Decision, tok.Params, tok.Model = nil, nil, nil, ""
		tok.Status = 401
		tok.Details = map[string]any{"reason": "invalid_token", "description": "token expired"}
		none := req(k)
		none.Principal, none.Decision, none.Params, none.Model, none.Route = nil, nil, nil, "", ""
		none.Status = 401
		none.Details = map[string]any{"reason": "unauthenticated", "description": "a bearer token or API key is required"}
		js := req(k)
		js.Status, js.Decision = 400, nil
		js.Details = map[string]any{"reason": "malformed_json"}
		return []*audit.Entry{tok, none, js}
	case "request.pending_approval":
		e := req(k)
		e.Status, e.ApprovalID = 202, "apr-1"
		e.Decision.Action = "require_approval"
		e.Details = map[string]any{"approval_setting": "fine-tune"}
		return []*audit.Entry{e}
	case "request.abandoned":
		e := req(k)
		e.Details = map[string]any{"reason": "no terminal entry before the gateway restarted"}
		return []*audit.Entry{e}
	case audit.KindRequestAdmitted:
		e := req(k)
		e.Method = "GET"
		return []*audit.Entry{e}
	}
	if strings.HasPrefix(k, "approval.") || strings.HasPrefix(k, "grant.") {
		bob := &identity.Principal{Issuer: "https://idp.example", Subject: "bob", Kind: "user", Groups: []string{"ml-approvers"}}
		e := &audit.Entry{V: 1, Time: t0, Kind: k, ID: "0193a1b2-0000-7000-8000-000000000002", Instance: "gw-1",
			Principal: bob, ApprovalID: "apr-1", Method: "POST", Path: "/v1/fine_tuning/jobs", Route: "openai",
			Details: map[string]any{"setting": "fine-tune", "approval_kind": "one_time", "state": "approved",
				"requester": "https://idp.example alice", "reason": "ok for the Q4 model", "justification": "Q4 tuning"}}
		grant := *e
		grant.Details = map[string]any{"setting": "bulk-export", "approval_kind": "grant", "state": "active",
			"scope": "route=openai model=llama-3", "valid_until": "2026-11-27T20:00:00Z"}
		grant.GrantID = "apr-1"
		sys := *e
		sys.Principal = nil
		sys.Details = map[string]any{"setting": "fine-tune", "approval_kind": "one_time", "state": "expired", "reason": "not decided within the request TTL"}
		return []*audit.Entry{e, &grant, &sys}
	}
	switch k {
	case audit.KindConfigChanged:
		ok := &audit.Entry{V: 1, Time: t0, Kind: k, ID: "id-3", Instance: "gw-1",
			Details: map[string]any{"what": "policy", "file": "/etc/warden/policy.yaml", "old_version": "sha256:01", "new_version": "sha256:02", "actor": "sighup", "applied": true}}
		bad := &audit.Entry{V: 1, Time: t0, Kind: k, ID: "id-4",
			Details: map[string]any{"what": "policy", "file": "/etc/warden/policy.yaml", "old_version": "sha256:01", "actor": "file watch", "applied": false, "error": "rule 3: syntax error"}}
		return []*audit.Entry{ok, bad}
	case audit.KindGatewayStarted:
		ok := &audit.Entry{V: 1, Time: t0, Kind: k, ID: "id-5", Instance: "gw-1",
			Details: map[string]any{"verified_entries": json.Number("100"), "unverified_start": false}}
		bad := &audit.Entry{V: 1, Time: t0, Kind: k, ID: "id-6",
			Details: map[string]any{"unverified_start": true, "divergence": "entry 5: leaf hash mismatch"}}
		return []*audit.Entry{ok, bad}
	case audit.KindGatewayStopped:
		return []*audit.Entry{{V: 1, Time: t0, Kind: k, ID: "id-7", Instance: "gw-1"}}
	case audit.KindVerifyFailed:
		return []*audit.Entry{{V: 1, Time: t0, Kind: k, ID: "id-8",
			Details: map[string]any{"divergence": "entry 23: leaf hash mismatch", "seq": json.Number("23")}}}
	case audit.KindExportDeadLettered:
		return []*audit.Entry{{V: 1, Time: t0, Kind: k, ID: "id-9", Instance: "gw-1",
			Details: map[string]any{"sink": "hec", "uid": "warden-audit/7", "seq": json.Number("7"), "kind": "request.completed", "reason": "400 invalid event"}}}
	case audit.KindExportStatus:
		return []*audit.Entry{{V: 1, Time: t0, Kind: k, ID: "id-10", Instance: "gw-1",
			Details: map[string]any{"reason": "periodic", "sinks": []any{map[string]any{"sink": "hec", "cursor": json.Number("40"), "lag_entries": json.Number("2"),
				"lag_seconds": json.Number("0.5"), "delivered": json.Number("38"), "failed": json.Number("1"), "dead_lettered": json.Number("1")}}}}}
	case audit.KindWitnessRefused:
		return []*audit.Entry{{V: 1, Time: t0, Kind: k, ID: "id-11", Instance: "gw-1",
			Details: map[string]any{"witness": "w1", "size": json.Number("40"), "result": "refused", "reason": "inconsistent with the tree of size 45 it cosigned"}}}
	}
	return []*audit.Entry{{V: 1, Time: t0, Kind: k, ID: "id-x"}}
}

// TestOCSFValid maps every kind of the catalogue (in every shape the
// mapping branches on, with and without dropped parameters, with a
// frontier) and validates each event against the OCSF 1.8 class
// definitions.
func TestOCSFValid(t *testing.T) {
	s := loadSchema(t)
	classes := map[string]int{}
	for _, drop := range []bool{false, true} {
		m := &Mapper{Origin: "warden-audit", ProductVersion: "v0.9.0", DropParams: drop}
		for _, k := range append(slices.Clone(catalogue), "future.kind") {
			for i, e := range sampleEntries(k) {
				e.Seq = int64(40 + i)
				ev, err := m.Entry(e, nil, []tlog.Hash{{1}, {2}})
				if err != nil {
					t.Fatalf("%s #%d: %v", k, i, err)
				}
				if err := s.Validate(ev.JSON); err != nil {
					t.Errorf("%s #%d (drop_params=%v) does not validate:\n%v\n%s", k, i, drop, err, ev.JSON)
				}
				var got struct {
					ClassUID int `json:"class_uid"`
					Metadata struct {
						UID     string
						Product struct{ Name, Version string }
					}
				}
				if err := json.Unmarshal(ev.JSON, &got); err != nil {
					t.Fatal(err)
				}
				if got.Metadata.UID != "warden-audit/"+itoa(e.Seq) || ev.UID != got.Metadata.UID {
					t.Errorf("%s: metadata.uid %q, Event.UID %q", k, got.Metadata.UID, ev.UID)
				}
				if got.Metadata.Product.Name != "Warden" || got.Metadata.Product.Version != "v0.9.0" {
					t.Errorf("%s: metadata.product %+v", k, got.Metadata.Product)
				}
				if i == 0 {
					classes[k] = got.ClassUID
				}
			}
		}
		cp, err := m.Checkpoint(audit.Checkpoint{Size: 42, Hash: tlog.Hash{9}, Time: t0, Note: []byte("warden-audit\n42\n…\n\n— warden-audit sig\n")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(cp.JSON); err != nil {
			t.Errorf("checkpoint does not validate: %v\n%s", err, cp.JSON)
		}
	}
	// The classes the issue names.
	want := map[string]int{
		audit.KindRequestCompleted: 6003, audit.KindRequestAdmitted: 6003, audit.KindRequestDenied: 6003,
		audit.KindRequestRefused: 3002, // first sample: a bad token
		"grant.active":           3005, "approval.requested": 3004, audit.KindConfigChanged: 3004,
		audit.KindGatewayStarted: 6002, audit.KindVerifyFailed: 1008, "future.kind": 0,
		audit.KindExportDeadLettered: 1008, audit.KindExportStatus: 1008, audit.KindWitnessRefused: 1008,
	}
	for k, c := range want {
		if classes[k] != c {
			t.Errorf("%s maps to class %d, want %d", k, classes[k], c)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestRequestMessages pins the message and src_endpoint of the request
// kinds every request writes (built without fmt since decision 029).
func TestRequestMessages(t *testing.T) {
	for _, c := range []struct {
		name     string
		kind     string
		edit     func(e *audit.Entry)
		message  string
		endpoint string
	}{
		{"admitted", audit.KindRequestAdmitted, nil, "alice: GET /v1/chat/completions admitted", `{"name":"unrecorded"}`},
		{"completed", audit.KindRequestCompleted, nil, "alice: POST /v1/chat/completions completed: ok, status 200", `{"name":"unrecorded"}`},
		{"anonymous, no status", audit.KindRequestCompleted, func(e *audit.Entry) { e.Principal, e.Status, e.Outcome = nil, 0, "upstream_error" },
			"anonymous: POST /v1/chat/completions completed: upstream_error, status 0", `{"name":"unrecorded"}`},
		{"abandoned", audit.KindRequestAbandoned, func(e *audit.Entry) { e.Outcome = "" }, "alice: POST /v1/chat/completions completed: abandoned, status 200", `{"name":"unrecorded"}`},
		{"client ip", audit.KindRequestCompleted, func(e *audit.Entry) { e.Details = map[string]any{"client_ip": "2001:db8::1"} },
			"alice: POST /v1/chat/completions completed: ok, status 200", `{"ip":"2001:db8::1"}`},
		{"bad client ip", audit.KindRequestAdmitted, func(e *audit.Entry) { e.Details = map[string]any{"client_ip": "not an ip"} },
			"alice: GET /v1/chat/completions admitted", `{"name":"unrecorded"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := sampleEntries(c.kind)[0]
			e.Status = 200
			if c.edit != nil {
				c.edit(e)
			}
			m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
			ev, err := m.Entry(e, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Message     string          `json:"message"`
				SrcEndpoint json.RawMessage `json:"src_endpoint"`
			}
			if err := json.Unmarshal(ev.JSON, &got); err != nil {
				t.Fatal(err)
			}
			if got.Message != c.message || string(got.SrcEndpoint) != c.endpoint {
				t.Fatalf("message %q, src_endpoint %s; want %q, %s", got.Message, got.SrcEndpoint, c.message, c.endpoint)
			}
		})
	}
}
