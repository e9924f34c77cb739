package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/config/field"
)

// WebhookConfig configures the HTTP webhook sink.
type WebhookConfig struct {
	// URL receives POSTs (http or https). Required. Never logged beyond
	// its host (URLs often carry a token).
	URL string `yaml:"url"`
	// Secret signs each delivery like the approval webhooks:
	// X-Warden-Signature: sha256=<hex HMAC-SHA256(secret,
	// X-Warden-Timestamp + "." + body)>. Strongly recommended. Never
	// logged; use ${ENV} expansion.
	Secret string `yaml:"secret"`
	// Timeout bounds one POST. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// SetDefaults fills zero fields.
func (c *WebhookConfig) SetDefaults() {
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
}

// Validate reports invalid fields with their key paths.
func (c *WebhookConfig) Validate() error {
	var errs []error
	if u, err := neturl.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, field.Errorf("url", "must be an http or https URL"))
	}
	if c.Timeout < 0 {
		errs = append(errs, field.Errorf("timeout", "must be > 0"))
	}
	return errors.Join(errs...)
}

// WebhookEvent is the X-Warden-Event of export deliveries.
const WebhookEvent = "export.batch"

// WebhookBatch is the body of a webhook delivery.
type WebhookBatch struct {
	// DeliveryID equals the X-Warden-Delivery header: the same on every
	// retry of this batch, so receivers can drop duplicates.
	DeliveryID string `json:"delivery_id"`
	// Events are OCSF events, in log order.
	Events []json.RawMessage `json:"events"`
}

// WebhookSink POSTs batches as signed JSON, with the approval webhooks'
// headers and signature.
type WebhookSink struct {
	cfg    WebhookConfig
	client *http.Client
	now    func() time.Time
}

var _ Sink = (*WebhookSink)(nil)

// NewWebhookSink returns a webhook sink.
func NewWebhookSink(cfg WebhookConfig) (*WebhookSink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: webhook sink: %w", err)
	}
	return &WebhookSink{cfg: cfg, client: &http.Client{Timeout: cfg.Timeout}, now: time.Now}, nil
}

// deliveryID names a batch by its events: stable across retries.
func deliveryID(batch []Event) string {
	h := sha256.New()
	for _, ev := range batch {
		h.Write([]byte(ev.UID))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Send posts the batch. 2xx delivers it; 408, 429, 5xx, network errors
// and 401/403 are retried; another 4xx refuses the batch, which is then
// split to find the event the receiver refuses (dead-lettered alone).
func (s *WebhookSink) Send(ctx context.Context, batch []Event) (Ack, error) {
	status, retryAfter, err := s.post(ctx, batch)
	if err != nil {
		return Ack{}, &SinkError{Sink: "webhook", Msg: "POST to " + redactURL(s.cfg.URL), Err: err}
	}
	switch {
	case status/100 == 2:
		return allSettled(len(batch)), nil
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500 ||
		status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound:
		return Ack{}, &SinkError{Sink: "webhook", Msg: fmt.Sprintf("%s answered %d", redactURL(s.cfg.URL), status), RetryAfter: retryAfter}
	case status/100 == 4:
		if len(batch) == 1 {
			return Ack{Settled: 1, Rejected: []Rejection{{Index: 0, Reason: fmt.Sprintf("the webhook refused the event with %d", status)}}}, nil
		}
		// Deliver the first half (or find the refused event in it); the
		// exporter sends the rest next.
		return s.Send(ctx, batch[:len(batch)/2])
	}
	return Ack{}, &SinkError{Sink: "webhook", Msg: fmt.Sprintf("%s answered %d", redactURL(s.cfg.URL), status)}
}

func (s *WebhookSink) post(ctx context.Context, batch []Event) (int, time.Duration, error) {
	body := WebhookBatch{DeliveryID: deliveryID(batch), Events: make([]json.RawMessage, len(batch))}
	for i, ev := range batch {
		body.Events[i] = ev.JSON
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return 0, 0, err
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(b))
	if err != nil {
		return 0, 0, errors.New("bad request")
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden-export")
	req.Header.Set(approval.HeaderDelivery, body.DeliveryID)
	req.Header.Set(approval.HeaderEvent, WebhookEvent)
	req.Header.Set(approval.HeaderTimestamp, ts)
	if s.cfg.Secret != "" {
		req.Header.Set(approval.HeaderSignature, approval.Sign(s.cfg.Secret, ts, b))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry a token
		}
		return 0, 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var ra time.Duration
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		ra = time.Duration(secs) * time.Second
	}
	return resp.StatusCode, ra, nil
}

// redactURL keeps scheme and host: webhook URLs often carry a token.
func redactURL(u string) string {
	if p, err := neturl.Parse(u); err == nil && p.Host != "" {
		return p.Scheme + "://" + p.Host + "/…"
	}
	if i := strings.Index(u, "://"); i >= 0 {
		return u[:i+3] + "…"
	}
	return "…"
}

// Close releases idle connections.
func (s *WebhookSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
