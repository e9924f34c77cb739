package audit

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// Config is the `audit:` section of the gateway config.
type Config struct {
	// Store is "sqlite" (default, embedded) or "postgres".
	Store string `yaml:"store"`
	// Path is the SQLite file. Default: <data dir>/audit.db.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection string (store: postgres).
	DSN string `yaml:"dsn"`
	// CheckpointEvery signs a checkpoint after this many new entries.
	// Default 1000; must be > 0.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointInterval signs a checkpoint this often if the tree grew.
	// Default 10s; must be > 0.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// CheckpointFile keeps a copy of the latest signed checkpoint outside
	// the store, so a store rolled back as a whole (restored from an old
	// backup, checkpoints included) is detected at start-up.
	// Default: <data dir>/audit.checkpoint.
	CheckpointFile string `yaml:"checkpoint_file"`
	// SigningKeyFile is the note signer key. Default:
	// <data dir>/keys/audit.signer (created on first start if missing).
	SigningKeyFile string `yaml:"signing_key_file"`
	// AllowUnverifiedStart starts even if the store does not verify
	// against its checkpoints. It logs an error and records a
	// gateway.started entry with details.unverified_start = true.
	// Default false: a tampered or rolled-back store refuses to start.
	AllowUnverifiedStart bool `yaml:"allow_unverified_start"`
	// BatchMax caps how many appends share one transaction. Default 256.
	BatchMax int `yaml:"batch_max"`
	// WriteTimeout bounds one store transaction; an append that cannot be
	// made durable within it fails (and the request gets 503). Default 10s.
	// SQLite checks it between the transaction's statements (decision 033).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// StartupVerify is how much Open verifies before the gateway serves:
	// "full" (default) recomputes every entry; "recent" recomputes only
	// the last StartupVerifyWindow entries (resuming the tree from a
	// signed checkpoint) and runs the full verification in the
	// background, recording an audit.verify_failed entry and logging an
	// error if it finds a divergence. Full verification runs at roughly
	// 150k entries/s on a 2-core machine.
	StartupVerify string `yaml:"startup_verify"`
	// StartupVerifyWindow is the number of recent entries verified at
	// start with startup_verify: recent. Default 100000.
	StartupVerifyWindow int64 `yaml:"startup_verify_window"`
	// AbandonAfter: on a store shared by replicas (PostgreSQL), an
	// admission of another instance without a terminal entry is recorded
	// as request.abandoned at start-up only once it is older than this
	// (it may be in flight on a live replica until then). Admissions of
	// this instance, and every open admission on SQLite, are abandoned at
	// once. Default 1h; must exceed the longest request.
	AbandonAfter time.Duration `yaml:"abandon_after"`
	// KeyName is the key name (checkpoint origin) used when a key is
	// created. Default "warden-audit".
	KeyName string `yaml:"key_name"`
}

// SetDefaults fills zero fields with their defaults, except the paths
// under the data dir (see Resolve).
func (c *Config) SetDefaults() {
	if c.Store == "" {
		c.Store = "sqlite"
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = 1000
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	if c.BatchMax == 0 {
		c.BatchMax = 256
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.StartupVerify == "" {
		c.StartupVerify = "full"
	}
	if c.StartupVerifyWindow == 0 {
		c.StartupVerifyWindow = 100_000
	}
	if c.AbandonAfter == 0 {
		c.AbandonAfter = time.Hour
	}
	if c.KeyName == "" {
		c.KeyName = DefaultKeyName
	}
}

// Resolve fills the file paths left empty with their defaults under
// dataDir.
func (c *Config) Resolve(dataDir string) {
	if c.Path == "" {
		c.Path = filepath.Join(dataDir, "audit.db")
	}
	if c.CheckpointFile == "" {
		c.CheckpointFile = filepath.Join(dataDir, "audit.checkpoint")
	}
	if c.SigningKeyFile == "" {
		c.SigningKeyFile, _ = KeyPaths(dataDir)
	}
}

// Validate reports every invalid field with its key path.
func (c *Config) Validate() error {
	var errs []error
	switch c.Store {
	case "sqlite":
	case "postgres":
		if c.DSN == "" {
			errs = append(errs, field.Errorf("dsn", "is required when store is postgres"))
		}
	default:
		errs = append(errs, field.Errorf("store", "must be sqlite or postgres, not %q", c.Store))
	}
	if c.CheckpointEvery <= 0 {
		errs = append(errs, field.Errorf("checkpoint_every", "must be > 0"))
	}
	if c.CheckpointInterval <= 0 {
		errs = append(errs, field.Errorf("checkpoint_interval", "must be > 0"))
	}
	if c.BatchMax <= 0 || c.BatchMax > 10000 {
		errs = append(errs, field.Errorf("batch_max", "must be between 1 and 10000"))
	}
	if c.StartupVerify != "full" && c.StartupVerify != "recent" {
		errs = append(errs, field.Errorf("startup_verify", "must be full or recent, not %q", c.StartupVerify))
	}
	if c.StartupVerifyWindow < 0 {
		errs = append(errs, field.Errorf("startup_verify_window", "must be >= 0"))
	}
	if c.AbandonAfter <= 0 {
		errs = append(errs, field.Errorf("abandon_after", "must be > 0"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, field.Errorf("write_timeout", "must be > 0"))
	}
	return errors.Join(errs...)
}
