package postgres

import (
	"errors"
	"log/slog"
	"regexp"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// Config is the YAML configuration of the PostgreSQL store: the
// `audit.postgres` section (the DSN comes from `audit.dsn`). The audit log
// and the approval store share it, so they use the same schema.
type Config struct {
	// DSN is the PostgreSQL connection string (URL or key=value form). It
	// may hold a password; it is never logged. Required. In YAML it is
	// audit.dsn, one level up.
	DSN string `yaml:"-"`
	// Schema is the PostgreSQL schema holding Warden's tables. Default
	// "warden". Letters, digits and underscores, at most 40 characters.
	Schema string `yaml:"schema"`
	// MaxConns caps the connection pool (the leader and notification
	// connections come on top). Default 8.
	MaxConns int32 `yaml:"max_conns"`
	// WriteTimeout bounds one write transaction (an admission batch or an
	// integration batch), so a dead database makes writes fail instead of
	// hang. Default 5s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PollInterval is how often waiters re-check when no NOTIFY arrives
	// (a safety net: notifications are not durable). Default 1s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// ConnectTimeout bounds establishing one connection, unless the DSN
	// sets connect_timeout. Default: WriteTimeout.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// SetDefaults fills in zero fields.
func (c *Config) SetDefaults() {
	if c.Schema == "" {
		c.Schema = "warden"
	}
	if c.MaxConns == 0 {
		c.MaxConns = 8
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = c.WriteTimeout
	}
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Validate checks c after SetDefaults.
func (c *Config) Validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, field.Errorf("dsn", "is required"))
	}
	if !schemaName.MatchString(c.Schema) {
		errs = append(errs, field.Errorf("schema", "must be lowercase letters, digits and underscores, at most 40 characters, not starting with a digit"))
	}
	if c.MaxConns < 2 {
		errs = append(errs, field.Errorf("max_conns", "must be at least 2"))
	}
	if c.WriteTimeout < 0 {
		errs = append(errs, field.Errorf("write_timeout", "must not be negative"))
	}
	if c.PollInterval < 0 {
		errs = append(errs, field.Errorf("poll_interval", "must not be negative"))
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, field.Errorf("connect_timeout", "must not be negative"))
	}
	return errors.Join(errs...)
}

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	cfg    Config
	logger *slog.Logger
}

// WithSchema puts the tables in the named schema (tests use a unique one
// each).
func WithSchema(name string) Option { return func(o *options) { o.cfg.Schema = name } }

// WithMaxConns caps the connection pool.
func WithMaxConns(n int32) Option { return func(o *options) { o.cfg.MaxConns = n } }

// WithWriteTimeout bounds each write transaction.
func WithWriteTimeout(d time.Duration) Option { return func(o *options) { o.cfg.WriteTimeout = d } }

// WithPollInterval sets how often waiters re-check without a NOTIFY.
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.cfg.PollInterval = d } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }
