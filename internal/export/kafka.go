package export

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/wardenhq/warden/internal/config/field"
)

// KafkaConfig configures the Kafka sink (an idempotent producer).
type KafkaConfig struct {
	// Brokers are the seed brokers (host:port). Required.
	Brokers []string `yaml:"brokers"`
	// Topic receives the events. Required.
	Topic string `yaml:"topic"`
	// ClientID is the Kafka client id. Default "warden-export".
	ClientID string `yaml:"client_id"`
	// Compression is zstd (default), lz4, snappy, gzip or none.
	Compression string `yaml:"compression"`
	// TLS enables TLS; CAFile, CertFile and KeyFile configure it.
	TLS      bool   `yaml:"tls"`
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// SASLMechanism is plain, scram-sha-256 or scram-sha-512 (empty: no
	// SASL), with SASLUser and SASLPassword (never logged; use ${ENV}).
	SASLMechanism string `yaml:"sasl_mechanism"`
	SASLUser      string `yaml:"sasl_user"`
	SASLPassword  string `yaml:"sasl_password"`
	// Timeout bounds one batch: the producer retries internally (same
	// producer id and sequence numbers, so the broker drops duplicates)
	// until it. Default 2m.
	Timeout time.Duration `yaml:"timeout"`
}

// SetDefaults fills zero fields.
func (c *KafkaConfig) SetDefaults() {
	if c.ClientID == "" {
		c.ClientID = "warden-export"
	}
	if c.Compression == "" {
		c.Compression = "zstd"
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Minute
	}
}

// Validate reports invalid fields with their key paths.
func (c *KafkaConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, field.Errorf("brokers", "at least one broker is required"))
	}
	if c.Topic == "" {
		errs = append(errs, field.Errorf("topic", "is required"))
	}
	if _, ok := codecs[c.Compression]; !ok {
		errs = append(errs, field.Errorf("compression", "must be zstd, lz4, snappy, gzip or none, not %q", c.Compression))
	}
	switch c.SASLMechanism {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		errs = append(errs, field.Errorf("sasl_mechanism", "must be plain, scram-sha-256 or scram-sha-512"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, field.Errorf("cert_file", "cert_file and key_file go together"))
	}
	if !c.TLS && (c.CAFile != "" || c.CertFile != "") {
		errs = append(errs, field.Errorf("tls", "ca_file and cert_file need tls: true"))
	}
	if c.Timeout < 0 {
		errs = append(errs, field.Errorf("timeout", "must be > 0"))
	}
	return errors.Join(errs...)
}

var codecs = map[string]kgo.CompressionCodec{
	"zstd": kgo.ZstdCompression(), "lz4": kgo.Lz4Compression(), "snappy": kgo.SnappyCompression(),
	"gzip": kgo.GzipCompression(), "none": kgo.NoCompression(),
}

// KafkaSink produces events to one topic with an idempotent producer.
// Every record has the log origin as its key, so all events go to one
// partition and keep log order; headers carry the event uid
// (ocsf-uid, for de-duplication by consumers) and kind (warden-kind).
type KafkaSink struct {
	cfg    KafkaConfig
	client *kgo.Client
	key    []byte
}

var _ Sink = (*KafkaSink)(nil)

// NewKafkaSink returns a Kafka sink for the log origin (the record key).
func NewKafkaSink(cfg KafkaConfig, origin string) (*KafkaSink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: kafka sink: %w", err)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...), kgo.ClientID(cfg.ClientID),
		kgo.DefaultProduceTopic(cfg.Topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codecs[cfg.Compression]),
		kgo.RecordDeliveryTimeout(cfg.Timeout), kgo.ProducerLinger(0),
	}
	if cfg.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("export: kafka sink: ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("export: kafka sink: ca_file %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		if cfg.CertFile != "" {
			crt, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("export: kafka sink: client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{crt}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := saslMechanism(cfg); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("export: kafka sink: %w", err)
	}
	return &KafkaSink{cfg: cfg, client: cl, key: []byte(origin)}, nil
}

func saslMechanism(c KafkaConfig) sasl.Mechanism {
	switch c.SASLMechanism {
	case "plain":
		return plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()
	case "scram-sha-256":
		return scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()
	case "scram-sha-512":
		return scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()
	}
	return nil
}

// permanent reports whether a produce error can never succeed for that
// record.
func permanent(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage)
}

// Send produces the batch and waits for every acknowledgement (acks=all).
func (s *KafkaSink) Send(ctx context.Context, batch []Event) (Ack, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	recs := make([]*kgo.Record, len(batch))
	for i, ev := range batch {
		recs[i] = &kgo.Record{
			Key: s.key, Value: ev.JSON, Timestamp: ev.Time,
			Headers: []kgo.RecordHeader{{Key: "ocsf-uid", Value: []byte(ev.UID)}, {Key: "warden-kind", Value: []byte(ev.Kind)}},
		}
	}
	res := s.client.ProduceSync(ctx, recs...)
	var ack Ack
	for i, r := range res {
		switch {
		case r.Err == nil:
			ack.Settled++
		case permanent(r.Err):
			ack.Rejected = append(ack.Rejected, Rejection{Index: i, Reason: "Kafka refused the record: " + r.Err.Error()})
			ack.Settled++
		default:
			return ack, &SinkError{Sink: "kafka", Msg: "produce", Err: r.Err}
		}
	}
	return ack, nil
}

// Close flushes and closes the client.
func (s *KafkaSink) Close() error {
	s.client.Close()
	return nil
}
