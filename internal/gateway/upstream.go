package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/tlsutil"
)

// setupUpstreamTLS gives every route with upstream_tls its own transport
// (the connection pool of one upstream with its own CA bundle, client
// certificate and server name); the other routes share the default one.
func (g *Gateway) setupUpstreamTLS(cfg *config.Config) error {
	byName := map[string]*config.Route{}
	for i := range cfg.Routes {
		byName[cfg.Routes[i].Name] = &cfg.Routes[i]
	}
	for _, r := range g.router.routes {
		c := byName[r.name]
		if c == nil || c.UpstreamTLS == nil {
			continue
		}
		cl, err := tlsutil.NewClient(*c.UpstreamTLS, g.log)
		if err != nil {
			return fmt.Errorf("routes %s: upstream_tls: %w", r.name, err)
		}
		r.tls = cl
		r.transport.Store(g.upstreamTransport(cl))
	}
	return nil
}

func (g *Gateway) upstreamTransport(cl *tlsutil.Client) *http.Transport {
	tr := NewTransport(g.cfg)
	tr.TLSClientConfig = cl.TLSConfig()
	return tr
}

// WatchUpstreamTLS rebuilds a route's transport when its upstream_tls
// files change (a rotated client certificate or CA bundle), until ctx
// ends. Requests in flight finish on the old connections; new ones use
// the new configuration.
func (g *Gateway) WatchUpstreamTLS(ctx context.Context) error {
	for _, r := range g.router.routes {
		if r.tls == nil {
			continue
		}
		err := r.tls.Watch(ctx, func() {
			old := r.transport.Swap(g.upstreamTransport(r.tls))
			if old != nil {
				old.CloseIdleConnections()
			}
			g.log.Info("upstream TLS files reloaded", "route", r.name)
		})
		if err != nil {
			return fmt.Errorf("routes %s: upstream_tls: %w", r.name, err)
		}
	}
	return nil
}

// routeTransport sends each request through its route's transport, or
// the default one.
type routeTransport struct{ def http.RoundTripper }

func (t routeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c := callFrom(r.Context()); c != nil && c.route != nil {
		if tr := c.route.transport.Load(); tr != nil {
			return tr.RoundTrip(r)
		}
	}
	return t.def.RoundTrip(r)
}

// setUpstreamCredential replaces whatever credential the caller sent with
// the route's own: the caller's token never reaches such an upstream,
// even with identity.forward_credential.
func setUpstreamCredential(h http.Header, rt *route) {
	if rt.credHeader == "" {
		return
	}
	identity.StripCredentials(h)
	h.Set(rt.credHeader, rt.credValue)
}

// LogValue keeps a route's credential out of any log line that prints a
// route.
func (r *route) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", r.name), slog.String("upstream", r.upstream.Redacted()))
}
