package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/tlsutil"
)

// Server runs the gateway listener and the admin listener.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	gw       *Gateway
	registry *prometheus.Registry
	adminMux *http.ServeMux
	admin    http.Handler // the admin API (internal/admin); nil: 404

	gwSrv, adminSrv *http.Server
	gwLn, adminLn   net.Listener
	tls             listenerTLS
	ready           atomic.Bool
	readyChecks     []readyCheck
}

// readyCheck is one named check /readyz runs.
type readyCheck struct {
	name string
	f    func(context.Context) error
}

// NewServer builds the gateway and admin servers from cfg. Call Mount to
// add admin endpoints before Start.
func NewServer(cfg *config.Config, log *slog.Logger, opts Options) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts.Registry = reg
	opts.Logger = log
	gw, err := New(cfg, opts)
	if err != nil {
		return nil, err
	}
	lt, err := loadListenerTLS(cfg, log)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, gw: gw, registry: reg, adminMux: http.NewServeMux(), tls: lt}
	s.adminMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	s.adminMux.HandleFunc("GET /readyz", s.readyz)
	if opts.Audit != nil {
		s.AddReadyCheck("audit", gw.AuditReady)
	}
	if opts.Approvals != nil {
		s.AddReadyCheck("approvals", gw.ApprovalReady)
	}
	s.AddReadyCheck("recordings", gw.RecordingReady)
	s.adminMux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.adminMux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.admin != nil {
			s.admin.ServeHTTP(w, r)
			return
		}
		apierr.WriteRequest(w, r, apierr.Errorf(apierr.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s, nil
}

// Gateway returns the data-path handler.
func (s *Server) Gateway() *Gateway { return s.gw }

// Registry returns the Prometheus registry shared by all components.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// SetAdmin installs the admin API (internal/admin) on the admin listener,
// behind the operations endpoints /healthz, /readyz and /metrics, which
// the server keeps: they report on the server itself and must answer
// whether or not an admin API is configured. Call it before Serve.
func (s *Server) SetAdmin(h http.Handler) { s.admin = h }

// AddReadyCheck adds a named check that /readyz runs, in the order
// added; an error makes it 503 not_ready with the name and the error in
// the message. A check must answer within the context's deadline (2 s)
// and should be cheap while healthy: probes run every time /readyz is
// asked.
func (s *Server) AddReadyCheck(name string, f func(context.Context) error) {
	s.readyChecks = append(s.readyChecks, readyCheck{name, f})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		apierr.WriteRequest(w, r, apierr.New(apierr.NotReady, "starting or shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	for _, c := range s.readyChecks {
		if err := c.f(ctx); err != nil {
			apierr.WriteRequest(w, r, apierr.New(apierr.NotReady, c.name+": "+err.Error()))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
}

// Listen binds both listeners (so callers learn the real addresses when a
// port is 0) without serving yet.
func (s *Server) Listen() error {
	var err error
	if s.gwLn, err = net.Listen("tcp", s.cfg.Listen); err != nil {
		return fmt.Errorf("gateway: listen %s: %w", s.cfg.Listen, err)
	}
	if n := s.cfg.Limits.MaxConnections; n > 0 {
		// Connections past the cap wait in the kernel's accept queue.
		s.gwLn = netutil.LimitListener(s.gwLn, n)
	}
	if s.adminLn, err = net.Listen("tcp", s.cfg.AdminListen); err != nil {
		s.gwLn.Close()
		return fmt.Errorf("gateway: admin listen %s: %w", s.cfg.AdminListen, err)
	}
	if n := s.cfg.Limits.AdminMaxConnections; n > 0 {
		// A cap of its own: console and report users cannot use up the
		// descriptors the data path needs, nor the gateway's cap.
		s.adminLn = netutil.LimitListener(s.adminLn, n)
	}
	return nil
}

// Addr returns the gateway listener's address (after Listen).
func (s *Server) Addr() string { return s.gwLn.Addr().String() }

// AdminAddr returns the admin listener's address (after Listen).
func (s *Server) AdminAddr() string { return s.adminLn.Addr().String() }

// URL is the gateway listener's base URL, http:// or https:// (after
// Listen).
func (s *Server) URL() string { return scheme(s.tls.gateway) + "://" + s.Addr() }

// AdminURL is the admin listener's base URL (after Listen).
func (s *Server) AdminURL() string { return scheme(s.tls.admin) + "://" + s.AdminAddr() }

// Serve serves both listeners until ctx is done, then shuts down
// gracefully: /readyz turns 503 and both listeners keep serving for
// timeouts.drain_delay; then new connections are refused, in-flight
// requests and streams get up to timeouts.shutdown to finish, then are
// cut.
func (s *Server) Serve(ctx context.Context) error {
	if s.gwLn == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	s.gwSrv = &http.Server{
		Handler:           s.gw,
		ReadHeaderTimeout: s.cfg.Timeouts.ReadHeader,
		IdleTimeout:       s.cfg.Timeouts.Idle,
		MaxHeaderBytes:    int(s.cfg.Limits.MaxHeaderBytes),
		ErrorLog:          errLog,
	}
	s.adminSrv = &http.Server{
		Handler:           s.tls.adminHandler(apierr.WithRequestID(s.adminMux)),
		ReadHeaderTimeout: s.cfg.Timeouts.ReadHeader,
		IdleTimeout:       s.cfg.Timeouts.Idle,
		ErrorLog:          errLog,
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := s.tls.watch(wctx); err != nil {
		return err
	}
	if err := s.gw.WatchUpstreamTLS(wctx); err != nil {
		return err
	}
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	for _, p := range []struct {
		srv *http.Server
		ln  net.Listener
		tls *tlsutil.Server
	}{{s.gwSrv, s.gwLn, s.tls.gateway}, {s.adminSrv, s.adminLn, s.tls.admin}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serveListener(p.srv, p.ln, p.tls); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	s.ready.Store(true)
	s.log.Info("warden listening", "gateway", s.URL(), "admin", s.AdminURL())
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	s.ready.Store(false)
	if d := s.cfg.Timeouts.DrainDelay; d > 0 && serveErr == nil {
		// /readyz answers 503 from now on; keep serving while the load
		// balancer (a Service's endpoints) learns it and stops sending.
		s.log.Info("shutting down: not ready, still serving", "drain_delay", d)
		select {
		case <-time.After(d):
		case serveErr = <-errc:
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Shutdown)
	defer cancel()
	s.log.Info("draining", "deadline", s.cfg.Timeouts.Shutdown)
	if err := s.gwSrv.Shutdown(sctx); err != nil {
		s.log.Warn("drain deadline reached; closing remaining connections", "err", err)
		s.gwSrv.Close()
	}
	_ = s.adminSrv.Shutdown(sctx)
	s.adminSrv.Close()
	wg.Wait()
	if err := s.gw.Drain(sctx); err != nil {
		s.log.Error("shutdown: some request.completed entries were not recorded in time; those requests stay incomplete in the log", "err", err)
	}
	return serveErr
}
