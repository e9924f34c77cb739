package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// FailureMode is what happens when a rule requires a recording and the
// store cannot take it.
type FailureMode string

const (
	// Strict (the default) refuses the request before it is forwarded
	// (the gateway answers 503) when the store is known to be unable to
	// accept a recording. A store failing after the request was forwarded
	// is recorded as outcome failed: what was sent cannot be unsent.
	Strict FailureMode = "strict"
	// BestEffort serves the request anyway; the terminal audit entry says
	// recording: failed.
	BestEffort FailureMode = "best_effort"
)

// Config is the `recordings:` section of the gateway config.
type Config struct {
	// Mode is strict (default) or best_effort.
	Mode FailureMode `yaml:"mode"`
	// Default is the recording level of rules that do not say: off
	// (default), metadata or full.
	Default Level `yaml:"default"`
	// Store is "filesystem" (default) or "s3".
	Store string `yaml:"store"`
	// Path is the filesystem store's directory. Default
	// <data dir>/recordings/objects.
	Path string `yaml:"path"`
	// S3 configures store: s3.
	S3 S3Config `yaml:"s3"`
	// Catalog is where the catalogue and the wrapped data keys live:
	// "sqlite" (default, a file of its own) or "postgres" (required when
	// replicas share an S3 store; uses audit.dsn unless catalog_dsn is set).
	Catalog string `yaml:"catalog"`
	// CatalogPath is the SQLite catalogue file. Default
	// <data dir>/recordings/catalog.db.
	CatalogPath string `yaml:"catalog_path"`
	// CatalogDSN is the PostgreSQL DSN for catalog: postgres.
	CatalogDSN string `yaml:"catalog_dsn"`
	// KeyFile is the key-encryption key. Default
	// <data dir>/keys/recordings.kek, created on first start.
	KeyFile string `yaml:"key_file"`
	// PreviousKeyFiles are retired KEKs that still unwrap the data keys
	// they wrapped (key rotation).
	PreviousKeyFiles []string `yaml:"previous_key_files"`
	// Retention erases recordings older than this (crypto-shredding).
	// Default 0: kept until erased by hand.
	Retention time.Duration `yaml:"retention"`
	// SweepInterval is how often retention runs. Default 1h.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// SpillDir holds the encrypted, unlinked spill files of captures in
	// progress. Default <data dir>/recordings/tmp.
	SpillDir string `yaml:"spill_dir"`
	// SpillThreshold is how many bytes of one capture stay in memory
	// before it spills to disk. Default 256 KiB.
	SpillThreshold int `yaml:"spill_threshold"`
	// MemoryBudget bounds the memory of all captures together; past it
	// new bytes spill. Default 64 MiB.
	MemoryBudget int64 `yaml:"memory_budget"`
	// MaxSize is the largest response body recorded; a longer response
	// is still served, and its recording fails. Default 1 GiB.
	MaxSize int64 `yaml:"max_size"`
	// ProbeInterval is how often the store is checked for strict mode.
	// Default 1s. Reserve refuses once no probe has succeeded for
	// 3×ProbeInterval+ProbeTimeout, or after a failed probe or save.
	ProbeInterval time.Duration `yaml:"probe_interval"`
	// ProbeTimeout bounds one probe. Default 2s.
	ProbeTimeout time.Duration `yaml:"probe_timeout"`
	// SaveTimeout bounds storing one recording. Default 30s.
	SaveTimeout time.Duration `yaml:"save_timeout"`
}

// SetDefaults fills zero fields with their defaults, except the paths
// under the data dir (see Resolve).
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = Strict
	}
	if c.Default == "" {
		c.Default = LevelOff
	}
	if c.Store == "" {
		c.Store = "filesystem"
	}
	if c.Catalog == "" {
		c.Catalog = "sqlite"
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Hour
	}
	if c.SpillThreshold == 0 {
		c.SpillThreshold = 256 << 10
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = 64 << 20
	}
	if c.MaxSize == 0 {
		c.MaxSize = 1 << 30
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = time.Second
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 2 * time.Second
	}
	if c.SaveTimeout == 0 {
		c.SaveTimeout = 30 * time.Second
	}
}

// Resolve fills the paths left empty with their defaults under dataDir.
func (c *Config) Resolve(dataDir string) {
	if c.Path == "" {
		c.Path = filepath.Join(dataDir, "recordings", "objects")
	}
	if c.CatalogPath == "" {
		c.CatalogPath = filepath.Join(dataDir, "recordings", "catalog.db")
	}
	if c.KeyFile == "" {
		c.KeyFile = filepath.Join(dataDir, "keys", KEKFile)
	}
	if c.SpillDir == "" {
		c.SpillDir = filepath.Join(dataDir, "recordings", "tmp")
	}
}

// Validate reports every invalid field with its key path.
func (c *Config) Validate() error {
	var errs []error
	if c.Mode != Strict && c.Mode != BestEffort {
		errs = append(errs, field.Errorf("mode", "must be strict or best_effort, not %q", c.Mode))
	}
	if _, err := ParseLevel(string(c.Default)); err != nil {
		errs = append(errs, field.Errorf("default", "must be off, metadata or full, not %q", c.Default))
	}
	switch c.Store {
	case "filesystem":
	case "s3":
		errs = append(errs, field.Prefix("s3", c.S3.Validate()))
	default:
		errs = append(errs, field.Errorf("store", "must be filesystem or s3, not %q", c.Store))
	}
	switch c.Catalog {
	case "sqlite", "postgres":
		// sqlite with store: s3 is valid for a single gateway; replicas
		// sharing a bucket need the shared postgres catalogue
		// (docs/recording.md).
	default:
		errs = append(errs, field.Errorf("catalog", "must be sqlite or postgres, not %q", c.Catalog))
	}
	if c.Retention < 0 {
		errs = append(errs, field.Errorf("retention", "must be >= 0 (0 keeps recordings until erased)"))
	}
	if c.SweepInterval <= 0 {
		errs = append(errs, field.Errorf("sweep_interval", "must be > 0"))
	}
	if c.SpillThreshold < 4<<10 || c.SpillThreshold > 64<<20 {
		errs = append(errs, field.Errorf("spill_threshold", "must be between 4 KiB and 64 MiB"))
	}
	if c.MemoryBudget < int64(c.SpillThreshold) {
		errs = append(errs, field.Errorf("memory_budget", "must be at least spill_threshold"))
	}
	if c.MaxSize <= 0 {
		errs = append(errs, field.Errorf("max_size", "must be > 0"))
	}
	if c.ProbeInterval <= 0 {
		errs = append(errs, field.Errorf("probe_interval", "must be > 0"))
	}
	if c.ProbeTimeout <= 0 {
		errs = append(errs, field.Errorf("probe_timeout", "must be > 0"))
	}
	if c.SaveTimeout <= 0 {
		errs = append(errs, field.Errorf("save_timeout", "must be > 0"))
	}
	return errors.Join(errs...)
}

// Open builds a Recorder from cfg (after SetDefaults and Resolve): the
// object store (filesystem or S3), the keyring (creating the KEK file on
// first start when it is the default one) and the spill directory. The
// catalogue comes from the caller: internal/store/sqlite
// OpenRecordingCatalog(cfg.CatalogPath), or internal/store/postgres
// OpenRecordingCatalog for catalog: postgres. o supplies what the config
// does not: StripHeaders, ErasureLog, Logger, Now. Closing the Recorder
// closes the object store it opened (not the catalogue).
func Open(ctx context.Context, cfg Config, cat Catalog, o Options) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("recording: config: %w", err)
	}
	var blobs BlobStore
	var closer io.Closer
	switch cfg.Store {
	case "s3":
		s3, err := NewS3Store(ctx, cfg.S3)
		if err != nil {
			return nil, err
		}
		blobs = s3
	default:
		fs, err := NewFSStore(cfg.Path)
		if err != nil {
			return nil, err
		}
		blobs, closer = fs, fs
	}
	kek, err := LoadOrCreateKEKFile(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	var old []*KEK
	for _, p := range cfg.PreviousKeyFiles {
		k, err := LoadKEKFile(p)
		if err != nil {
			return nil, err
		}
		old = append(old, k)
	}
	o.Blobs, o.Catalog, o.Keys = blobs, cat, NewKeyring(kek, old...)
	o.Mode, o.SpillDir, o.SpillThreshold, o.MemoryBudget = cfg.Mode, cfg.SpillDir, cfg.SpillThreshold, cfg.MemoryBudget
	o.MaxSize, o.ProbeInterval, o.ProbeTimeout, o.SaveTimeout = cfg.MaxSize, cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SaveTimeout
	o.Retention, o.SweepInterval = cfg.Retention, cfg.SweepInterval
	r, err := New(o)
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, err
	}
	r.closer = closer
	return r, nil
}
