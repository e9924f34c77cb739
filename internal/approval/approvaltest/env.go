// Package approvaltest is the suite every approval.Store must pass: the
// Store contract and the approval workflow end to end (Service on the
// store, real audit log), so both kinds, both modes, separation of
// duties, thresholds, expiry, revocation, races, restarts and replicas
// are proved on SQLite and on PostgreSQL alike.
//
// A store package calls Run with a function that creates a fresh empty
// database and returns an Opener for it:
//
//	func TestApprovalSuite(t *testing.T) {
//		approvaltest.Run(t, func(t *testing.T) approvaltest.Opener {
//			path := filepath.Join(t.TempDir(), "approvals.db")
//			return func(t *testing.T) approval.Store { … OpenApprovals(ctx, path) … }
//		})
//	}
package approvaltest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// Opener opens a new handle on one database; every call sees the same
// data (a restart, or another replica). The handle must be closed by a
// t.Cleanup registered by the Opener.
type Opener func(t *testing.T) approval.Store

// Clock is a settable test clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at the current time (truncated to the microsecond).
func NewClock() *Clock { return &Clock{t: time.Now().UTC().Truncate(time.Microsecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// AuditLog is a real audit log on a temporary SQLite store.
type AuditLog struct {
	*audit.Log
	st *sqlite.Store
}

// NewAuditLog opens an audit log in a temporary directory, closed at the
// end of the test.
func NewAuditLog(t testing.TB) *AuditLog {
	t.Helper()
	dir := t.TempDir()
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	signer, verifier, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "approval-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Path = st.Path()
	l, err := audit.Open(context.Background(), st, cfg, signer, verifier)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	a := &AuditLog{Log: l, st: st}
	t.Cleanup(func() { a.Close() })
	return a
}

// Close closes the log and its store (twice is harmless).
func (a *AuditLog) Close() {
	a.Log.Close(context.Background())
	a.st.Close()
}

// Kinds returns the kinds of the entries of approval id, in log order.
func (a *AuditLog) Kinds(t testing.TB, id string) []string {
	t.Helper()
	var out []string
	for _, e := range a.Entries(t, id) {
		out = append(out, e.Kind)
	}
	return out
}

// Entries returns the entries of approval id, in log order.
func (a *AuditLog) Entries(t testing.TB, id string) []*audit.Entry {
	t.Helper()
	es, err := a.Search(context.Background(), audit.Query{ApprovalID: id, Limit: 1000})
	if err != nil {
		t.Fatalf("audit search: %v", err)
	}
	return es
}

// Principals used by the suite.
var (
	Alice = &identity.Principal{Issuer: "https://idp.test", Subject: "alice", Kind: identity.KindUser, Name: "Alice", Groups: []string{"ml-engineers"}}
	// AliceAdmin is alice in every group, reviewer and admin groups
	// included: still not allowed to approve her own requests.
	AliceAdmin = &identity.Principal{Issuer: "https://idp.test", Subject: "alice", Kind: identity.KindUser, Groups: []string{"ml-engineers", "ml-leads", "security", "ml-admins"}}
	Bob        = &identity.Principal{Issuer: "https://idp.test", Subject: "bob", Kind: identity.KindUser, Name: "Bob", Groups: []string{"ml-leads"}}
	Carol      = &identity.Principal{Issuer: "https://idp.test", Subject: "carol", Kind: identity.KindUser, Groups: []string{"ml-leads"}}
	Dave       = &identity.Principal{Issuer: "https://idp.test", Subject: "dave", Kind: identity.KindUser, Groups: []string{"security"}}
	Erin       = &identity.Principal{Issuer: "https://idp.test", Subject: "erin", Kind: identity.KindUser, Groups: []string{"ml-leads", "security"}}
	Mallory    = &identity.Principal{Issuer: "https://idp.test", Subject: "mallory", Kind: identity.KindUser, Groups: []string{"ml-engineers"}}
	// BobOtherIssuer has bob's subject at another issuer: another person.
	BobOtherIssuer = &identity.Principal{Issuer: "https://other.test", Subject: "alice", Kind: identity.KindUser, Groups: []string{"ml-leads"}}
)

// Reviewer returns a principal named name in groups.
func Reviewer(name string, groups ...string) *identity.Principal {
	return &identity.Principal{Issuer: "https://idp.test", Subject: name, Kind: identity.KindUser, Groups: groups}
}

// OneTime returns a one-time setting reviewed by ml-leads.
func OneTime(mode policy.ApprovalMode) *policy.ApprovalSetting {
	return &policy.ApprovalSetting{Kind: policy.ApprovalOneTime, Mode: mode, Reviewers: []string{"ml-leads"}, MinApprovals: 1, TTL: time.Hour, HoldTimeout: 10 * time.Minute}
}

// Grant returns a grant setting reviewed by ml-leads for the fine-tune
// route.
func Grant(mode policy.ApprovalMode) *policy.ApprovalSetting {
	return &policy.ApprovalSetting{Kind: policy.ApprovalGrant, Mode: mode, Reviewers: []string{"ml-leads"}, MinApprovals: 1, TTL: time.Hour,
		HoldTimeout: 10 * time.Minute, GrantDuration: 2 * time.Hour, Scope: policy.GrantScope{Routes: []string{"fine-tune"}, Paths: []string{"/v1/fine_tuning/**"}}}
}

// Call returns a gate request of p for a fine-tuning call with body hash
// body.
func Call(p *identity.Principal, name string, set *policy.ApprovalSetting, body string) approval.GateRequest {
	return approval.GateRequest{
		Principal: p, SettingName: name, Setting: set, RequestID: "req-" + body,
		Method: "POST", Path: "/v1/fine_tuning/jobs", Route: "fine-tune", Model: "llama-3-8b", BodySHA256: body,
	}
}
