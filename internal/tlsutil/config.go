package tlsutil

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// Client authentication modes of a listener (ServerConfig.ClientAuth).
const (
	// ClientAuthRequire refuses the TLS handshake of a client without a
	// certificate signed by client_ca_file.
	ClientAuthRequire = "require"
	// ClientAuthRequireExceptProbes verifies a certificate when one is
	// presented and refuses, with 403, every request without a verified
	// one except GET /healthz and /readyz, which reveal nothing and are
	// what the kubelet (which presents no certificate) probes.
	ClientAuthRequireExceptProbes = "require_except_probes"
)

// DefaultPollInterval is how often watched files are re-read even
// without a file event, in case a watch missed one.
const DefaultPollInterval = time.Minute

// ServerConfig serves a listener over TLS (keys `tls` and `admin_tls`).
type ServerConfig struct {
	// CertFile is the PEM certificate chain (leaf first). Required.
	// Reloaded when it changes.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the leaf. Required.
	KeyFile string `yaml:"key_file"`
	// MinVersion is the lowest TLS version accepted: "1.2" (default) or
	// "1.3". Anything older cannot be configured.
	MinVersion string `yaml:"min_version"`
	// ClientCAFile, when set, turns on client-certificate authentication
	// against this PEM bundle (reloaded when it changes).
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is "require" (default with client_ca_file: the handshake
	// fails without a valid client certificate) or
	// "require_except_probes" (requests other than /healthz and /readyz
	// without a verified certificate get 403).
	ClientAuth string `yaml:"client_auth"`
}

// ClientConfig is how Warden dials an https upstream (key
// `routes[].upstream_tls`).
type ClientConfig struct {
	// CAFile is a PEM bundle of the CAs trusted for this upstream,
	// instead of the system roots. Empty: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate presented to the
	// upstream (mTLS). Both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name sent in SNI and verified in the upstream's
	// certificate, when it differs from the upstream URL's host (e.g. an
	// IP address or a Service alias). Empty: the URL's host.
	ServerName string `yaml:"server_name"`
	// MinVersion: "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// SetDefaults fills the defaults.
func (c *ServerConfig) SetDefaults() {
	if c.MinVersion == "" {
		c.MinVersion = "1.2"
	}
	if c.ClientCAFile != "" && c.ClientAuth == "" {
		c.ClientAuth = ClientAuthRequire
	}
}

// Validate reports errors against the keys of the section. It does not
// read the files (NewServer does, at start-up).
func (c *ServerConfig) Validate() error {
	var errs []error
	if c.CertFile == "" {
		errs = append(errs, field.Errorf("cert_file", "is required (a PEM certificate chain)"))
	}
	if c.KeyFile == "" {
		errs = append(errs, field.Errorf("key_file", "is required (the PEM private key of cert_file)"))
	}
	if _, err := ParseVersion(c.MinVersion); err != nil {
		errs = append(errs, field.Errorf("min_version", "%v", err))
	}
	switch {
	case c.ClientAuth == "" && c.ClientCAFile == "":
	case c.ClientCAFile == "":
		errs = append(errs, field.Errorf("client_auth", "needs client_ca_file (the CAs that sign accepted client certificates)"))
	case c.ClientAuth != ClientAuthRequire && c.ClientAuth != ClientAuthRequireExceptProbes:
		errs = append(errs, field.Errorf("client_auth", "must be %q or %q, got %q", ClientAuthRequire, ClientAuthRequireExceptProbes, c.ClientAuth))
	}
	return errors.Join(errs...)
}

// SetDefaults fills the defaults.
func (c *ClientConfig) SetDefaults() {
	if c.MinVersion == "" {
		c.MinVersion = "1.2"
	}
}

// Validate reports errors against the keys of the section.
func (c *ClientConfig) Validate() error {
	var errs []error
	if (c.CertFile == "") != (c.KeyFile == "") {
		k := "key_file"
		if c.CertFile == "" {
			k = "cert_file"
		}
		errs = append(errs, field.Errorf(k, "cert_file and key_file go together (a client certificate and its key)"))
	}
	if _, err := ParseVersion(c.MinVersion); err != nil {
		errs = append(errs, field.Errorf("min_version", "%v", err))
	}
	if n := c.ServerName; n != "" {
		if strings.ContainsAny(n, "/:@ ") || net.ParseIP(n) != nil && strings.Contains(n, ":") {
			errs = append(errs, field.Errorf("server_name", "must be a host name or IP address without scheme or port, got %q", n))
		}
	}
	return errors.Join(errs...)
}

// ParseVersion maps "1.2" and "1.3" to their crypto/tls constants. Older
// versions are refused.
func ParseVersion(v string) (uint16, error) {
	switch v {
	case "1.2", "":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	case "1.0", "1.1":
		return 0, fmt.Errorf("TLS %s is not accepted (use \"1.2\" or \"1.3\")", v)
	}
	return 0, fmt.Errorf("must be \"1.2\" or \"1.3\", got %q", v)
}
