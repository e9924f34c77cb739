package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
//
// It publishes with core NATS requests of its own rather than the
// jetstream package's PublishMsgAsync, which per event allocated a
// future with two channels, a map entry, a random reply token and a
// timeout timer, and decoded each acknowledgement with encoding/json
// (decision 029). The protocol is the same: a message with a reply
// subject; JetStream answers with a publish acknowledgement or an error.
type NATSSink struct {
	cfg NATSConfig
	nc  *nats.Conn
	js  jetstream.JetStream
	// subjects caches the publish subject of each kind (Send is called
	// by one goroutine at a time).
	subjects map[string]string

	// inbox is the reply subject prefix ("<inbox>."); an event's reply
	// subject is inbox + its publish id. acks receives the answers.
	inbox string
	sub   *nats.Subscription
	acks  chan *nats.Msg
	// nextID is the publish id of the next event: ids are never reused
	// on a connection, so a late answer to an earlier batch is told
	// apart and ignored.
	nextID uint64
	// msg and its header values are reused for every publish (PublishMsg
	// copies them into the connection's buffer before it returns).
	msg          *nats.Msg
	hdrKind, hdr []string
}

// natsWindow bounds the events published and not yet acknowledged; the
// acknowledgement channel holds that many, so it never overflows (an
// overflowing channel subscription drops messages).
const natsWindow = 1024

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
	inbox := nc.NewRespInbox() + "."
	acks := make(chan *nats.Msg, 2*natsWindow)
	sub, err := nc.ChanSubscribe(inbox+"*", acks)
	if err != nil {
		nc.Close()
		return &SinkError{Sink: "nats", Msg: "subscribe to acknowledgements", Err: err}
	}
	s.nc, s.js, s.inbox, s.sub, s.acks = nc, js, inbox, sub, acks
	s.hdrKind, s.hdr = []string{""}, []string{""}
	s.msg = &nats.Msg{Header: nats.Header{"Warden-Kind": s.hdrKind, jetstream.MsgIDHeader: s.hdr}}
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

// Send publishes the batch in order, at most natsWindow events ahead of
// the acknowledgements, and waits for every acknowledgement. Settled is
// the number of leading events JetStream acknowledged (or refused as
// too large).
func (s *NATSSink) Send(ctx context.Context, batch []Event) (Ack, error) {
	if s.nc == nil {
		if err := s.connect(ctx); err != nil {
			return Ack{}, err
		}
	}
	s.dropStaleAcks()
	maxPayload := s.nc.MaxPayload()
	base := s.nextID
	s.nextID += uint64(len(batch))
	// state[i]: 0 waiting, natsAcked, or natsRefused (reasons[i] says why).
	state := make([]uint8, len(batch))
	var reasons map[int]string
	refuse := func(i int, reason string) {
		if reasons == nil {
			reasons = map[int]string{}
		}
		state[i], reasons[i] = natsRefused, reason
	}
	settled := 0 // leading events in a final state
	result := func() Ack {
		ack := Ack{Settled: settled}
		for i := range settled {
			if state[i] == natsRefused {
				ack.Rejected = append(ack.Rejected, Rejection{Index: i, Reason: reasons[i]})
			}
		}
		return ack
	}
	// The acknowledgements must keep coming: the wait restarts with
	// each one, so a long batch is not cut short by a fixed deadline.
	wait := s.cfg.Timeout + time.Second
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	published := 0
	for {
		for published < len(batch) && published-settled < natsWindow {
			ev := batch[published]
			if int64(len(ev.JSON)) > maxPayload-1024 {
				refuse(published, fmt.Sprintf("event of %d bytes exceeds the server's max_payload (%d)", len(ev.JSON), maxPayload))
			} else if err := s.publish(ev, base+uint64(published)); err != nil {
				for settled < len(batch) && state[settled] != 0 {
					settled++
				}
				return result(), &SinkError{Sink: "nats", Msg: "publish", Err: err}
			}
			published++
		}
		for settled < len(batch) && state[settled] != 0 {
			settled++
		}
		if settled == len(batch) {
			return result(), nil
		}
		select {
		case m := <-s.acks:
			id, err := strconv.ParseUint(strings.TrimPrefix(m.Subject, s.inbox), 10, 64)
			if err != nil || id < base || id-base >= uint64(published) || state[id-base] != 0 {
				continue // an answer to an earlier batch, or a repeat
			}
			i := int(id - base)
			reason, err := natsPubAck(m)
			switch {
			case err != nil:
				return result(), &SinkError{Sink: "nats", Msg: "publish acknowledgement", Err: err}
			case reason != "":
				refuse(i, reason)
			default:
				state[i] = natsAcked
			}
			timeout.Reset(wait) // no stale expiry is left to drain since Go 1.23
		case <-timeout.C:
			return result(), &SinkError{Sink: "nats", Msg: "publish acknowledgements timed out"}
		case <-ctx.Done():
			return result(), ctx.Err()
		}
	}
}

const (
	natsAcked = 1 + iota
	natsRefused
)

// publish sends ev as a JetStream publish request with reply subject
// inbox + id.
func (s *NATSSink) publish(ev Event, id uint64) error {
	// The headers as nats.NewMsg, Header.Set and jetstream.WithMsgID
	// would set them, in one message reused for every event.
	s.hdrKind[0], s.hdr[0] = ev.Kind, ev.UID
	s.msg.Subject, s.msg.Data = s.subject(ev), ev.JSON
	s.msg.Reply = s.inbox + strconv.FormatUint(id, 10)
	return s.nc.PublishMsg(s.msg)
}

// dropStaleAcks empties the acknowledgement channel of answers to
// earlier batches (a batch that failed leaves its late answers there).
func (s *NATSSink) dropStaleAcks() {
	for {
		select {
		case <-s.acks:
		default:
			return
		}
	}
}

// pubAckOK is how every successful JetStream publish acknowledgement
// begins ({"stream":"NAME","seq":N[,"domain":…][,"duplicate":true]}).
var pubAckOK = []byte(`{"stream":`)

// natsPubAck reads JetStream's answer to a publish: nil and "" when the
// event is stored (or was a duplicate the stream dropped), a reason when
// JetStream refused the event for good (it exceeds the stream's maximum
// message size: re-sending cannot help), an error otherwise.
func natsPubAck(m *nats.Msg) (reason string, err error) {
	// The server writes them by hand, with spaces: {"stream":"S", "seq":1}.
	if d := m.Data; bytes.HasPrefix(d, pubAckOK) && bytes.HasSuffix(d, []byte("}")) && !bytes.Contains(d, []byte(`"error"`)) {
		if i := bytes.Index(d, []byte(`"seq":`)); i > 0 {
			j := i + len(`"seq":`)
			for j < len(d) && d[j] == ' ' {
				j++
			}
			if j < len(d) && d[j] >= '1' && d[j] <= '9' {
				return "", nil
			}
		}
	}
	if len(m.Data) == 0 {
		if st := m.Header.Get("Status"); st == "503" {
			return "", errors.New("no responders: no JetStream stream captures the subject")
		} else if st != "" {
			return "", fmt.Errorf("status %s %s", st, m.Header.Get("Description"))
		}
	}
	var a struct {
		Stream string `json:"stream"`
		Seq    uint64 `json:"seq"`
		Error  *struct {
			Code        int    `json:"code"`
			ErrCode     uint16 `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &a); err != nil {
		return "", fmt.Errorf("invalid publish acknowledgement: %w", err)
	}
	switch {
	case a.Error != nil && a.Error.ErrCode == uint16(jetstream.JSErrCodeStreamMessageExceedsMaximum):
		return "JetStream refused the event: " + a.Error.Description, nil
	case a.Error != nil:
		return "", fmt.Errorf("%s (code %d, error code %d)", a.Error.Description, a.Error.Code, a.Error.ErrCode)
	case a.Stream == "" || a.Seq == 0:
		return "", errors.New("invalid publish acknowledgement: no stream or sequence")
	}
	return "", nil
}

// Close drains the connection.
func (s *NATSSink) Close() error {
	if s.nc == nil {
		return nil
	}
	s.nc.Close()
	s.nc, s.js, s.sub = nil, nil, nil
	return nil
}
