package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/wardenhq/warden/internal/apierr"
	"log/slog"
	"net/http"
	"time"
)

// Server is the TLS side of one listener: its certificate (and client CA
// bundle) reloaded from files.
type Server struct {
	cfg       ServerConfig
	log       *slog.Logger
	cert      *reloadable[tls.Certificate]
	clientCAs *reloadable[x509.CertPool] // nil without client auth
	base      *tls.Config
	poll      time.Duration
}

// NewServer loads the files of c (defaults applied, validated) once; an
// unreadable or invalid file is an error naming its key.
func NewServer(c ServerConfig, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	minV, _ := ParseVersion(c.MinVersion)
	s := &Server{cfg: c, log: log, cert: keyPair(c.CertFile, c.KeyFile), poll: DefaultPollInterval}
	if _, err := s.cert.load(); err != nil {
		return nil, err
	}
	warnExpiry(log, s.cert.get())
	s.base = &tls.Config{
		MinVersion: minV,
		// h2 first: HTTP/2 over TLS for clients that offer it (streams
		// stay event by event), HTTP/1.1 for the rest.
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.get(), nil
		},
	}
	if c.ClientCAFile != "" {
		s.clientCAs = certPool("client CA bundle", c.ClientCAFile)
		if _, err := s.clientCAs.load(); err != nil {
			return nil, err
		}
		s.base.ClientAuth = tls.RequireAndVerifyClientCert
		if c.ClientAuth == ClientAuthRequireExceptProbes {
			s.base.ClientAuth = tls.VerifyClientCertIfGiven
		}
		// The CA bundle may change: every handshake gets the current one.
		s.base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cfg := s.base.Clone()
			cfg.GetConfigForClient = nil
			cfg.ClientCAs = s.clientCAs.get()
			return cfg, nil
		}
	}
	return s, nil
}

// TLSConfig is the configuration to serve with (http.Server.TLSConfig);
// each call returns a copy, so a caller that adjusts it (http.Server
// adds its protocols) cannot change another listener's.
func (s *Server) TLSConfig() *tls.Config { return s.base.Clone() }

// Certificate is the certificate currently served.
func (s *Server) Certificate() *tls.Certificate { return s.cert.get() }

// Reload re-reads the files now. A failure keeps the previous values.
func (s *Server) Reload() error {
	var errs []error
	if _, err := s.cert.load(); err != nil {
		errs = append(errs, err)
	} else {
		warnExpiry(s.log, s.cert.get())
	}
	if s.clientCAs != nil {
		if _, err := s.clientCAs.load(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Watch reloads the files when they change, until ctx ends.
func (s *Server) Watch(ctx context.Context) error {
	w := &watcher{log: s.log, poll: s.poll, debounce: 100 * time.Millisecond,
		files: []string{s.cfg.CertFile, s.cfg.KeyFile}}
	w.items = append(w.items, s.cert)
	if s.clientCAs != nil {
		w.files = append(w.files, s.cfg.ClientCAFile)
		w.items = append(w.items, s.clientCAs)
	}
	w.changed = func() { warnExpiry(s.log, s.cert.get()) }
	return w.run(ctx)
}

// SetPollInterval changes how often the files are re-read without a file
// event (default one minute). Call before Watch.
func (s *Server) SetPollInterval(d time.Duration) {
	if d > 0 {
		s.poll = d
	}
}

// RequireClientCert wraps the handler of a listener whose client_auth is
// require_except_probes: a request without a verified client certificate
// gets 403 unless it is GET or HEAD /healthz or /readyz. For the other
// modes it returns h unchanged (the handshake already decided).
func (s *Server) RequireClientCert(h http.Handler) http.Handler {
	if s.cfg.ClientAuth != ClientAuthRequireExceptProbes {
		return h
	}
	return apierr.WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			h.ServeHTTP(w, r)
			return
		}
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") {
			h.ServeHTTP(w, r)
			return
		}
		apierr.WriteRequest(w, r, apierr.New(apierr.ClientCertificateRequired,
			"this listener requires a client certificate signed by its client_ca_file"))
	}))
}

func warnExpiry(log *slog.Logger, c *tls.Certificate) {
	if c == nil || c.Leaf == nil {
		return
	}
	if left := time.Until(c.Leaf.NotAfter); left < 0 {
		log.Error("tls: the served certificate has expired", "subject", c.Leaf.Subject.String(), "not_after", c.Leaf.NotAfter)
	} else if left < 7*24*time.Hour {
		log.Warn("tls: the served certificate expires soon", "subject", c.Leaf.Subject.String(), "not_after", c.Leaf.NotAfter)
	}
}
