package export

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// SyslogConfig configures the syslog sink: RFC 5424 messages over TCP
// with RFC 6587 octet-counting framing, in clear or over TLS (RFC 5425).
type SyslogConfig struct {
	// Address is host:port of the receiver. Required.
	Address string `yaml:"address"`
	// Transport is "tcp" (default) or "tls".
	Transport string `yaml:"transport"`
	// CAFile verifies the receiver's certificate (tls; default: the
	// system roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate (tls, optional).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the receiver's
	// certificate (tls; default: the host of Address).
	ServerName string `yaml:"server_name"`
	// Facility is the syslog facility, by name (kern, user, auth,
	// authpriv, audit, local0 … local7) . Default "audit" (13, log audit).
	Facility string `yaml:"facility"`
	// Hostname is the HOSTNAME field. Default: the machine's hostname.
	Hostname string `yaml:"hostname"`
	// AppName is the APP-NAME field. Default "warden".
	AppName string `yaml:"app_name"`
	// Timeout bounds connecting, writing a batch and waiting for the
	// receiver's TCP stack to acknowledge it. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// ResendWindowBytes is how much of what was last sent on a
	// connection (whole batches, at least the last one) is sent again on
	// the next connection when that one
	// broke (the receiver closed, reset or stopped answering): bytes the
	// receiver's TCP stack acknowledged but the receiver had not yet
	// read when it went away are lost unless they are sent again.
	// Default 4 MiB (above Linux's default largest receive buffer the
	// kernel grants a socket without tuning, 6 MiB autotuned in practice
	// only on long-lived fast links); -1 turns it off.
	ResendWindowBytes int64 `yaml:"resend_window_bytes"`
}

// defaultResendWindow is SyslogConfig.ResendWindowBytes's default.
const defaultResendWindow = 4 << 20

var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// SetDefaults fills zero fields.
func (c *SyslogConfig) SetDefaults() {
	if c.Transport == "" {
		c.Transport = "tcp"
	}
	if c.Facility == "" {
		c.Facility = "audit"
	}
	if c.AppName == "" {
		c.AppName = "warden"
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.ResendWindowBytes == 0 {
		c.ResendWindowBytes = defaultResendWindow
	}
}

// Validate reports invalid fields with their key paths.
func (c *SyslogConfig) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, field.Errorf("address", "must be host:port (%v)", err))
	}
	switch c.Transport {
	case "tcp", "tls":
	default:
		errs = append(errs, field.Errorf("transport", "must be tcp or tls, not %q", c.Transport))
	}
	if _, ok := facilities[c.Facility]; !ok {
		errs = append(errs, field.Errorf("facility", "unknown facility %q", c.Facility))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, field.Errorf("cert_file", "cert_file and key_file go together"))
	}
	if c.Transport == "tcp" && (c.CAFile != "" || c.CertFile != "") {
		errs = append(errs, field.Errorf("transport", "ca_file and cert_file need transport: tls"))
	}
	if c.Timeout < 0 {
		errs = append(errs, field.Errorf("timeout", "must be > 0"))
	}
	if c.ResendWindowBytes < -1 {
		errs = append(errs, field.Errorf("resend_window_bytes", "must be a size in bytes, or -1 for none"))
	}
	return errors.Join(errs...)
}

// SyslogSink sends each event as one RFC 5424 message whose MSG is the
// OCSF JSON and whose MSGID is the audit kind.
//
// Syslog has no application-level acknowledgement. A batch counts as
// delivered once the receiver's TCP stack has acknowledged every byte of
// it (the socket's send queue is empty, on Linux); on any error the
// whole batch is re-sent on a new connection, so a receiver may see
// duplicates (de-duplicate on metadata.uid), but a batch lost in a
// broken connection is never counted as delivered.
//
// A TCP acknowledgement only says the receiver's kernel holds the bytes:
// a receiver that stops with unread bytes in its socket buffer loses
// them. So the sink keeps the last ResendWindowBytes it sent on the
// current connection and, when that connection turns out broken, sends
// them again first on the next one: those events arrive twice rather
// than not at all.
type SyslogSink struct {
	cfg      SyslogConfig
	tls      *tls.Config
	pri      int
	hostname string
	conn     net.Conn
	tcp      *net.TCPConn
	// sent holds the newest batches written on conn, oldest first, each
	// whole (its first event carries the tree frontier, so a re-sent
	// range verifies on its own), at most cfg.ResendWindowBytes in all
	// (sentBytes) but always the newest batch.
	sent      [][]byte
	sentBytes int64
	// resend is set when a connection broke: sent goes out again first
	// on the next connection.
	resend bool
}

var _ Sink = (*SyslogSink)(nil)

// NewSyslogSink returns a syslog sink (it connects on first Send).
func NewSyslogSink(cfg SyslogConfig) (*SyslogSink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: syslog sink: %w", err)
	}
	s := &SyslogSink{cfg: cfg, pri: facilities[cfg.Facility] * 8, hostname: headerField(cfg.Hostname, 255)}
	if cfg.Transport == "tls" {
		host, _, _ := net.SplitHostPort(cfg.Address)
		tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if cfg.ServerName != "" {
			tc.ServerName = cfg.ServerName
		}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("export: syslog sink: ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("export: syslog sink: ca_file %s holds no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		if cfg.CertFile != "" {
			crt, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("export: syslog sink: client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{crt}
		}
		s.tls = tc
	}
	return s, nil
}

// severityOf maps an OCSF severity_id to a syslog severity.
func severityOf(ocsf int) int {
	switch ocsf {
	case 2:
		return 5 // notice
	case 3:
		return 4 // warning
	case 4:
		return 3 // err
	case 5:
		return 2 // crit
	case 6:
		return 1 // alert
	}
	return 6 // informational
}

// headerField makes s a valid RFC 5424 header field: printable US-ASCII
// without spaces, at most max bytes, "-" when empty.
func headerField(s string, max int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if c := s[i]; c >= 33 && c <= 126 {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// Format returns the framed RFC 5424 message of ev (octet counting).
func (s *SyslogSink) Format(ev Event) []byte {
	msg := make([]byte, 0, len(ev.JSON)+160)
	msg = append(msg, '<')
	msg = strconv.AppendInt(msg, int64(s.pri+severityOf(ev.Severity)), 10)
	msg = append(msg, ">1 "...)
	msg = ev.Time.UTC().AppendFormat(msg, "2006-01-02T15:04:05.000000Z07:00")
	msg = append(msg, ' ')
	msg = append(msg, s.hostname...)
	msg = append(msg, ' ')
	msg = append(msg, headerField(s.cfg.AppName, 48)...)
	msg = append(msg, " - "...)
	msg = append(msg, headerField(ev.Kind, 32)...)
	msg = append(msg, " - "...)
	msg = append(msg, ev.JSON...)
	out := strconv.AppendInt(make([]byte, 0, len(msg)+8), int64(len(msg)), 10)
	out = append(out, ' ')
	return append(out, msg...)
}

func (s *SyslogSink) connect(ctx context.Context) error {
	d := net.Dialer{Timeout: s.cfg.Timeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return &SinkError{Sink: "syslog", Msg: "connect to " + s.cfg.Address, Err: err}
	}
	s.tcp, _ = c.(*net.TCPConn)
	if s.tls != nil {
		tc := tls.Client(c, s.tls)
		hctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.Close()
			return &SinkError{Sink: "syslog", Msg: "TLS handshake with " + s.cfg.Address, Err: err}
		}
		c = tc
	}
	s.conn = c
	return nil
}

// alive reports whether the receiver still holds the connection open
// (a syslog receiver never sends data: EOF or an error means it is
// gone). Over TLS the probe reads through the TLS layer, which consumes
// post-handshake messages such as session tickets.
func (s *SyslogSink) alive() bool {
	s.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	n, err := s.conn.Read(b[:])
	s.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return n == 0 && errors.As(err, &ne) && ne.Timeout()
}

// Send writes the batch and waits until the receiver's TCP stack has
// acknowledged it.
func (s *SyslogSink) Send(ctx context.Context, batch []Event) (Ack, error) {
	if s.conn != nil && !s.alive() {
		s.drop()
	}
	if s.conn == nil {
		if err := s.connect(ctx); err != nil {
			return Ack{}, err
		}
	}
	var buf []byte
	if s.resend {
		for _, f := range s.sent {
			buf = append(buf, f...)
		}
	}
	start := len(buf)
	for _, ev := range batch {
		buf = append(buf, s.Format(ev)...)
	}
	deadline := time.Now().Add(s.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetWriteDeadline(deadline)
	if _, err := s.conn.Write(buf); err != nil {
		s.drop()
		return Ack{}, &SinkError{Sink: "syslog", Msg: "write to " + s.cfg.Address, Err: err}
	}
	if err := s.waitAcked(ctx, deadline); err != nil {
		s.drop()
		return Ack{}, err
	}
	s.resend = false
	s.remember(buf[start:len(buf):len(buf)])
	return allSettled(len(batch)), nil
}

// remember adds a batch acknowledged on the current connection to the
// resend window, dropping the oldest whole batches beyond
// ResendWindowBytes. A failed batch is not added: the engine sends it
// again itself.
func (s *SyslogSink) remember(batch []byte) {
	limit := s.cfg.ResendWindowBytes
	if limit <= 0 {
		return
	}
	s.sent = append(s.sent, batch)
	s.sentBytes += int64(len(batch))
	drop := 0
	for drop < len(s.sent)-1 && s.sentBytes > limit {
		s.sentBytes -= int64(len(s.sent[drop]))
		drop++
	}
	if drop > 0 {
		s.sent = append(s.sent[:0:0], s.sent[drop:]...)
	}
}

// waitAcked waits until the socket's send queue is empty: every byte
// written has been acknowledged by the receiving host.
func (s *SyslogSink) waitAcked(ctx context.Context, deadline time.Time) error {
	if s.tcp == nil {
		return nil
	}
	for wait := 100 * time.Microsecond; ; wait = min(wait*2, 20*time.Millisecond) {
		n, err := unackedBytes(s.tcp)
		if err != nil || n == 0 {
			return nil // not measurable here: written is the best we know
		}
		if !s.alive() {
			return &SinkError{Sink: "syslog", Msg: fmt.Sprintf("%s closed the connection with %d bytes unacknowledged", s.cfg.Address, n)}
		}
		if time.Now().After(deadline) {
			return &SinkError{Sink: "syslog", Msg: fmt.Sprintf("%s did not acknowledge %d bytes in time", s.cfg.Address, n)}
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// drop closes a broken connection; what it carried last is sent again
// on the next one.
func (s *SyslogSink) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.resend = len(s.sent) > 0
	}
	s.conn, s.tcp = nil, nil
}

// Close closes the connection.
func (s *SyslogSink) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn, s.tcp = nil, nil
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
