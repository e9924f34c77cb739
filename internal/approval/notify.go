package approval

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// Webhook headers.
const (
	// HeaderDelivery is the idempotency key of a delivery: the same on
	// every retry of one notification to one webhook, so receivers can
	// drop duplicates.
	HeaderDelivery = "X-Warden-Delivery"
	// HeaderTimestamp is the Unix time (seconds) of the attempt.
	HeaderTimestamp = "X-Warden-Timestamp"
	// HeaderSignature is "sha256=" + hex HMAC-SHA256(secret,
	// timestamp + "." + body), present when the webhook has a secret.
	HeaderSignature = "X-Warden-Signature"
	// HeaderEvent is the event kind, e.g. approval.requested.
	HeaderEvent = "X-Warden-Event"
)

// maxBackoff caps the retry delay.
const maxBackoff = 5 * time.Minute

// webhookWorkers is the number of concurrent deliveries.
const webhookWorkers = 2

// Notification is the generic webhook body.
type Notification struct {
	// DeliveryID equals the X-Warden-Delivery header.
	DeliveryID string `json:"delivery_id"`
	// Event is the transition, e.g. approval.requested.
	Event string    `json:"event"`
	Time  time.Time `json:"time"`
	// Approval is the request after the transition.
	Approval NotifiedRequest `json:"approval"`
}

// NotifiedRequest is what a notification tells about a request (no
// review reasons of other reviewers beyond the latest, no secrets).
type NotifiedRequest struct {
	ID            string             `json:"id"`
	Kind          string             `json:"kind"`
	State         string             `json:"state"`
	Setting       string             `json:"setting"`
	Requester     identity.Principal `json:"requester"`
	Justification string             `json:"justification"`
	Reason        string             `json:"reason,omitempty"`
	Approvals     int                `json:"approvals"`
	MinApprovals  int                `json:"min_approvals"`
	Reviewers     []string           `json:"reviewers"`
	Method        string             `json:"method,omitempty"`
	Path          string             `json:"path,omitempty"`
	Route         string             `json:"route,omitempty"`
	Model         string             `json:"model,omitempty"`
	ExpiresAt     time.Time          `json:"expires_at"`
	ValidUntil    time.Time          `json:"valid_until,omitzero"`
	ReviewURL     string             `json:"review_url,omitempty"`
	LastReview    *Review            `json:"last_review,omitempty"`
}

type delivery struct {
	hook    *WebhookConfig
	id      string
	event   string
	body    []byte
	attempt int // attempts made so far
}

// notifier delivers webhooks from a bounded queue.
type notifier struct {
	cfg    *Config
	log    *slog.Logger
	client *http.Client
	q      chan *delivery

	queued, delivered, dropped, failed, attempts atomic.Int64
}

func newNotifier(cfg *Config, log *slog.Logger) *notifier {
	return &notifier{cfg: cfg, log: log, client: &http.Client{}, q: make(chan *delivery, max(cfg.WebhookQueueSize, 1))}
}

// WithWebhookClient sets the HTTP client for webhooks (per-hook timeouts
// still apply).
func WithWebhookClient(c *http.Client) Option { return func(s *Service) { s.webhookClient = c } }

func (n *notifier) stats() Stats {
	return Stats{
		WebhooksQueued: n.queued.Load(), WebhooksDelivered: n.delivered.Load(),
		WebhooksDropped: n.dropped.Load(), WebhooksFailed: n.failed.Load(), WebhookAttempts: n.attempts.Load(),
	}
}

// enqueue queues event for every webhook that wants it. It never blocks:
// a full queue drops the notification (logged and counted).
func (n *notifier) enqueue(event string, r *Request, reviewURL string, now time.Time) {
	for i := range n.cfg.Webhooks {
		h := &n.cfg.Webhooks[i]
		if len(h.Events) > 0 && !slices.Contains(h.Events, event) {
			continue
		}
		id, err := newID()
		if err != nil {
			n.log.Error("approval: webhook notification dropped", "event", event, "approval_id", r.ID, "err", err)
			n.dropped.Add(1)
			continue
		}
		body, err := renderBody(h.Format, id, event, r, reviewURL, now)
		if err != nil {
			n.log.Error("approval: webhook notification dropped", "event", event, "approval_id", r.ID, "err", err)
			n.dropped.Add(1)
			continue
		}
		n.push(&delivery{hook: h, id: id, event: event, body: body})
	}
}

func (n *notifier) push(d *delivery) {
	first := d.attempt == 0 // read before a worker owns d
	select {
	case n.q <- d:
		if first {
			n.queued.Add(1)
		}
	default:
		n.dropped.Add(1)
		n.log.Error("approval: webhook queue full; notification dropped", "event", d.event, "delivery", d.id, "url", redactURL(d.hook.URL), "queue_size", cap(n.q))
	}
}

// run delivers until ctx is done.
func (n *notifier) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range webhookWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case d := <-n.q:
					n.deliver(ctx, d)
				}
			}
		}()
	}
	wg.Wait()
}

func (n *notifier) deliver(ctx context.Context, d *delivery) {
	d.attempt++
	n.attempts.Add(1)
	status, err := n.post(ctx, d)
	if err == nil && status >= 200 && status < 300 {
		n.delivered.Add(1)
		return
	}
	retryable := err != nil || status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
	if !retryable || d.attempt >= n.cfg.WebhookMaxAttempts {
		n.failed.Add(1)
		n.log.Error("approval: webhook delivery failed; giving up", "event", d.event, "delivery", d.id, "url", redactURL(d.hook.URL), "attempts", d.attempt, "status", status, "err", err)
		return
	}
	backoff := n.cfg.WebhookBackoff << (d.attempt - 1)
	if backoff > maxBackoff || backoff <= 0 {
		backoff = maxBackoff
	}
	n.log.Warn("approval: webhook delivery failed; will retry", "event", d.event, "delivery", d.id, "url", redactURL(d.hook.URL), "attempt", d.attempt, "status", status, "err", err, "backoff", backoff)
	t := time.NewTimer(backoff)
	go func() {
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			n.push(d)
		}
	}()
}

// post makes one attempt; it returns the status code.
func (n *notifier) post(ctx context.Context, d *delivery) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.hook.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.hook.URL, bytes.NewReader(d.body))
	if err != nil {
		return 0, fmt.Errorf("new request: %w", err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden-approvals")
	req.Header.Set(HeaderDelivery, d.id)
	req.Header.Set(HeaderEvent, d.event)
	req.Header.Set(HeaderTimestamp, ts)
	if d.hook.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(d.hook.Secret, ts, d.body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		// A *url.Error repeats the URL, and webhook URLs (Slack) carry a
		// token in their path: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Sign returns the X-Warden-Signature value for a delivery.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a delivery's signature (for receivers and
// tests) in constant time.
func VerifySignature(secret, timestamp string, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature))
}

func redactURL(u string) string {
	// Webhook URLs (Slack) embed a token in the path: log the host only.
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[:j]
		}
		return u[:i+3] + rest + "/…"
	}
	return "…"
}

func notified(r *Request, reviewURL string) NotifiedRequest {
	nr := NotifiedRequest{
		ID: r.ID, Kind: string(r.Kind), State: string(r.State), Setting: r.SettingName,
		Requester: r.Requester, Justification: r.Justification, Reason: r.Reason,
		Approvals: countVerdict(r, VerdictApprove), MinApprovals: r.Setting.MinApprovals,
		Reviewers: r.Setting.Reviewers, ExpiresAt: r.ExpiresAt, ValidUntil: r.ValidUntil, ReviewURL: reviewURL,
	}
	if b := r.Binding; b != nil {
		nr.Method, nr.Path, nr.Route, nr.Model = b.Method, b.Path, b.Route, b.Model
	}
	if len(r.Reviews) > 0 {
		rv := r.Reviews[len(r.Reviews)-1]
		nr.LastReview = &rv
	}
	return nr
}

func renderBody(format, id, event string, r *Request, reviewURL string, now time.Time) ([]byte, error) {
	nr := notified(r, reviewURL)
	if format != "slack" {
		return json.Marshal(Notification{DeliveryID: id, Event: event, Time: now.UTC(), Approval: nr})
	}
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	who := nr.Requester.Name
	if who == "" {
		who = nr.Requester.Subject
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%s* — %s `%s` request by %s (%s)", esc.Replace(event), esc.Replace(nr.Kind), esc.Replace(nr.Setting), esc.Replace(who), esc.Replace(nr.State))
	if nr.Method != "" {
		fmt.Fprintf(&b, "\n%s %s", esc.Replace(nr.Method), esc.Replace(nr.Path))
	}
	fmt.Fprintf(&b, "\nJustification: %s", esc.Replace(nr.Justification))
	if nr.LastReview != nil && (event == KindReviewed || event == KindApproved || event == KindDenied) {
		fmt.Fprintf(&b, "\n%s by %s: %s", nr.LastReview.Verdict, esc.Replace(nr.LastReview.Reviewer.Subject), esc.Replace(nr.LastReview.Reason))
	} else if nr.Reason != "" {
		fmt.Fprintf(&b, "\nReason: %s", esc.Replace(nr.Reason))
	}
	if reviewURL != "" {
		fmt.Fprintf(&b, "\n<%s|Review %s>", reviewURL, nr.ID)
	}
	return json.Marshal(map[string]string{"text": b.String()})
}
