package report

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// testLog is a real audit log in a SQLite store with a fixed clock.
type testLog struct {
	dir  string
	path string
	s    note.Signer
	v    note.Verifier
	st   *sqlite.Store
	log  *audit.Log
	mu   sync.Mutex // the clock is read by the log's writer goroutine
	now  time.Time
}

func (tl *testLog) clock() time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.now
}

func (tl *testLog) tick() time.Time {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.now = tl.now.Add(time.Minute)
	return tl.now
}

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

func newTestLog(t testing.TB) *testLog {
	t.Helper()
	dir := t.TempDir()
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	cfg.CheckpointEvery = 7 // several checkpoints inside a small log
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "test-audit")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLog{dir: dir, path: cfg.Path, s: s, v: v, st: st, now: t0}
	l, err := audit.Open(context.Background(), st, cfg, s, v, audit.WithLogger(slog.New(slog.DiscardHandler)),
		audit.WithClock(tl.clock), audit.WithInstance("gw-1"))
	if err != nil {
		t.Fatal(err)
	}
	tl.log = l
	t.Cleanup(func() { tl.close(t) })
	return tl
}

func (tl *testLog) close(t testing.TB) {
	if tl.log != nil {
		if err := tl.log.Close(context.Background()); err != nil {
			t.Errorf("close log: %v", err)
		}
		tl.log = nil
	}
	if tl.st != nil {
		tl.st.Close()
		tl.st = nil
	}
}

func (tl *testLog) add(t testing.TB, e *audit.Entry) {
	t.Helper()
	now := tl.tick()
	if e.Time.IsZero() {
		e.Time = now
	}
	if e.Instance == "" {
		e.Instance = "gw-1"
	}
	if _, err := tl.log.Append(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

var (
	alice  = &identity.Principal{Issuer: "https://idp.example", Subject: "alice", Kind: "user", AuthMethod: "oidc"}
	bob    = &identity.Principal{Issuer: "https://idp.example", Subject: "bob", Kind: "user", AuthMethod: "oidc"}
	robot  = &identity.Principal{Issuer: identity.APIKeyIssuer, Subject: "svc:indexer", Kind: "service", AuthMethod: "api_key", CredentialID: "key-1"}
	allow  = &audit.Decision{Action: "allow", Rule: "chat", PolicyVersion: "sha256:v1"}
	deny   = &audit.Decision{Action: "deny", Rule: "chat-unapproved-model", PolicyVersion: "sha256:v1"}
	hold   = &audit.Decision{Action: "require_approval", Rule: "finetune", PolicyVersion: "sha256:v1"}
	masked = []audit.MaskAction{{Rule: "pii", Entity: "EMAIL", Location: "body", Count: 2}, {Rule: "pii", Entity: "CREDIT_CARD", Location: "body", Count: 1}}
)

// request adds an admitted request and its completion.
func (tl *testLog) request(t testing.TB, id string, p *identity.Principal, d *audit.Decision, outcome string, m []audit.MaskAction) {
	tl.add(t, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: id, Principal: p, Route: "openai", Method: "POST", Path: "/v1/chat/completions", Model: "small", Decision: d, Params: map[string]any{"model": "small"}})
	if outcome == "" {
		return
	}
	tl.add(t, &audit.Entry{Kind: audit.KindRequestCompleted, RequestID: id, Principal: p, Route: "openai", Decision: d, Outcome: outcome, Status: 200, BytesOut: 100, Masking: m})
}

// fillScenario writes a known mix of entries; the counts are asserted by
// TestComputeScenario.
func (tl *testLog) fillScenario(t testing.TB) {
	for i := range 3 {
		tl.request(t, fmt.Sprintf("ok-%d", i), alice, allow, audit.OutcomeOK, masked)
	}
	tl.request(t, "key-1", robot, allow, audit.OutcomeOK, nil)
	tl.request(t, "trunc", alice, allow, audit.OutcomeTruncated, nil)
	tl.request(t, "withheld", alice, allow, audit.OutcomeMaskingFailed, nil)
	tl.request(t, "open", alice, allow, "", nil)
	tl.add(t, &audit.Entry{Kind: audit.KindRequestDenied, RequestID: "deny-1", Principal: alice, Route: "openai", Method: "POST", Path: "/v1/chat/completions", Decision: deny, Status: 403})
	tl.add(t, &audit.Entry{Kind: audit.KindRequestRefused, RequestID: "ref-1", Status: 401, Details: map[string]any{"reason": "unauthenticated"}})
	tl.add(t, &audit.Entry{Kind: audit.KindRequestRefused, RequestID: "ref-2", Status: 401, Details: map[string]any{"reason": "invalid_token", "description": "api key revoked"}})
	tl.add(t, &audit.Entry{Kind: "request.pending_approval", RequestID: "ft-1", Principal: alice, Route: "openai", Decision: hold, ApprovalID: "ap-1", Status: 202})
	tl.add(t, &audit.Entry{Kind: audit.KindApprovalRequested, Principal: alice, ApprovalID: "ap-1", Details: map[string]any{"setting": "finetune"}})
	tl.add(t, &audit.Entry{Kind: "approval.review_refused", Principal: alice, ApprovalID: "ap-1", Details: map[string]any{"setting": "finetune", "self": true}})
	tl.add(t, &audit.Entry{Kind: "approval.reviewed", Principal: bob, ApprovalID: "ap-1", Details: map[string]any{"reason": "ok", "decision": "approve"}})
	tl.add(t, &audit.Entry{Kind: "approval.approved", Principal: bob, ApprovalID: "ap-1", Details: map[string]any{"setting": "finetune", "approved_by": "bob"}})
	tl.request(t, "ft-2", alice, hold, audit.OutcomeOK, nil)
	tl.add(t, &audit.Entry{Kind: audit.KindApprovalRequested, Principal: alice, ApprovalID: "ap-2", Details: map[string]any{"setting": "export"}})
	tl.add(t, &audit.Entry{Kind: "approval.denied", Principal: bob, ApprovalID: "ap-2", Details: map[string]any{"setting": "export", "reason": "no ticket"}})
	tl.add(t, &audit.Entry{Kind: "grant.active", Principal: bob, ApprovalID: "ap-3", GrantID: "ap-3"})
	tl.add(t, &audit.Entry{Kind: audit.KindConfigChanged, Details: map[string]any{"what": "policy", "applied": true, "actor": "file", "old_version": "sha256:v1", "new_version": "sha256:v2"}})
	tl.add(t, &audit.Entry{Kind: audit.KindConfigChanged, Principal: bob, Details: map[string]any{"what": "api_key", "action": "revoked", "key_id": "key-1", "actor": "admin:carol"}})
}
