package approval

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// Config is the `approvals:` section of the gateway config.
type Config struct {
	// Path is the SQLite file of the embedded approval store. Default
	// <data dir>/approvals.db (the caller resolves it). It must not be
	// the audit file: transitions append audit entries while holding
	// the approval store's write lock. Unused with PostgreSQL (the
	// approval tables live next to the audit tables, prefixed approval_).
	Path string `yaml:"path"`
	// ReviewURLBase is the base of the link given to callers and in
	// notifications; the link is <base>/v1/approvals/<id>. Default: the
	// admin listener URL (the caller fills it in).
	ReviewURLBase string `yaml:"review_url_base"`
	// SweepInterval is how often due requests and grants are expired in
	// the background (they also expire lazily when read). Default 30s.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// PollInterval is how often a held request re-reads its approval when
	// no change notification arrives (a safety net). Default 5s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// RetryAfter is the Retry-After hint of a pending answer. Default 30s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// NoGrantCacheTTL is how long "this principal holds no active grant"
	// is cached (positive answers are never cached, so revocation takes
	// effect on the next request). 0 means the default 2s; negative
	// disables the cache.
	NoGrantCacheTTL time.Duration `yaml:"no_grant_cache_ttl"`
	// Webhooks are notified of new requests and decisions.
	Webhooks []WebhookConfig `yaml:"webhooks"`
	// WebhookQueueSize bounds the delivery queue; when it is full new
	// notifications are dropped (logged and counted). Default 1000.
	WebhookQueueSize int `yaml:"webhook_queue_size"`
	// WebhookMaxAttempts is how often one delivery is tried. Default 8.
	WebhookMaxAttempts int `yaml:"webhook_max_attempts"`
	// WebhookBackoff is the first retry delay; it doubles per attempt up
	// to 5 minutes. Default 1s.
	WebhookBackoff time.Duration `yaml:"webhook_backoff"`
}

// WebhookConfig is one outgoing webhook.
type WebhookConfig struct {
	// URL receives POSTs (http or https). Required.
	URL string `yaml:"url"`
	// Format is generic (default; the JSON Notification) or slack
	// (an incoming-webhook body {"text": …}).
	Format string `yaml:"format"`
	// Secret, when set, signs each delivery: X-Warden-Signature:
	// sha256=<hex HMAC-SHA256(secret, X-Warden-Timestamp + "." + body)>.
	// Never logged. Use ${ENV} expansion to keep it out of the file.
	Secret string `yaml:"secret"`
	// Events filters event kinds (e.g. approval.requested); empty means
	// all of them.
	Events []string `yaml:"events"`
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultFile is the approval store file under the data dir.
const DefaultFile = "approvals.db"

// Resolve sets Path to <dataDir>/approvals.db when it is empty.
func (c *Config) Resolve(dataDir string) {
	if c.Path == "" {
		c.Path = filepath.Join(dataDir, DefaultFile)
	}
}

// SetDefaults fills zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.SweepInterval == 0 {
		c.SweepInterval = 30 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = 30 * time.Second
	}
	if c.NoGrantCacheTTL == 0 {
		c.NoGrantCacheTTL = 2 * time.Second
	}
	if c.WebhookQueueSize == 0 {
		c.WebhookQueueSize = 1000
	}
	if c.WebhookMaxAttempts == 0 {
		c.WebhookMaxAttempts = 8
	}
	if c.WebhookBackoff == 0 {
		c.WebhookBackoff = time.Second
	}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		if w.Format == "" {
			w.Format = "generic"
		}
		if w.Timeout == 0 {
			w.Timeout = 10 * time.Second
		}
	}
}

// Validate checks c after SetDefaults.
func (c *Config) Validate() error {
	var errs []error
	if c.ReviewURLBase != "" {
		if u, err := url.Parse(c.ReviewURLBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Errorf("review_url_base", "must be an http or https URL"))
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"sweep_interval", c.SweepInterval}, {"poll_interval", c.PollInterval}, {"retry_after", c.RetryAfter}, {"webhook_backoff", c.WebhookBackoff}} {
		if d.v <= 0 {
			errs = append(errs, field.Errorf(d.key, "must be positive"))
		}
	}
	if c.WebhookQueueSize < 1 {
		errs = append(errs, field.Errorf("webhook_queue_size", "must be at least 1"))
	}
	if c.WebhookMaxAttempts < 1 {
		errs = append(errs, field.Errorf("webhook_max_attempts", "must be at least 1"))
	}
	for i, w := range c.Webhooks {
		p := fmt.Sprintf("webhooks[%d]", i)
		if u, err := url.Parse(w.URL); w.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Errorf(p+".url", "must be an http or https URL"))
		}
		if w.Format != "generic" && w.Format != "slack" {
			errs = append(errs, field.Errorf(p+".format", "must be generic or slack, got %q", w.Format))
		}
		if w.Timeout <= 0 {
			errs = append(errs, field.Errorf(p+".timeout", "must be positive"))
		}
		for j, e := range w.Events {
			if !knownEvent(e) {
				errs = append(errs, field.Errorf(fmt.Sprintf("%s.events[%d]", p, j), "unknown event %q", e))
			}
		}
	}
	return errors.Join(errs...)
}

func knownEvent(e string) bool {
	switch e {
	case KindRequested, KindReviewed, KindApproved, KindDenied, KindExpired, KindCancelled, KindUsed, KindGrantOn, KindRevoked, KindGrantOff:
		return true
	}
	return false
}
