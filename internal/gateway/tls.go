package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/tlsutil"
)

// listenerTLS is the TLS side of the two listeners; a nil field serves
// plain HTTP.
type listenerTLS struct {
	gateway, admin *tlsutil.Server
}

// loadListenerTLS reads the certificates of `tls` and `admin_tls` once, so
// that a missing or invalid file stops the start with the key named.
func loadListenerTLS(cfg *config.Config, log *slog.Logger) (listenerTLS, error) {
	var lt listenerTLS
	var err error
	if cfg.TLS != nil {
		if lt.gateway, err = tlsutil.NewServer(*cfg.TLS, log); err != nil {
			return lt, fmt.Errorf("tls: %w", err)
		}
	}
	if cfg.AdminTLS != nil {
		if lt.admin, err = tlsutil.NewServer(*cfg.AdminTLS, log); err != nil {
			return lt, fmt.Errorf("admin_tls: %w", err)
		}
	}
	return lt, nil
}

// watch reloads the listeners' certificate files when they change, until
// ctx ends.
func (lt listenerTLS) watch(ctx context.Context) error {
	for _, s := range []*tlsutil.Server{lt.gateway, lt.admin} {
		if s == nil {
			continue
		}
		if err := s.Watch(ctx); err != nil {
			return err
		}
	}
	return nil
}

// adminHandler applies the admin listener's client-certificate rule
// (require_except_probes is enforced per request).
func (lt listenerTLS) adminHandler(h http.Handler) http.Handler {
	if lt.admin == nil {
		return h
	}
	return lt.admin.RequireClientCert(h)
}

// serveListener serves srv on ln: over TLS (HTTP/2 and HTTP/1.1, the
// certificate taken from t at every handshake) when t is set, plain HTTP
// otherwise.
func serveListener(srv *http.Server, ln net.Listener, t *tlsutil.Server) error {
	if t == nil {
		return srv.Serve(ln)
	}
	srv.TLSConfig = t.TLSConfig()
	// ServeTLS adds the HTTP/2 server to srv; the certificate comes from
	// TLSConfig.GetCertificate, so no file names are passed.
	return srv.ServeTLS(ln, "", "")
}

func scheme(t *tlsutil.Server) string {
	if t == nil {
		return "http"
	}
	return "https"
}
