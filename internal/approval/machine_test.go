package approval

import (
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func person(sub string, groups ...string) identity.Principal {
	return identity.Principal{Issuer: "https://idp.test", Subject: sub, Groups: groups}
}

func pendingReq(kind policy.ApprovalKind, min int, onePerGroup bool, reviewers ...string) *Request {
	r := &Request{ID: "r1", Kind: kind, State: StatePending, Requester: person("alice", "ml-engineers", "ml-leads", "ml-admins"),
		SettingName: "s", Setting: policy.ApprovalSetting{Kind: kind, Reviewers: reviewers, MinApprovals: min, OnePerGroup: onePerGroup, TTL: time.Hour},
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if kind == policy.ApprovalGrant {
		r.GrantDuration = 2 * time.Hour
	}
	return r
}

// TestTransitions drives every transition from every state and checks
// which are allowed, with what error code, and which audit kinds result.
func TestTransitions(t *testing.T) {
	bob, carol := person("bob", "ml-leads"), person("carol", "ml-leads")
	type op func(r *Request) ([]string, error)
	approve := func(p identity.Principal) op {
		return func(r *Request) ([]string, error) { return review(r, p, VerdictApprove, "ok", t0) }
	}
	deny := func(p identity.Principal) op {
		return func(r *Request) ([]string, error) { return review(r, p, VerdictDeny, "no", t0) }
	}
	cancelBy := func(p identity.Principal) op {
		return func(r *Request) ([]string, error) { return cancel(r, p, "", t0) }
	}
	useIt := func(r *Request) ([]string, error) { return use(r, "req-9", t0) }
	revokeBy := func(p identity.Principal) op {
		return func(r *Request) ([]string, error) { return revoke(r, p, "stop", t0) }
	}
	tests := []struct {
		name   string
		kind   policy.ApprovalKind
		state  State
		op     op
		code   Code // "" means allowed
		kinds  []string
		result State
	}{
		{"approve pending one-time", policy.ApprovalOneTime, StatePending, approve(bob), "", []string{KindReviewed, KindApproved}, StateApproved},
		{"approve pending grant", policy.ApprovalGrant, StatePending, approve(bob), "", []string{KindReviewed, KindApproved, KindGrantOn}, StateApproved},
		{"deny pending", policy.ApprovalOneTime, StatePending, deny(bob), "", []string{KindReviewed, KindDenied}, StateDenied},
		{"self approve", policy.ApprovalOneTime, StatePending, approve(person("alice", "ml-leads")), CodeForbidden, nil, StatePending},
		{"self deny", policy.ApprovalOneTime, StatePending, deny(person("alice", "ml-leads")), CodeForbidden, nil, StatePending},
		{"non-reviewer", policy.ApprovalOneTime, StatePending, approve(person("mallory", "ml-engineers")), CodeForbidden, nil, StatePending},
		{"no identity", policy.ApprovalOneTime, StatePending, approve(identity.Principal{Groups: []string{"ml-leads"}}), CodeUnauthenticated, nil, StatePending},
		{"approve approved", policy.ApprovalOneTime, StateApproved, approve(carol), CodeConflict, nil, StateApproved},
		{"deny approved", policy.ApprovalOneTime, StateApproved, deny(carol), CodeConflict, nil, StateApproved},
		{"approve denied", policy.ApprovalOneTime, StateDenied, approve(carol), CodeConflict, nil, StateDenied},
		{"cancel pending by requester", policy.ApprovalOneTime, StatePending, cancelBy(person("alice")), "", []string{KindCancelled}, StateCancelled},
		{"cancel pending by reviewer", policy.ApprovalOneTime, StatePending, cancelBy(bob), CodeForbidden, nil, StatePending},
		{"cancel approved", policy.ApprovalOneTime, StateApproved, cancelBy(person("alice")), CodeConflict, nil, StateApproved},
		{"use approved one-time", policy.ApprovalOneTime, StateApproved, useIt, "", []string{KindUsed}, StateUsed},
		{"use used", policy.ApprovalOneTime, StateUsed, useIt, CodeConflict, nil, StateUsed},
		{"use pending", policy.ApprovalOneTime, StatePending, useIt, CodeConflict, nil, StatePending},
		{"use grant", policy.ApprovalGrant, StateApproved, useIt, CodeConflict, nil, StateApproved},
		{"revoke grant by reviewer", policy.ApprovalGrant, StateApproved, revokeBy(bob), "", []string{KindRevoked}, StateRevoked},
		{"revoke grant by holder", policy.ApprovalGrant, StateApproved, revokeBy(person("alice")), "", []string{KindRevoked}, StateRevoked},
		{"revoke grant by stranger", policy.ApprovalGrant, StateApproved, revokeBy(person("mallory")), CodeForbidden, nil, StateApproved},
		{"revoke pending grant", policy.ApprovalGrant, StatePending, revokeBy(bob), CodeConflict, nil, StatePending},
		{"revoke one-time", policy.ApprovalOneTime, StateApproved, revokeBy(bob), CodeConflict, nil, StateApproved},
		{"revoke revoked", policy.ApprovalGrant, StateRevoked, revokeBy(bob), CodeConflict, nil, StateRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := pendingReq(tc.kind, 1, false, "ml-leads", "ml-admins")
			r.State = tc.state
			kinds, err := tc.op(r)
			if tc.code == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.code != "" && CodeOf(err) != tc.code {
				t.Fatalf("error %v (%s), want %s", err, CodeOf(err), tc.code)
			}
			if len(kinds) != len(tc.kinds) {
				t.Fatalf("kinds %v, want %v", kinds, tc.kinds)
			}
			for i := range kinds {
				if kinds[i] != tc.kinds[i] {
					t.Fatalf("kinds %v, want %v", kinds, tc.kinds)
				}
			}
			if r.State != tc.result {
				t.Fatalf("state %s, want %s", r.State, tc.result)
			}
		})
	}
}

func TestExpire(t *testing.T) {
	r := pendingReq(policy.ApprovalOneTime, 1, false, "ml-leads")
	if k := expire(r, t0.Add(59*time.Minute)); k != nil || r.State != StatePending {
		t.Fatalf("expired early: %v %s", k, r.State)
	}
	if k := expire(r, t0.Add(time.Hour)); len(k) != 1 || k[0] != KindExpired || r.State != StateExpired {
		t.Fatalf("at TTL: %v %s", k, r.State)
	}
	if k := expire(r, t0.Add(9*time.Hour)); k != nil {
		t.Fatalf("expired twice: %v", k)
	}
	g := pendingReq(policy.ApprovalGrant, 1, false, "ml-leads")
	if _, err := review(g, person("bob", "ml-leads"), VerdictApprove, "ok", t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if !g.ValidUntil.Equal(t0.Add(130 * time.Minute)) {
		t.Fatalf("grant valid until %v", g.ValidUntil)
	}
	// A grant outlives its request TTL; it expires at ValidUntil.
	if k := expire(g, t0.Add(2*time.Hour)); k != nil {
		t.Fatalf("grant expired at request TTL: %v", k)
	}
	if k := expire(g, t0.Add(130*time.Minute)); len(k) != 1 || k[0] != KindGrantOff {
		t.Fatalf("grant expiry: %v", k)
	}
}

func TestMatching(t *testing.T) {
	tests := []struct {
		approvers [][]string
		want      int
	}{
		{nil, 0},
		{[][]string{{"a"}, {"a"}}, 1},
		{[][]string{{"a", "b"}, {"a"}}, 2}, // needs re-assignment of the first
		{[][]string{{"a", "b"}, {"a", "b"}, {"a", "b"}}, 2},
		{[][]string{{"a"}, {"b"}, {"c"}}, 3},
		{[][]string{{}, {"a"}}, 1},
	}
	for _, tc := range tests {
		if got := matching(tc.approvers); got != tc.want {
			t.Errorf("matching(%v) = %d, want %d", tc.approvers, got, tc.want)
		}
	}
}

func TestCovers(t *testing.T) {
	r := &Request{Kind: policy.ApprovalGrant, Scope: &policy.GrantScope{Routes: []string{"fine-*"}, Paths: []string{"/v1/fine_tuning/**"}}}
	tests := []struct {
		route, model, path string
		want               bool
	}{
		{"fine-tune", "any", "/v1/fine_tuning/jobs", true},
		{"fine-tune", "", "/v1/fine_tuning", true},
		{"chat", "any", "/v1/fine_tuning/jobs", false},
		{"fine-tune", "any", "/v1/files", false},
	}
	for _, tc := range tests {
		if got := r.Covers(tc.route, tc.model, tc.path); got != tc.want {
			t.Errorf("Covers(%q, %q, %q) = %v", tc.route, tc.model, tc.path, got)
		}
	}
}

func TestNarrow(t *testing.T) {
	have := policy.GrantScope{Routes: []string{"fine-*"}, Paths: []string{"/v1/fine_tuning/**"}}
	tests := []struct {
		want policy.GrantScope
		ok   bool
	}{
		{policy.GrantScope{}, true},
		{policy.GrantScope{Routes: []string{"fine-tune"}}, true},
		{policy.GrantScope{Routes: []string{"fine-*"}}, true},
		{policy.GrantScope{Routes: []string{"*"}}, false}, // a wider glob
		{policy.GrantScope{Routes: []string{"chat"}}, false},
		{policy.GrantScope{Models: []string{"llama-3"}}, true}, // setting allows any model
		{policy.GrantScope{Paths: []string{"/v1/fine_tuning/jobs"}}, true},
		{policy.GrantScope{Paths: []string{"/v1/**"}}, false},
	}
	for _, tc := range tests {
		_, err := narrow(have, tc.want)
		if (err == nil) != tc.ok {
			t.Errorf("narrow(%+v): %v, want ok=%v", tc.want, err, tc.ok)
		}
	}
}
