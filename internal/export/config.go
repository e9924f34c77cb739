package export

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// Config is the `export:` section of the gateway config.
type Config struct {
	// Dir holds each sink's cursor and dead-letter file. Default
	// <data dir>/export.
	Dir string `yaml:"dir"`
	// Cursor is where each sink's position is kept: "store" (default:
	// beside the audit log — export.db in the data dir for SQLite, a
	// table of the audit schema for PostgreSQL, where it also elects the
	// one exporting replica) or "file" (one small file per sink under
	// Dir; single replica only).
	Cursor string `yaml:"cursor"`
	// LeaseCheck is how often a PostgreSQL replica tries to become the
	// exporter (and the exporter checks it still is): a dead exporter is
	// replaced within about this long. Default 1s.
	LeaseCheck time.Duration `yaml:"lease_check"`
	// Sinks are delivered independently, each from its own cursor.
	Sinks []SinkConfig `yaml:"sinks"`
}

// SinkConfig is one sink: common delivery settings and exactly one
// type-specific block, named by Type.
type SinkConfig struct {
	// Name identifies the sink (metrics, status, cursor and dead-letter
	// file names): letters, digits, '-' and '_'. Required, unique.
	Name string `yaml:"name"`
	// Type is file, syslog, splunk_hec, nats, kafka or webhook.
	Type string `yaml:"type"`
	// Filter is a CEL expression over `entry` selecting the entries this
	// sink receives (see Filter); empty: all. Checkpoints always pass.
	Filter string `yaml:"filter"`
	// DropParams leaves request parameters out of this sink's events (and
	// with them the embedded canonical entry, so the export verifies by
	// position and leaf hash only).
	DropParams bool `yaml:"drop_params"`
	// BatchMax caps events per delivery. Default 500.
	BatchMax int `yaml:"batch_max"`
	// BatchWait is how long a delivery waits to fill. Default 200ms.
	BatchWait time.Duration `yaml:"batch_wait"`
	// BackoffMax caps the retry delay. Default 30s.
	BackoffMax time.Duration `yaml:"backoff_max"`
	// CatchupMinRate and CatchupFactor limit how fast a sink that is
	// behind reads the log, so catching up after an outage leaves the
	// data path its CPU: at most max(catchup_min_rate, catchup_factor ×
	// the log's current growth rate) entries per second. A sink that
	// follows the log is never slowed. Defaults 1000 and 2; a negative
	// catchup_min_rate removes the limit; catchup_factor must be >= 1.
	CatchupMinRate float64 `yaml:"catchup_min_rate"`
	CatchupFactor  float64 `yaml:"catchup_factor"`
	// CursorInterval is how often the sink's cursor is saved while it
	// delivers (the last position also once the log is quiet, and always
	// when delivery stops); after a crash the events
	// delivered since the last save are sent again. Default 1s; negative:
	// after every batch.
	CursorInterval time.Duration `yaml:"cursor_interval"`

	File      *FileConfig    `yaml:"file"`
	Syslog    *SyslogConfig  `yaml:"syslog"`
	SplunkHEC *HECConfig     `yaml:"splunk_hec"`
	NATS      *NATSConfig    `yaml:"nats"`
	Kafka     *KafkaConfig   `yaml:"kafka"`
	Webhook   *WebhookConfig `yaml:"webhook"`
}

var sinkName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Resolve sets Dir under dataDir when it is empty.
func (c *Config) Resolve(dataDir string) {
	if c.Dir == "" {
		c.Dir = filepath.Join(dataDir, "export")
	}
}

// SetDefaults fills zero fields of every sink.
func (c *Config) SetDefaults() {
	if c.Cursor == "" {
		c.Cursor = "store"
	}
	if c.LeaseCheck == 0 {
		c.LeaseCheck = time.Second
	}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		if s.File != nil {
			s.File.SetDefaults()
		}
		if s.Syslog != nil {
			s.Syslog.SetDefaults()
		}
		if s.SplunkHEC != nil {
			s.SplunkHEC.SetDefaults()
		}
		if s.NATS != nil {
			s.NATS.SetDefaults()
		}
		if s.Kafka != nil {
			s.Kafka.SetDefaults()
		}
		if s.Webhook != nil {
			s.Webhook.SetDefaults()
		}
	}
}

// Validate reports every invalid field with its key path (e.g.
// "sinks[1].syslog.address").
func (c *Config) Validate() error {
	var errs []error
	if c.Cursor != "store" && c.Cursor != "file" {
		errs = append(errs, field.Errorf("cursor", "must be store or file, not %q", c.Cursor))
	}
	if c.LeaseCheck < 0 || c.LeaseCheck > time.Minute {
		errs = append(errs, field.Errorf("lease_check", "must be between 0 and 1m"))
	}
	seen := map[string]bool{}
	for i, s := range c.Sinks {
		p := fmt.Sprintf("sinks[%d]", i)
		if !sinkName.MatchString(s.Name) {
			errs = append(errs, field.Errorf(p+".name", "is required: letters, digits, - and _ (at most 64)"))
		} else if seen[s.Name] {
			errs = append(errs, field.Errorf(p+".name", "%q is used by another sink", s.Name))
		}
		seen[s.Name] = true
		blocks := map[string]bool{
			"file": s.File != nil, "syslog": s.Syslog != nil, "splunk_hec": s.SplunkHEC != nil,
			"nats": s.NATS != nil, "kafka": s.Kafka != nil, "webhook": s.Webhook != nil,
		}
		has, ok := blocks[s.Type]
		switch {
		case !ok:
			errs = append(errs, field.Errorf(p+".type", "must be file, syslog, splunk_hec, nats, kafka or webhook, not %q", s.Type))
		case !has:
			errs = append(errs, field.Errorf(p+"."+s.Type, "is required for type %s", s.Type))
		}
		for name, set := range blocks {
			if set && name != s.Type {
				errs = append(errs, field.Errorf(p+"."+name, "does not apply to type %s", s.Type))
			}
		}
		if s.Filter != "" {
			if _, err := CompileFilter(s.Filter); err != nil {
				errs = append(errs, field.Errorf(p+".filter", "%v", err))
			}
		}
		if s.BatchMax < 0 || s.BatchMax > 10000 {
			errs = append(errs, field.Errorf(p+".batch_max", "must be between 1 and 10000"))
		}
		if s.BatchWait < 0 || s.BackoffMax < 0 {
			errs = append(errs, field.Errorf(p+".batch_wait", "durations must be > 0"))
		}
		if s.CatchupFactor != 0 && s.CatchupFactor < 1 {
			errs = append(errs, field.Errorf(p+".catchup_factor", "must be at least 1 (below, a sink that is behind would never catch up)"))
		}
		var berr error
		switch {
		case s.Type == "file" && s.File != nil:
			berr = s.File.Validate()
		case s.Type == "syslog" && s.Syslog != nil:
			berr = s.Syslog.Validate()
		case s.Type == "splunk_hec" && s.SplunkHEC != nil:
			berr = s.SplunkHEC.Validate()
		case s.Type == "nats" && s.NATS != nil:
			berr = s.NATS.Validate()
		case s.Type == "kafka" && s.Kafka != nil:
			berr = s.Kafka.Validate()
		case s.Type == "webhook" && s.Webhook != nil:
			berr = s.Webhook.Validate()
		}
		errs = append(errs, field.Prefix(p+"."+s.Type, berr))
	}
	return errors.Join(errs...)
}

// Targets builds the sinks of a validated config. cursor returns each
// sink's cursor (nil: a FileCursor under Dir); origin is the log origin
// (the Kafka record key).
func (c *Config) Targets(origin string, cursor func(name string) Cursor) ([]Target, error) {
	var out []Target
	closeAll := func() {
		for _, t := range out {
			t.Sink.Close()
		}
	}
	for _, sc := range c.Sinks {
		var s Sink
		var err error
		switch sc.Type {
		case "file":
			s, err = NewFileSink(*sc.File, nil)
		case "syslog":
			s, err = NewSyslogSink(*sc.Syslog)
		case "splunk_hec":
			s, err = NewHECSink(*sc.SplunkHEC)
		case "nats":
			s, err = NewNATSSink(*sc.NATS)
		case "kafka":
			s, err = NewKafkaSink(*sc.Kafka, origin)
		case "webhook":
			s, err = NewWebhookSink(*sc.Webhook)
		default:
			err = fmt.Errorf("export: sink %s: unknown type %q", sc.Name, sc.Type)
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		t := Target{
			Name: sc.Name, Sink: s, DropParams: sc.DropParams, BatchMax: sc.BatchMax, BatchWait: sc.BatchWait, BackoffMax: sc.BackoffMax,
			CatchupMinRate: sc.CatchupMinRate, CatchupFactor: sc.CatchupFactor, CursorInterval: sc.CursorInterval,
			DeadLetter: filepath.Join(c.Dir, sc.Name+".deadletter.jsonl"),
		}
		if cursor != nil {
			t.Cursor = cursor(sc.Name)
		} else {
			t.Cursor = NewFileCursor(filepath.Join(c.Dir, sc.Name+".cursor"))
		}
		if sc.Filter != "" {
			if t.Filter, err = CompileFilter(sc.Filter); err != nil {
				s.Close()
				closeAll()
				return nil, err
			}
		}
		out = append(out, t)
	}
	return out, nil
}
