package approval_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/approval/approvaltest"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

func openStore(t *testing.T) *sqlite.ApprovalStore {
	t.Helper()
	st, err := sqlite.OpenApprovals(context.Background(), filepath.Join(t.TempDir(), "approvals.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// receiver is a webhook endpoint that dedupes on X-Warden-Delivery and
// fails the first `fail` attempts of every delivery with 500 — after
// performing the side effect on the first one, as a receiver that
// crashes before answering would.
type receiver struct {
	t      *testing.T
	secret string
	fail   int

	mu       sync.Mutex
	attempts map[string]int            // delivery id -> attempts
	effects  map[string]int            // delivery id -> side effects
	bodies   map[string]map[string]any // delivery id -> body
	events   []string
	badSig   int
}

func newReceiver(t *testing.T, secret string, fail int) (*receiver, *httptest.Server) {
	rc := &receiver{t: t, secret: secret, fail: fail, attempts: map[string]int{}, effects: map[string]int{}, bodies: map[string]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get(approval.HeaderDelivery)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.secret != "" && !approval.VerifySignature(rc.secret, r.Header.Get(approval.HeaderTimestamp), body, r.Header.Get(approval.HeaderSignature)) {
		rc.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.attempts[id]++
	if rc.effects[id] == 0 { // idempotency: act once per delivery id
		rc.effects[id]++
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			rc.t.Errorf("body: %v", err)
		}
		rc.bodies[id] = m
		rc.events = append(rc.events, r.Header.Get(approval.HeaderEvent))
	}
	if rc.attempts[id] <= rc.fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// waitFor polls cond; the deadline only guards against a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhookRetriesSignedIdempotent(t *testing.T) {
	const secret = "s3cret-for-hmac"
	rc, srv := newReceiver(t, secret, 2)
	slackRC, slackSrv := newReceiver(t, "", 0)
	cfg := approval.Config{
		ReviewURLBase:  "https://warden.test",
		WebhookBackoff: 5 * time.Millisecond,
		Webhooks: []approval.WebhookConfig{
			{URL: srv.URL + "/hook", Secret: secret},
			{URL: slackSrv.URL, Format: "slack", Events: []string{approval.KindRequested}},
		},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := approvaltest.NewAuditLog(t)
	svc := approval.New(openStore(t), log, approval.WithConfig(cfg))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	set := approvaltest.OneTime(policy.ApprovalAsync)
	out, err := svc.Check(ctx, approvaltest.Call(approvaltest.Alice, "fine-tune", set, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, approvaltest.Bob, out.ApprovalID, "fine"); err != nil {
		t.Fatal(err)
	}
	// requested, reviewed, approved to the generic hook; requested to slack.
	waitFor(t, "deliveries", func() bool { return svc.Stats().WebhooksDelivered == 4 })
	st := svc.Stats()
	if st.WebhooksQueued != 4 || st.WebhookAttempts != 3*3+1 || st.WebhooksDropped != 0 || st.WebhooksFailed != 0 {
		t.Fatalf("stats: %+v", st)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.badSig != 0 {
		t.Fatalf("%d deliveries with a bad signature", rc.badSig)
	}
	if len(rc.attempts) != 3 {
		t.Fatalf("%d distinct delivery ids, want 3: %v", len(rc.attempts), rc.attempts)
	}
	for id, n := range rc.attempts {
		if n != 3 || rc.effects[id] != 1 {
			t.Fatalf("delivery %s: %d attempts (want 3, same id), %d side effects (want 1)", id, n, rc.effects[id])
		}
		if rc.bodies[id]["delivery_id"] != id {
			t.Fatalf("body delivery_id %v, header %s", rc.bodies[id]["delivery_id"], id)
		}
		a := rc.bodies[id]["approval"].(map[string]any)
		if a["id"] != out.ApprovalID || a["review_url"] != "https://warden.test/v1/approvals/"+out.ApprovalID {
			t.Fatalf("body approval: %v", a)
		}
	}
	// Two workers deliver concurrently: order is not guaranteed.
	slices.Sort(rc.events)
	if strings.Join(rc.events, ",") != "approval.approved,approval.requested,approval.reviewed" {
		t.Fatalf("events %v", rc.events)
	}
	slackRC.mu.Lock()
	defer slackRC.mu.Unlock()
	if len(slackRC.bodies) != 1 {
		t.Fatalf("slack got %d deliveries, want 1 (filtered to approval.requested)", len(slackRC.bodies))
	}
	for _, b := range slackRC.bodies {
		text, _ := b["text"].(string)
		if !strings.Contains(text, "approval.requested") || !strings.Contains(text, "<https://warden.test/v1/approvals/"+out.ApprovalID+"|") {
			t.Fatalf("slack text %q", text)
		}
	}
}

func TestWebhookGivesUpAndNeverBlocks(t *testing.T) {
	rc, srv := newReceiver(t, "", 1000)
	cfg := approval.Config{WebhookBackoff: time.Millisecond, WebhookMaxAttempts: 3, WebhookQueueSize: 1,
		Webhooks: []approval.WebhookConfig{{URL: srv.URL}}}
	log := approvaltest.NewAuditLog(t)
	svc := approval.New(openStore(t), log, approval.WithConfig(cfg))
	set := approvaltest.OneTime(policy.ApprovalAsync)
	// No worker runs yet: the queue (size 1) fills, further notifications
	// are dropped, and the gate is not blocked.
	for _, b := range []string{"1", "2", "3"} {
		if _, err := svc.Check(context.Background(), approvaltest.Call(approvaltest.Alice, "ft", set, b)); err != nil {
			t.Fatal(err)
		}
	}
	if st := svc.Stats(); st.WebhooksQueued != 1 || st.WebhooksDropped != 2 {
		t.Fatalf("stats before run: %+v", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "give-up", func() bool { return svc.Stats().WebhooksFailed == 1 })
	if st := svc.Stats(); st.WebhookAttempts != 3 || st.WebhooksDelivered != 0 {
		t.Fatalf("stats: %+v", st)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, n := range rc.attempts {
		if n != 3 {
			t.Fatalf("delivery %s: %d attempts, want 3", id, n)
		}
	}
}

func TestSignature(t *testing.T) {
	// Golden value: HMAC-SHA256("k", "1700000000.{}").
	got := approval.Sign("k", "1700000000", []byte("{}"))
	if got != "sha256=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146" {
		t.Fatalf("signature %q", got)
	}
	if !approval.VerifySignature("k", "1700000000", []byte("{}"), got) {
		t.Fatal("own signature does not verify")
	}
	for _, c := range []struct{ key, ts, body string }{{"K", "1700000000", "{}"}, {"k", "1700000001", "{}"}, {"k", "1700000000", "{} "}} {
		if approval.VerifySignature(c.key, c.ts, []byte(c.body), got) {
			t.Fatalf("signature verifies for %+v", c)
		}
	}
}

func TestHoldAliveTicks(t *testing.T) {
	log := approvaltest.NewAuditLog(t)
	svc := approval.New(openStore(t), log)
	set := approvaltest.OneTime(policy.ApprovalHold)
	call := approvaltest.Call(approvaltest.Alice, "ft", set, "alive")
	out, err := svc.Check(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	ticks := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The first keep-alive approves the request, so the hold ends after
	// at least one tick, whatever the machine's speed.
	o, err := svc.HoldAlive(ctx, call, out.ApprovalID, time.Millisecond, func() {
		ticks++
		if ticks == 1 {
			if _, err := svc.Approve(context.Background(), approvaltest.Bob, out.ApprovalID, "ok"); err != nil {
				t.Error(err)
			}
		}
	})
	if err != nil || o.Decision != approval.Proceed || ticks < 1 {
		t.Fatalf("HoldAlive: %+v %v after %d ticks", o, err, ticks)
	}
}

// TestWebhookLogsNoURLToken: Slack-style URLs carry a token in the path;
// failed deliveries must not log it.
func TestWebhookLogsNoURLToken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL + "/services/T000/B000/XXXXsecretXXXX"
	srv.Close() // connection refused
	var buf syncBuffer
	cfg := approval.Config{WebhookBackoff: time.Millisecond, WebhookMaxAttempts: 2, Webhooks: []approval.WebhookConfig{{URL: u, Format: "slack", Secret: "hmac-key-XYZ"}}}
	svc := approval.New(openStore(t), approvaltest.NewAuditLog(t), approval.WithConfig(cfg),
		approval.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if _, err := svc.Check(ctx, approvaltest.Call(approvaltest.Alice, "ft", approvaltest.OneTime(policy.ApprovalAsync), "x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "give-up", func() bool { return svc.Stats().WebhooksFailed == 1 })
	logs := buf.String()
	if !strings.Contains(logs, "giving up") || strings.Contains(logs, "XXXXsecretXXXX") || strings.Contains(logs, "hmac-key-XYZ") {
		t.Fatalf("logs: %s", logs)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
