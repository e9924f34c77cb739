package policy

import (
	"errors"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// Config is the "policy" section of the gateway configuration.
type Config struct {
	// File is the policy file path (required).
	File string `yaml:"file"`
	// Watch reloads the policy when the file changes; default true.
	Watch *bool `yaml:"watch,omitempty"`
	// Debounce is how long to wait after the last file event before
	// reloading; default 200ms. Zero means the default.
	Debounce time.Duration `yaml:"debounce,omitempty"`
}

// SetDefaults fills unset fields with their defaults.
func (c *Config) SetDefaults() {
	if c.Watch == nil {
		t := true
		c.Watch = &t
	}
	if c.Debounce == 0 {
		c.Debounce = 200 * time.Millisecond
	}
}

// Validate reports configuration errors against their keys. It does not
// load the policy file; NewEngine does.
func (c *Config) Validate() error {
	var errs []error
	if c.File == "" {
		errs = append(errs, field.Errorf("file", "is required"))
	}
	if c.Debounce < 0 {
		errs = append(errs, field.Errorf("debounce", "must not be negative"))
	}
	return errors.Join(errs...)
}

// WatchEnabled reports whether file watching is on (default true).
func (c *Config) WatchEnabled() bool { return c.Watch == nil || *c.Watch }
