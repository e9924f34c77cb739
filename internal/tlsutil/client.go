package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"time"
)

// Client is how Warden dials one upstream over TLS: a CA bundle, a client
// certificate and a server name, reloaded from files.
type Client struct {
	cfg  ClientConfig
	log  *slog.Logger
	ca   *reloadable[x509.CertPool]   // nil: system roots
	cert *reloadable[tls.Certificate] // nil: no client certificate
	minV uint16
	poll time.Duration
}

// NewClient loads the files of c (defaults applied, validated) once.
func NewClient(c ClientConfig, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.Default()
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cl := &Client{cfg: c, log: log, poll: DefaultPollInterval}
	cl.minV, _ = ParseVersion(c.MinVersion)
	if c.CAFile != "" {
		cl.ca = certPool("upstream CA bundle", c.CAFile)
		if _, err := cl.ca.load(); err != nil {
			return nil, err
		}
	}
	if c.CertFile != "" {
		cl.cert = keyPair(c.CertFile, c.KeyFile)
		cl.cert.what = "upstream client certificate"
		if _, err := cl.cert.load(); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

// TLSConfig is a configuration for dialling the upstream with the files'
// current contents. Verification is always on.
func (c *Client) TLSConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: c.minV, ServerName: c.cfg.ServerName}
	if c.ca != nil {
		cfg.RootCAs = c.ca.get()
	}
	if c.cert != nil {
		cert := c.cert.get()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

// Watch re-reads the files when they change, until ctx ends, and calls
// changed (with nothing held) after a reload that changed something, so
// the caller can build a new transport from TLSConfig.
func (c *Client) Watch(ctx context.Context, changed func()) error {
	w := &watcher{log: c.log, poll: c.poll, debounce: 100 * time.Millisecond, changed: changed}
	if c.ca != nil {
		w.files = append(w.files, c.cfg.CAFile)
		w.items = append(w.items, c.ca)
	}
	if c.cert != nil {
		w.files = append(w.files, c.cfg.CertFile, c.cfg.KeyFile)
		w.items = append(w.items, c.cert)
	}
	if len(w.files) == 0 {
		return nil
	}
	return w.run(ctx)
}

// Reload re-reads the files now and reports whether anything changed. A
// failure keeps the previous values.
func (c *Client) Reload() (bool, error) {
	var errs []error
	changed := false
	var items []interface{ load() (bool, error) }
	if c.ca != nil {
		items = append(items, c.ca)
	}
	if c.cert != nil {
		items = append(items, c.cert)
	}
	for _, it := range items {
		ch, err := it.load()
		errs = append(errs, err)
		changed = changed || ch
	}
	return changed, errors.Join(errs...)
}

// SetPollInterval changes how often the files are re-read without a file
// event (default one minute). Call before Watch.
func (c *Client) SetPollInterval(d time.Duration) {
	if d > 0 {
		c.poll = d
	}
}
