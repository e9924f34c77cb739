package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/wardenhq/warden/internal/config/field"
)

// HECConfig configures the Splunk HTTP Event Collector sink.
type HECConfig struct {
	// URL is the collector's base URL, e.g. https://splunk.example:8088.
	// Events go to <URL>/services/collector/event. Required.
	URL string `yaml:"url"`
	// Token is the HEC token (sent as "Authorization: Splunk <token>").
	// Required. Never logged; use ${ENV} expansion to keep it out of the
	// file.
	Token string `yaml:"token"`
	// Index, Source, Sourcetype and Host set the HEC metadata of every
	// event (empty: the token's defaults; sourcetype defaults to
	// "ocsf:warden").
	Index      string `yaml:"index"`
	Source     string `yaml:"source"`
	Sourcetype string `yaml:"sourcetype"`
	Host       string `yaml:"host"`
	// Gzip compresses request bodies. Default true; set false for
	// collectors that refuse Content-Encoding.
	Gzip *bool `yaml:"gzip"`
	// IndexerAck waits for indexer acknowledgement (the token must have
	// it enabled): a batch counts as delivered only when Splunk says it
	// is indexed. Default false.
	IndexerAck bool `yaml:"indexer_ack"`
	// AckTimeout bounds the wait for an acknowledgement; then the batch
	// is sent again. Default 60s.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// AckPoll is the interval between acknowledgement queries. Default 1s.
	AckPoll time.Duration `yaml:"ack_poll"`
	// Channel is the X-Splunk-Request-Channel (a GUID). Default: a new
	// one per start.
	Channel string `yaml:"channel"`
	// CAFile verifies the collector's certificate (default: system roots).
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one HTTP request. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// SetDefaults fills zero fields.
func (c *HECConfig) SetDefaults() {
	if c.Sourcetype == "" {
		c.Sourcetype = "ocsf:warden"
	}
	if c.Gzip == nil {
		t := true
		c.Gzip = &t
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 60 * time.Second
	}
	if c.AckPoll == 0 {
		c.AckPoll = time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Channel == "" {
		c.Channel = uuid.NewString()
	}
}

// Validate reports invalid fields with their key paths.
func (c *HECConfig) Validate() error {
	var errs []error
	if u, err := neturl.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, field.Errorf("url", "must be an http or https URL"))
	}
	if c.Token == "" {
		errs = append(errs, field.Errorf("token", "is required"))
	}
	if _, err := uuid.Parse(c.Channel); c.Channel != "" && err != nil {
		errs = append(errs, field.Errorf("channel", "must be a GUID"))
	}
	if c.AckTimeout < 0 || c.AckPoll < 0 || c.Timeout < 0 {
		errs = append(errs, field.Errorf("timeout", "durations must be > 0"))
	}
	return errors.Join(errs...)
}

// HECSink posts batches to a Splunk HTTP Event Collector.
type HECSink struct {
	cfg    HECConfig
	client *http.Client
	base   string
}

var _ Sink = (*HECSink)(nil)

// NewHECSink returns a HEC sink.
func NewHECSink(cfg HECConfig) (*HECSink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: splunk_hec sink: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("export: splunk_hec sink: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("export: splunk_hec sink: ca_file %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &HECSink{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}, base: strings.TrimRight(cfg.URL, "/")}, nil
}

// hecEvent is one event in a HEC request body.
type hecEvent struct {
	Time       json.Number     `json:"time"`
	Host       string          `json:"host,omitempty"`
	Source     string          `json:"source,omitempty"`
	Sourcetype string          `json:"sourcetype,omitempty"`
	Index      string          `json:"index,omitempty"`
	Event      json.RawMessage `json:"event"`
}

// hecReply is HEC's JSON answer.
type hecReply struct {
	Text               string `json:"text"`
	Code               int    `json:"code"`
	AckID              *int64 `json:"ackId"`
	InvalidEventNumber *int   `json:"invalid-event-number"`
}

// Send posts the batch; with indexer acknowledgement it then waits for
// Splunk to confirm it. An event HEC refuses as malformed is rejected
// (dead-lettered) and the rest of the batch goes on; a body too large is
// split.
func (s *HECSink) Send(ctx context.Context, batch []Event) (Ack, error) {
	status, reply, retryAfter, err := s.post(ctx, batch)
	if err != nil {
		return Ack{}, &SinkError{Sink: "splunk_hec", Msg: "post", Err: err}
	}
	switch {
	case status/100 == 2:
		if s.cfg.IndexerAck {
			if reply.AckID == nil {
				return Ack{}, &SinkError{Sink: "splunk_hec", Msg: "indexer_ack is on but HEC returned no ackId (is acknowledgement enabled on the token?)"}
			}
			if err := s.waitAck(ctx, *reply.AckID); err != nil {
				return Ack{}, err
			}
		}
		return allSettled(len(batch)), nil
	case status == http.StatusBadRequest && reply.InvalidEventNumber != nil && *reply.InvalidEventNumber >= 0 && *reply.InvalidEventNumber < len(batch):
		// HEC stops at the first event it cannot parse. Make sure the
		// ones before it are indexed, then refuse that one.
		n := *reply.InvalidEventNumber
		if n > 0 && s.cfg.IndexerAck {
			ack, err := s.Send(ctx, batch[:n])
			if err != nil || ack.Settled < n {
				return ack, err
			}
		}
		return Ack{Settled: n + 1, Rejected: []Rejection{{Index: n, Reason: fmt.Sprintf("HEC refused the event: %s (code %d)", reply.Text, reply.Code)}}}, nil
	case status == http.StatusRequestEntityTooLarge:
		if len(batch) == 1 {
			return Ack{Settled: 1, Rejected: []Rejection{{Index: 0, Reason: "HEC refused the event as too large (413)"}}}, nil
		}
		return s.Send(ctx, batch[:len(batch)/2])
	case status == http.StatusBadRequest && len(batch) == 1 && reply.Code != 0:
		return Ack{Settled: 1, Rejected: []Rejection{{Index: 0, Reason: fmt.Sprintf("HEC refused the event: %s (code %d)", reply.Text, reply.Code)}}}, nil
	}
	// 401/403 (token), 429, 503 (busy), other 5xx and anything
	// unexpected: retried, never dropped.
	return Ack{}, &SinkError{Sink: "splunk_hec", Msg: fmt.Sprintf("HEC answered %d: %s (code %d)", status, reply.Text, reply.Code), RetryAfter: retryAfter}
}

func (s *HECSink) post(ctx context.Context, batch []Event) (int, hecReply, time.Duration, error) {
	var body bytes.Buffer
	var w io.Writer = &body
	var zw *gzip.Writer
	if *s.cfg.Gzip {
		zw = gzip.NewWriter(&body)
		w = zw
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, ev := range batch {
		t := ev.Time.UnixMilli()
		he := hecEvent{
			Time: json.Number(strconv.FormatInt(t/1000, 10) + "." + fmt.Sprintf("%03d", t%1000)),
			Host: s.cfg.Host, Source: s.cfg.Source, Sourcetype: s.cfg.Sourcetype, Index: s.cfg.Index, Event: ev.JSON,
		}
		if err := enc.Encode(he); err != nil {
			return 0, hecReply{}, 0, err
		}
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return 0, hecReply{}, 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/services/collector/event", &body)
	if err != nil {
		return 0, hecReply{}, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if zw != nil {
		req.Header.Set("Content-Encoding", "gzip")
	}
	return s.do(req)
}

func (s *HECSink) headers(req *http.Request) {
	req.Header.Set("Authorization", "Splunk "+s.cfg.Token)
	req.Header.Set("X-Splunk-Request-Channel", s.cfg.Channel)
	req.Header.Set("User-Agent", "warden-export")
}

func (s *HECSink) do(req *http.Request) (int, hecReply, time.Duration, error) {
	s.headers(req)
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *neturl.Error
		if errors.As(err, &ue) {
			err = ue.Err // keep the URL (and anything in it) out of logs
		}
		return 0, hecReply{}, 0, err
	}
	defer resp.Body.Close()
	var reply hecReply
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(b, &reply); err != nil {
		reply.Text = strings.TrimSpace(string(b[:min(len(b), 200)]))
	}
	var ra time.Duration
	if v := resp.Header.Get("Retry-After"); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
			ra = time.Duration(secs) * time.Second
		}
	}
	return resp.StatusCode, reply, ra, nil
}

// waitAck polls the acknowledgement endpoint until Splunk confirms the
// request id, or AckTimeout passes.
func (s *HECSink) waitAck(ctx context.Context, id int64) error {
	deadline := time.Now().Add(s.cfg.AckTimeout)
	body := []byte(`{"acks":[` + strconv.FormatInt(id, 10) + `]}`)
	for {
		if !sleep(ctx, s.cfg.AckPoll) {
			return ctx.Err()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/services/collector/ack?channel="+neturl.QueryEscape(s.cfg.Channel), bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		s.headers(req)
		resp, err := s.client.Do(req)
		if err == nil {
			var r struct {
				Acks map[string]bool `json:"acks"`
			}
			derr := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&r)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && derr == nil && r.Acks[strconv.FormatInt(id, 10)] {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return &SinkError{Sink: "splunk_hec", Msg: fmt.Sprintf("no indexer acknowledgement for request %d within %v; sending it again", id, s.cfg.AckTimeout)}
		}
	}
}

// Close releases idle connections.
func (s *HECSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
