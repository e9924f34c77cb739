package export

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wardenhq/warden/internal/config/field"
)

// NATSConfig configures the NATS JetStream sink.
type NATSConfig struct {
	// URL is the server URL (or a comma-separated list), e.g.
	// nats://nats.example:4222. Required. Credentials in it are never
	// logged.
	URL string `yaml:"url"`
	// Subject is the subject events are published on. "{kind}" in it is
	// replaced by the event kind (checkpoints: "checkpoint"), e.g.
	// "warden.audit.{kind}". Default "warden.audit.{kind}".
	Subject string `yaml:"subject"`
	// Stream, when set, is the JetStream stream that must capture the
	// subject; the sink creates it (file storage, the duplicate window
	// below) if it does not exist, and never changes an existing one.
	Stream string `yaml:"stream"`
	// DuplicateWindow is the created stream's de-duplication window.
	// Re-sends within it are dropped by the server (Nats-Msg-Id).
	// Default 10m.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// CredsFile is a NATS credentials file (JWT + NKey seed).
	CredsFile string `yaml:"creds_file"`
	// User/Password or Token authenticate without a creds file. Never
	// logged; use ${ENV} expansion.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	Token    string `yaml:"token"`
	// CAFile, CertFile and KeyFile configure TLS (CertFile/KeyFile: a
	// client certificate).
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// Timeout bounds connecting and waiting for publish acknowledgements.
	// Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// SetDefaults fills zero fields.
func (c *NATSConfig) SetDefaults() {
	if c.Subject == "" {
		c.Subject = "warden.audit.{kind}"
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 10 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
}

// Validate reports invalid fields with their key paths.
func (c *NATSConfig) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, field.Errorf("url", "is required"))
	}
	if strings.ContainsAny(c.Subject, " \t*>") || strings.HasPrefix(c.Subject, ".") || strings.HasSuffix(c.Subject, ".") {
		errs = append(errs, field.Errorf("subject", "%q is not a valid publish subject", c.Subject))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, field.Errorf("cert_file", "cert_file and key_file go together"))
	}
	if c.Timeout < 0 || c.DuplicateWindow < 0 {
		errs = append(errs, field.Errorf("timeout", "durations must be > 0"))
	}
	return errors.Join(errs...)
}

// NATSSink publishes each event to JetStream with Nats-Msg-Id = the
// event's metadata.uid, so the stream drops re-sends, and waits for the
// publish acknowledgements.
type NATSSink struct {
	cfg NATSConfig
	nc  *nats.Conn
	js  jetstream.JetStream
	// subjects caches the publish subject of each kind (Send is called
	// by one goroutine at a time).
	subjects map[string]string
}

var _ Sink = (*NATSSink)(nil)

// NewNATSSink returns a NATS sink (it connects on first Send).
func NewNATSSink(cfg NATSConfig) (*NATSSink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: nats sink: %w", err)
	}
	return &NATSSink{cfg: cfg}, nil
}

func (s *NATSSink) connect(ctx context.Context) error {
	opts := []nats.Option{
		nats.Name("warden-export"), nats.Timeout(s.cfg.Timeout),
		nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
	}
	if s.cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(s.cfg.CredsFile))
	}
	if s.cfg.User != "" {
		opts = append(opts, nats.UserInfo(s.cfg.User, s.cfg.Password))
	}
	if s.cfg.Token != "" {
		opts = append(opts, nats.Token(s.cfg.Token))
	}
	if s.cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(s.cfg.CAFile))
	}
	if s.cfg.CertFile != "" {
		opts = append(opts, nats.ClientCert(s.cfg.CertFile, s.cfg.KeyFile))
	}
	nc, err := nats.Connect(s.cfg.URL, opts...)
	if err != nil {
		return &SinkError{Sink: "nats", Msg: "connect", Err: scrubNATS(err)}
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(s.cfg.Timeout), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return &SinkError{Sink: "nats", Msg: "JetStream", Err: err}
	}
	if s.cfg.Stream != "" {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
		if _, err := js.Stream(cctx, s.cfg.Stream); errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(cctx, jetstream.StreamConfig{
				Name: s.cfg.Stream, Subjects: []string{strings.ReplaceAll(s.cfg.Subject, "{kind}", ">")},
				Storage: jetstream.FileStorage, Duplicates: s.cfg.DuplicateWindow,
			})
			if err != nil {
				nc.Close()
				return &SinkError{Sink: "nats", Msg: "create stream " + s.cfg.Stream, Err: err}
			}
		} else if err != nil {
			nc.Close()
			return &SinkError{Sink: "nats", Msg: "look up stream " + s.cfg.Stream, Err: err}
		}
	}
	s.nc, s.js = nc, js
	return nil
}

// scrubNATS drops anything that may hold credentials from a connect
// error (the URL).
func scrubNATS(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "@") {
		return errors.New("connection failed (details withheld: the URL holds credentials)")
	}
	return err
}

// subject returns the publish subject of ev.
func (s *NATSSink) subject(ev Event) string {
	if subj, ok := s.subjects[ev.Kind]; ok {
		return subj
	}
	kind := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, ev.Kind)
	kind = strings.Trim(kind, ".")
	if kind == "" {
		kind = "unknown"
	}
	subj := strings.ReplaceAll(s.cfg.Subject, "{kind}", kind)
	if s.subjects == nil {
		s.subjects = map[string]string{}
	}
	if len(s.subjects) < 1024 { // kinds are few; never let odd ones grow it
		s.subjects[ev.Kind] = subj
	}
	return subj
}

// Send publishes the batch asynchronously, in order, and waits for every
// acknowledgement. Settled is the number of leading events JetStream
// acknowledged (or refused as too large).
func (s *NATSSink) Send(ctx context.Context, batch []Event) (Ack, error) {
	if s.nc == nil {
		if err := s.connect(ctx); err != nil {
			return Ack{}, err
		}
	}
	max := s.nc.MaxPayload()
	futures := make([]jetstream.PubAckFuture, len(batch))
	reasons := make([]string, len(batch))
	var perr error
	for i, ev := range batch {
		if int64(len(ev.JSON)) > max-1024 {
			reasons[i] = fmt.Sprintf("event of %d bytes exceeds the server's max_payload (%d)", len(ev.JSON), max)
			continue
		}
		// The headers as nats.NewMsg, Header.Set and jetstream.WithMsgID
		// would set them, without their per-message allocations.
		m := &nats.Msg{Subject: s.subject(ev), Data: ev.JSON, Header: nats.Header{
			"Warden-Kind": {ev.Kind}, jetstream.MsgIDHeader: {ev.UID},
		}}
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			perr = err
			break
		}
		futures[i] = f
	}
	var ack Ack
	timeout := time.NewTimer(s.cfg.Timeout + time.Second)
	defer timeout.Stop()
	for i := range batch {
		if reasons[i] != "" {
			ack.Rejected = append(ack.Rejected, Rejection{Index: i, Reason: reasons[i]})
			ack.Settled++
			continue
		}
		f := futures[i]
		if f == nil {
			return ack, &SinkError{Sink: "nats", Msg: "publish", Err: perr}
		}
		select {
		case <-f.Ok():
			ack.Settled++
		case err := <-f.Err():
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum {
				ack.Rejected = append(ack.Rejected, Rejection{Index: i, Reason: "JetStream refused the event: " + apiErr.Description})
				ack.Settled++
				continue
			}
			return ack, &SinkError{Sink: "nats", Msg: "publish acknowledgement", Err: err}
		case <-timeout.C:
			return ack, &SinkError{Sink: "nats", Msg: "publish acknowledgements timed out"}
		case <-ctx.Done():
			return ack, ctx.Err()
		}
	}
	return ack, nil
}

// Close drains the connection.
func (s *NATSSink) Close() error {
	if s.nc == nil {
		return nil
	}
	s.nc.Close()
	s.nc, s.js = nil, nil
	return nil
}
