package witness

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// Endpoint is one witness in the `audit.witnesses` list.
type Endpoint struct {
	// Name labels the witness in logs and metrics. Default: the key's
	// name. Unique.
	Name string `yaml:"name"`
	// URL is the witness's submission prefix (http or https); checkpoints
	// are POSTed to URL/add-checkpoint. Required.
	URL string `yaml:"url"`
	// Key is the witness's Ed25519 cosignature/v1 verifier key
	// ("name+hash+base64", key type 0x04), as the witness operator
	// publishes it. Required.
	Key string `yaml:"key"`
	// Timeout bounds one call to the witness. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Submission policies.
const (
	// SubmitEveryCheckpoint submits each new signed checkpoint as soon as
	// it exists (the default): every committed batch is witnessed within
	// a round trip.
	SubmitEveryCheckpoint = "every_checkpoint"
	// SubmitInterval submits the newest checkpoint once every Interval,
	// for witnesses that ask for fewer requests.
	SubmitInterval = "interval"
)

// Policy is the `audit.witnessing` section: how and when checkpoints are
// submitted.
type Policy struct {
	// Submit is every_checkpoint (default) or interval.
	Submit string `yaml:"submit"`
	// Interval is the submission period with submit: interval, and the
	// longest wait between retries after a failure. Default 1m.
	Interval time.Duration `yaml:"interval"`
	// Poll is how often the newest checkpoint is looked at when no
	// wake-up arrives (submit: every_checkpoint). Default 1s.
	Poll time.Duration `yaml:"poll"`
	// CosignedFile receives the newest cosigned checkpoint (the log's
	// signature plus every cosignature on it), rewritten atomically. Keep
	// a copy outside the operator's reach; `warden verify --checkpoint`
	// reads it. Default <data dir>/audit.cosigned; "-" disables it.
	CosignedFile string `yaml:"cosigned_file"`
	// CosignatureDB is the SQLite file that keeps cosignatures when the
	// audit store is embedded (PostgreSQL keeps them in a table of its
	// own schema). Default <data dir>/cosignatures.db.
	CosignatureDB string `yaml:"cosignature_db"`
	// StartCheck asks every witness at start-up for its view of the log
	// (by submitting the store's newest checkpoint) and refuses to start
	// on a store older than, or forked from, what a witness has cosigned.
	// Unreachable witnesses only warn. Default true.
	StartCheck *bool `yaml:"start_check"`
}

// StartCheckOn reports whether the start-up check runs.
func (p *Policy) StartCheckOn() bool { return p.StartCheck == nil || *p.StartCheck }

// SetDefaults fills zero fields with their defaults.
func (p *Policy) SetDefaults() {
	if p.Submit == "" {
		p.Submit = SubmitEveryCheckpoint
	}
	if p.Interval == 0 {
		p.Interval = time.Minute
	}
	if p.Poll == 0 {
		p.Poll = time.Second
	}
}

// Resolve sets the default file paths under dataDir.
func (p *Policy) Resolve(dataDir string) {
	if p.CosignedFile == "" {
		p.CosignedFile = filepath.Join(dataDir, "audit.cosigned")
	}
	if p.CosignatureDB == "" {
		p.CosignatureDB = filepath.Join(dataDir, "cosignatures.db")
	}
}

// Validate reports every invalid field with its key path.
func (p *Policy) Validate() error {
	var errs []error
	switch p.Submit {
	case SubmitEveryCheckpoint, SubmitInterval:
	default:
		errs = append(errs, field.Errorf("submit", "must be %s or %s, not %q", SubmitEveryCheckpoint, SubmitInterval, p.Submit))
	}
	if p.Interval <= 0 {
		errs = append(errs, field.Errorf("interval", "must be > 0"))
	}
	if p.Poll <= 0 {
		errs = append(errs, field.Errorf("poll", "must be > 0"))
	}
	return errors.Join(errs...)
}

// SetDefaults fills the endpoint's defaults (the name from a valid key).
func (e *Endpoint) SetDefaults() {
	if e.Timeout == 0 {
		e.Timeout = DefaultTimeout
	}
	if e.Name == "" {
		if v, err := NewVerifier(e.Key); err == nil {
			e.Name = v.Name()
		}
	}
}

// ValidateEndpoints checks the witnesses list; paths are relative to it
// ("[0].url").
func ValidateEndpoints(eps []Endpoint) error {
	var errs []error
	names, keys := map[string]bool{}, map[string]bool{}
	for i, e := range eps {
		p := fmt.Sprintf("[%d]", i)
		if e.URL == "" {
			errs = append(errs, field.Errorf(p+".url", "is required (the witness's submission prefix, e.g. https://witness.example/)"))
		} else if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Errorf(p+".url", "must be an absolute http:// or https:// URL, got %q", e.URL))
		} else if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, field.Errorf(p+".url", "must not carry credentials, a query or a fragment"))
		}
		if e.Key == "" {
			errs = append(errs, field.Errorf(p+".key", "is required (the witness's cosignature/v1 verifier key)"))
		} else if v, err := NewVerifier(e.Key); err != nil {
			errs = append(errs, field.Errorf(p+".key", "%v", err))
		} else if keys[v.String()] {
			errs = append(errs, field.Errorf(p+".key", "the same witness key is listed twice"))
		} else {
			keys[v.String()] = true
		}
		if e.Name != "" {
			if names[e.Name] {
				errs = append(errs, field.Errorf(p+".name", "duplicate witness name %q", e.Name))
			}
			names[e.Name] = true
		}
		if e.Timeout < 0 {
			errs = append(errs, field.Errorf(p+".timeout", "must be positive, got %s", e.Timeout))
		}
	}
	return errors.Join(errs...)
}
