package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config/field"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/store/postgres"
	"github.com/wardenhq/warden/internal/tlsutil"
	"github.com/wardenhq/warden/internal/witness"
)

// Config is the whole Warden configuration file.
type Config struct {
	// Listen is the gateway (data path) address. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// AdminListen is the admin/operations address (/healthz, /readyz,
	// /metrics, admin API). Default 127.0.0.1:9090. It must differ from
	// Listen.
	AdminListen string `yaml:"admin_listen"`
	// DataDir holds the embedded store, keys and state. Default ./warden-data.
	DataDir string `yaml:"data_dir"`
	// Instance names this gateway replica in audit records. Default: hostname.
	Instance string `yaml:"instance"`
	// AllowAnonymous lets requests through without any identity when no
	// identity section is configured. Off by default: without identity,
	// the gateway refuses to start. Meant for benchmarks and local tests.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// Timeouts bound every phase of a request.
	Timeouts Timeouts `yaml:"timeouts"`
	// Limits bound request sizes.
	Limits Limits `yaml:"limits"`
	// UpstreamPool tunes the keep-alive pool to the model servers.
	UpstreamPool UpstreamPool `yaml:"upstream_pool"`
	// Routes map host and path prefix to an upstream. At least one.
	Routes []Route `yaml:"routes"`
	// TLS serves the gateway listener over TLS (HTTP/2 and HTTP/1.1)
	// from a certificate and key file, reloaded when they change. Absent:
	// plain HTTP (behind a TLS-terminating proxy, or on loopback).
	TLS *tlsutil.ServerConfig `yaml:"tls"`
	// AdminTLS serves the admin listener over TLS, optionally requiring
	// client certificates. Absent: plain HTTP.
	AdminTLS *tlsutil.ServerConfig `yaml:"admin_tls"`

	// Identity verifies callers (OIDC issuers, API keys) and signs the
	// assertion sent upstream. Absent: no authentication, which is only
	// allowed with allow_anonymous.
	Identity *identity.Config `yaml:"identity"`
	// Policy names the CEL policy file. Absent: every authenticated
	// request is allowed (a warning is logged at start-up).
	Policy *policy.Config `yaml:"policy"`
	// Masking defines the masking profiles policy rules name. A "default"
	// profile always exists.
	Masking *mask.Config `yaml:"masking"`
	// Audit configures the tamper-evident audit log. On by default
	// (SQLite under data_dir).
	Audit AuditSection `yaml:"audit"`
	// Admin says which groups hold which role on the admin API.
	Admin admin.Config `yaml:"admin"`
	// Approvals configures the approval workflow (store, webhooks, review
	// links). It runs whenever a policy and the audit log are configured.
	Approvals approval.Config `yaml:"approvals"`
	// Recordings configures session recordings (docs/recording.md): the
	// level of rules that do not say (default off), strict or
	// best_effort, the store (filesystem under data_dir, or S3).
	Recordings recording.Config `yaml:"recordings"`
	// Export delivers the audit log, mapped to OCSF, to SIEM sinks (file,
	// syslog, Splunk HEC, NATS, Kafka, webhook). No sinks: no export.
	Export export.Config `yaml:"export"`

	// file is the path the config was loaded from ("" for in-memory).
	file string
	// src is the file as read (before ${VAR} expansion, so it holds no
	// expanded secret), kept to locate errors found after loading.
	src []byte
}

// Timeouts bound the phases of a request. Zero means the default; there is
// no way to disable a timeout.
type Timeouts struct {
	// ReadHeader bounds reading the request headers. Default 10s.
	ReadHeader time.Duration `yaml:"read_header"`
	// Idle bounds how long a keep-alive client connection may sit idle.
	// Default 120s.
	Idle time.Duration `yaml:"idle"`
	// UpstreamDial bounds connecting to an upstream. Default 5s.
	UpstreamDial time.Duration `yaml:"upstream_dial"`
	// UpstreamHeader bounds the wait for the upstream's response headers
	// (time to first byte of a completion). Default 120s.
	UpstreamHeader time.Duration `yaml:"upstream_header"`
	// Shutdown is how long in-flight requests and streams may drain on
	// SIGTERM/SIGINT before they are cut. Default 30s.
	Shutdown time.Duration `yaml:"shutdown"`
	// DrainDelay is how long the gateway keeps serving after SIGTERM with
	// /readyz already answering 503, so that load balancers (a Kubernetes
	// Service's endpoints) stop sending traffic before the listeners
	// close. Default 0s (close at once); set it to how long endpoint
	// removal takes to propagate, e.g. 10s.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// RequestBody bounds reading a request body, from the first body read
	// to its end (408 after). Default 30s.
	RequestBody time.Duration `yaml:"request_body"`
	// UpstreamBodyIdle is the longest the caller may receive nothing
	// while the upstream's body is read: the gap between two reads of a
	// streamed body, and the whole read of a body that is buffered for
	// masking (JSON). 504 upstream_timeout before the response starts;
	// the stream is cut after. Default 60s.
	UpstreamBodyIdle time.Duration `yaml:"upstream_body_idle"`
	// Store bounds every store call on the request path (the approval
	// store's grant lookup and checks, audit appends): a stalled store
	// gives 503 within it. Default 10s.
	Store time.Duration `yaml:"store"`
}

// Limits bound request sizes.
type Limits struct {
	// MaxRequestBody is the largest request body accepted (413 above).
	// Default 10MiB.
	MaxRequestBody ByteSize `yaml:"max_request_body"`
	// MaxHeaderBytes bounds the request header block. Default 64KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// MaxInflightBodyBytes caps the request body bytes buffered across
	// all requests at once; a request that would exceed it gets 503
	// temporarily_unavailable with Retry-After. Default 256MiB.
	MaxInflightBodyBytes ByteSize `yaml:"max_inflight_body_bytes"`
	// MaxInflightResponseBytes caps the upstream response bytes buffered
	// for masking (JSON answers) across all requests at once; an answer
	// that would exceed it gets 503 temporarily_unavailable. Default
	// 256MiB.
	MaxInflightResponseBytes ByteSize `yaml:"max_inflight_response_bytes"`
	// MaxConnections caps the open client connections of the gateway
	// listener; more wait in the kernel's accept queue. Default 0: no cap.
	MaxConnections int `yaml:"max_connections"`
	// AdminMaxConnections caps the open client connections of the admin
	// listener (console, reports, admin API, probes, metrics) on its
	// own, so they cannot exhaust the process's file descriptors nor
	// take the gateway's share; more wait in the kernel's accept queue.
	// Default 0: no cap.
	AdminMaxConnections int `yaml:"admin_max_connections"`
}

// UpstreamPool tunes the HTTP keep-alive pool towards upstreams.
type UpstreamPool struct {
	// MaxIdlePerHost is the number of idle keep-alive connections kept per
	// upstream. Default 256.
	MaxIdlePerHost int `yaml:"max_idle_per_host"`
	// IdleTimeout closes idle upstream connections. Default 90s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Route maps requests to an upstream.
type Route struct {
	// Name identifies the route in policy, metrics and audit. Required,
	// unique.
	Name string `yaml:"name"`
	// Host, when set, must equal the request's Host (port ignored,
	// case-insensitive). Empty matches any host.
	Host string `yaml:"host"`
	// PathPrefix is matched against the normalised path. It must start
	// with "/". A prefix ending in "/" matches everything below it; one
	// without matches the exact path and everything below "prefix/".
	PathPrefix string `yaml:"path_prefix"`
	// Upstream is the base URL of the model server (http or https). Its
	// path, if any, is prepended to the request path.
	Upstream string `yaml:"upstream"`
	// Profile is the protocol profile: "openai" (OpenAI-compatible JSON
	// and SSE bodies) or "generic" (any HTTP API). Default generic.
	Profile string `yaml:"profile"`
	// AllowEncodedSlash accepts %2F in paths (kept encoded towards the
	// upstream). Off by default: such paths are ambiguous and get 400.
	AllowEncodedSlash bool `yaml:"allow_encoded_slash"`
	// StripPrefix removes PathPrefix before forwarding. Default false.
	StripPrefix bool `yaml:"strip_prefix"`
	// UpstreamTLS is how an https upstream is verified and dialled: CA
	// bundle, client certificate (mTLS), server name. Absent: the system
	// roots, no client certificate.
	UpstreamTLS *tlsutil.ClientConfig `yaml:"upstream_tls"`
	// UpstreamCredential is a static credential Warden sends to this
	// upstream (many model servers want an API key). The caller's own
	// credential is never forwarded on such a route.
	UpstreamCredential *UpstreamCredential `yaml:"upstream_credential"`
}

// UpstreamCredential is a header Warden sets on every request to one
// upstream.
type UpstreamCredential struct {
	// Header is the header name. Default Authorization.
	Header string `yaml:"header"`
	// Value is the header value, usually from the environment:
	// "Bearer ${MODEL_API_KEY}". Required; never logged.
	Value string `yaml:"value"`
}

// AuditSection is the audit log configuration plus its on/off switch.
type AuditSection struct {
	// Enabled turns the audit log on (default true). Turning it off
	// removes the evidence Warden exists to produce; it is meant for
	// benchmarks of the other stages only.
	Enabled *bool `yaml:"enabled"`
	// Config is the audit log's own configuration.
	audit.Config `yaml:",inline"`
	// Postgres tunes the PostgreSQL store (store: postgres): schema, pool
	// size and timeouts. The audit log and the approval store share it.
	// The DSN is audit.dsn.
	Postgres postgres.Config `yaml:"postgres"`
	// Witnesses receive every signed checkpoint (C2SP tlog-witness) and
	// cosign it; see docs/audit.md, "Witnesses". Empty: no witnessing.
	Witnesses []witness.Endpoint `yaml:"witnesses"`
	// Witnessing is the submission policy for the witnesses.
	Witnessing witness.Policy `yaml:"witnessing"`
}

// PostgresConfig is the PostgreSQL store's configuration: the
// audit.postgres section with audit.dsn.
func (a *AuditSection) PostgresConfig() postgres.Config {
	pc := a.Postgres
	pc.DSN = a.DSN
	return pc
}

// On reports whether the audit log is enabled.
func (a *AuditSection) On() bool { return a.Enabled == nil || *a.Enabled }

// Profiles understood by the gateway.
const (
	ProfileOpenAI  = "openai"
	ProfileGeneric = "generic"
)

// File returns the path the configuration was loaded from.
func (c *Config) File() string { return c.file }

// SetDefaults fills zero values with their documented defaults.
func (c *Config) SetDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Listen, "127.0.0.1:8080")
	def(&c.AdminListen, "127.0.0.1:9090")
	def(&c.DataDir, "./warden-data")
	if c.Instance == "" {
		h, _ := os.Hostname()
		c.Instance = h
	}
	defDur(&c.Timeouts.ReadHeader, 10*time.Second)
	defDur(&c.Timeouts.Idle, 120*time.Second)
	defDur(&c.Timeouts.UpstreamDial, 5*time.Second)
	defDur(&c.Timeouts.UpstreamHeader, 120*time.Second)
	defDur(&c.Timeouts.Shutdown, 30*time.Second)
	defDur(&c.Timeouts.RequestBody, 30*time.Second)
	defDur(&c.Timeouts.UpstreamBodyIdle, 60*time.Second)
	defDur(&c.Timeouts.Store, 10*time.Second)
	if c.Limits.MaxRequestBody == 0 {
		c.Limits.MaxRequestBody = 10 << 20
	}
	if c.Limits.MaxHeaderBytes == 0 {
		c.Limits.MaxHeaderBytes = 64 << 10
	}
	if c.Limits.MaxInflightBodyBytes == 0 {
		c.Limits.MaxInflightBodyBytes = max(256<<20, c.Limits.MaxRequestBody)
	}
	if c.Limits.MaxInflightResponseBytes == 0 {
		c.Limits.MaxInflightResponseBytes = 256 << 20
	}
	if c.UpstreamPool.MaxIdlePerHost == 0 {
		c.UpstreamPool.MaxIdlePerHost = 256
	}
	defDur(&c.UpstreamPool.IdleTimeout, 90*time.Second)
	for i := range c.Routes {
		r := &c.Routes[i]
		def(&r.Profile, ProfileGeneric)
		if r.UpstreamTLS != nil {
			r.UpstreamTLS.SetDefaults()
		}
		if r.UpstreamCredential != nil {
			def(&r.UpstreamCredential.Header, "Authorization")
		}
	}
	for _, t := range []*tlsutil.ServerConfig{c.TLS, c.AdminTLS} {
		if t != nil {
			t.SetDefaults()
		}
	}
	if c.Identity != nil {
		c.Identity.SetDefaults()
	}
	if c.Policy != nil {
		c.Policy.SetDefaults()
	}
	if c.Masking != nil {
		c.Masking.SetDefaults()
	}
	c.Admin.SetDefaults()
	c.Approvals.SetDefaults()
	c.Approvals.Resolve(c.DataDir)
	c.Recordings.SetDefaults()
	c.Recordings.Resolve(c.DataDir)
	c.Audit.Config.SetDefaults()
	c.Audit.Config.Resolve(c.DataDir)
	c.Audit.Postgres.SetDefaults()
	for i := range c.Audit.Witnesses {
		c.Audit.Witnesses[i].SetDefaults()
	}
	c.Audit.Witnessing.SetDefaults()
	c.Audit.Witnessing.Resolve(c.DataDir)
	c.Export.SetDefaults()
	c.Export.Resolve(c.DataDir)
}

// Validate checks the gateway part of the configuration. Errors are
// *field.Error values naming the key path.
func (c *Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, field.Errorf(path, format, args...))
	}
	for _, a := range []struct{ key, v string }{{"listen", c.Listen}, {"admin_listen", c.AdminListen}} {
		if _, port, err := net.SplitHostPort(a.v); err != nil {
			add(a.key, "%q is not host:port", a.v)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			add(a.key, "port %q in %q is not a number from 0 to 65535", port, a.v)
		}
	}
	if c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") {
		add("admin_listen", "must differ from listen (%s)", c.Listen)
	}
	neg := func(key string, d time.Duration) {
		if d < 0 {
			add(key, "must be positive, got %s", d)
		}
	}
	neg("timeouts.read_header", c.Timeouts.ReadHeader)
	neg("timeouts.idle", c.Timeouts.Idle)
	neg("timeouts.upstream_dial", c.Timeouts.UpstreamDial)
	neg("timeouts.upstream_header", c.Timeouts.UpstreamHeader)
	neg("timeouts.shutdown", c.Timeouts.Shutdown)
	neg("timeouts.drain_delay", c.Timeouts.DrainDelay)
	neg("timeouts.request_body", c.Timeouts.RequestBody)
	neg("timeouts.upstream_body_idle", c.Timeouts.UpstreamBodyIdle)
	neg("timeouts.store", c.Timeouts.Store)
	if c.Limits.MaxConnections < 0 {
		add("limits.max_connections", "must not be negative (0: no cap)")
	}
	if c.Limits.AdminMaxConnections < 0 {
		add("limits.admin_max_connections", "must not be negative (0: no cap)")
	}
	if c.Limits.MaxInflightBodyBytes > 0 && c.Limits.MaxInflightBodyBytes < c.Limits.MaxRequestBody {
		add("limits.max_inflight_body_bytes", "must be at least limits.max_request_body (%d bytes), got %d", c.Limits.MaxRequestBody, c.Limits.MaxInflightBodyBytes)
	}
	if c.UpstreamPool.MaxIdlePerHost < 0 {
		add("upstream_pool.max_idle_per_host", "must not be negative")
	}
	if len(c.Routes) == 0 {
		add("routes", "at least one route is required")
	}
	names := map[string]bool{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			add(p+".name", "is required")
		} else if names[r.Name] {
			add(p+".name", "duplicate route name %q", r.Name)
		}
		names[r.Name] = true
		if r.PathPrefix == "" {
			add(p+".path_prefix", "is required (use \"/\" for everything)")
		} else if !strings.HasPrefix(r.PathPrefix, "/") {
			add(p+".path_prefix", "must start with \"/\", got %q", r.PathPrefix)
		} else if np, err := NormalizePrefix(r.PathPrefix); err != nil || np != r.PathPrefix {
			add(p+".path_prefix", "must be a normalised path (no dot segments, duplicate slashes or escapes), got %q", r.PathPrefix)
		}
		switch r.Profile {
		case ProfileOpenAI, ProfileGeneric:
		default:
			add(p+".profile", "must be %q or %q, got %q", ProfileOpenAI, ProfileGeneric, r.Profile)
		}
		if r.Upstream == "" {
			add(p+".upstream", "is required (the model server's base URL, e.g. http://127.0.0.1:8000)")
			continue
		}
		u, err := url.Parse(r.Upstream)
		switch {
		case err != nil:
			add(p+".upstream", "must be an absolute http:// or https:// URL (%v)", errors.Unwrap(err))
		case u.Scheme != "http" && u.Scheme != "https":
			add(p+".upstream", "must be an http:// or https:// URL, got %q", r.Upstream)
		case u.Host == "":
			add(p+".upstream", "has no host: %q", r.Upstream)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			add(p+".upstream", "must not carry a query, fragment or credentials (use upstream_credential for an API key)")
		case r.UpstreamTLS != nil && u.Scheme != "https":
			add(p+".upstream_tls", "needs an https:// upstream, got %q", r.Upstream)
		}
		if r.UpstreamTLS != nil {
			errs = append(errs, field.Prefix(p+".upstream_tls", r.UpstreamTLS.Validate()))
		}
		if r.UpstreamCredential != nil {
			errs = append(errs, field.Prefix(p+".upstream_credential", r.UpstreamCredential.validate(c.Identity)))
		}
	}
	if c.TLS != nil {
		errs = append(errs, field.Prefix("tls", c.TLS.Validate()))
	}
	if c.AdminTLS != nil {
		errs = append(errs, field.Prefix("admin_tls", c.AdminTLS.Validate()))
	}
	if c.Identity == nil && !c.AllowAnonymous {
		add("identity", "is required: configure identity.issuers (or API keys), or set allow_anonymous: true for a gateway without authentication")
	}
	if c.Identity != nil {
		errs = append(errs, field.Prefix("identity", c.Identity.Validate()))
	}
	if c.Policy != nil {
		errs = append(errs, field.Prefix("policy", c.Policy.Validate()))
	}
	if c.Masking != nil {
		errs = append(errs, field.Prefix("masking", c.Masking.Validate()))
	}
	if c.Audit.On() {
		errs = append(errs, field.Prefix("audit", c.Audit.Config.Validate()))
		if c.Audit.Store == "postgres" {
			pc := c.Audit.PostgresConfig()
			if pc.DSN == "" {
				pc.DSN = "-" // reported as audit.dsn above
			}
			errs = append(errs, field.Prefix("audit.postgres", pc.Validate()))
		}
		errs = append(errs, field.Prefix("audit.witnesses", witness.ValidateEndpoints(c.Audit.Witnesses)))
		errs = append(errs, field.Prefix("audit.witnessing", c.Audit.Witnessing.Validate()))
	}
	errs = append(errs, field.Prefix("approvals", c.Approvals.Validate()))
	errs = append(errs, field.Prefix("recordings", c.Recordings.Validate()))
	errs = append(errs, field.Prefix("admin", c.Admin.Validate()))
	errs = append(errs, field.Prefix("export", c.Export.Validate()))
	if len(c.Export.Sinks) > 0 && !c.Audit.On() {
		add("export.sinks", "need the audit log (audit.enabled: false exports nothing)")
	}
	if c.Export.Cursor == "file" && c.Audit.Store == "postgres" {
		add("export.cursor", "file would make every replica export on its own; use store (a table in PostgreSQL, one exporting replica)")
	}
	return errors.Join(errs...)
}

// NormalizePrefix checks that a configured prefix is already in the form
// the gateway's path normaliser produces; it returns the cleaned form.
func NormalizePrefix(p string) (string, error) {
	if strings.ContainsAny(p, "%\\") || strings.Contains(p, "//") {
		return "", errors.New("not normalised")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return "", errors.New("dot segment")
		}
	}
	return p, nil
}
