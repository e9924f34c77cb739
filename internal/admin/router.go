package admin

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
)

// HandlerFunc serves one admin endpoint. It writes a successful answer
// itself (usually with writeJSON) or returns an error, which the router
// answers in the one error shape: an *apierr.Error as it says, anything
// else as 500 internal_error (logged with the request id, never sent).
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Param documents one parameter of an endpoint.
type Param struct {
	// Name is the parameter's name; In is "path", "query" or "body".
	Name, In string
	// Doc says what it means, its format and default.
	Doc string
}

// Route is one admin endpoint: what the router serves, who may call it,
// and what docs/admin-api.md says about it (generated from the routes,
// so it cannot drift).
type Route struct {
	// Method is GET or POST ("" with Handler: every method).
	Method string
	// Path is a net/http ServeMux path pattern, e.g.
	// /v1/approvals/{id}/approve; a trailing slash serves a subtree
	// (the console under /ui/).
	Path string
	// Role is who may call it.
	Role Role
	// Summary is one line for the reference.
	Summary string
	// Params are the parameters, for the reference.
	Params []Param
	// Reply describes the successful answer, for the reference.
	Reply string
	// Errors are the error codes the endpoint itself may answer, besides
	// those of its role (401 and 403) and of every endpoint (404 for a
	// wrong path, 405, 500).
	Errors []apierr.Code
	// Handle serves the endpoint; or, for a subtree that routes itself,
	// Handler does (its errors are its own to write, with WriteError).
	Handle  HandlerFunc
	Handler http.Handler
}

// key is the route's identity in tables: "GET /v1/grants".
func (rt Route) key() string { return strings.TrimSpace(rt.Method + " " + rt.Path) }

// Router serves the admin API: every endpoint of the admin listener
// except the gateway server's own /healthz, /readyz and /metrics.
//
// For each request it, in this order: gives it a request id
// (X-Request-Id, and request_id in every error body); refuses
// cross-origin browser requests with unsafe methods; finds the route
// (404, 405); authenticates the caller with the configured
// Authenticators (401) unless the route is Public; checks the route's
// role (403); runs the handler; writes any error in the one shape; and
// logs the request (method, path, status, caller, duration).
type Router struct {
	auths  []Authenticator
	roles  roleGroups
	log    *slog.Logger
	routes []Route
	mux    *http.ServeMux
	paths  map[string]*pathRoutes
	cop    *http.CrossOriginProtection
	h      http.Handler
}

// pathRoutes are the routes sharing one path pattern, by method.
type pathRoutes struct {
	rt       *Router
	byMethod map[string]*Route
	any      *Route
}

// newRouter returns an empty router.
func newRouter(auths []Authenticator, roles roleGroups, log *slog.Logger) *Router {
	if log == nil {
		log = slog.Default()
	}
	rt := &Router{auths: auths, roles: roles, log: log, mux: http.NewServeMux(), paths: map[string]*pathRoutes{}}
	rt.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, apierr.Errorf(apierr.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	rt.cop = http.NewCrossOriginProtection()
	rt.h = apierr.WithRequestID(http.HandlerFunc(rt.serve))
	return rt
}

// Handle adds routes. It is how every area of the admin API plugs in —
// one call per area (see New) — and panics on a route that is malformed
// or registered twice, which is a programming error found at start-up.
func (rt *Router) Handle(routes ...Route) {
	for _, r := range routes {
		if !strings.HasPrefix(r.Path, "/") || (r.Handle == nil) == (r.Handler == nil) || r.Role == "" || r.Summary == "" ||
			(r.Method == "" && r.Handler == nil) {
			panic(fmt.Sprintf("admin: malformed route %q", r.key()))
		}
		pr := rt.paths[r.Path]
		if pr == nil {
			pr = &pathRoutes{rt: rt, byMethod: map[string]*Route{}}
			rt.paths[r.Path] = pr
			rt.mux.Handle(r.Path, pr)
		}
		rc := r
		switch {
		case r.Method == "":
			if pr.any != nil || len(pr.byMethod) > 0 {
				panic("admin: route registered twice: " + r.key())
			}
			pr.any = &rc
		case pr.byMethod[r.Method] != nil || pr.any != nil:
			panic("admin: route registered twice: " + r.key())
		default:
			pr.byMethod[r.Method] = &rc
		}
		rt.routes = append(rt.routes, rc)
	}
}

// Routes returns the registered routes, sorted by path and method.
func (rt *Router) Routes() []Route {
	out := slices.Clone(rt.routes)
	slices.SortFunc(out, func(a, b Route) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return out
}

// ServeHTTP implements http.Handler.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.h.ServeHTTP(w, r) }

type routeKey struct{}

// serve runs under the request id.
func (rt *Router) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			rt.log.Error("admin: handler panicked", "request_id", apierr.RequestIDFrom(r.Context()), "method", r.Method,
				"path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if sw.status == 0 {
				WriteError(sw, r, apierr.New(apierr.Internal, ""))
			}
		}
		rt.log.Info("admin request", "request_id", apierr.RequestIDFrom(r.Context()), "method", r.Method,
			"path", r.URL.Path, "status", sw.code(), "subject", sw.subject, "duration", time.Since(start))
	}()
	if err := rt.cop.Check(r); err != nil {
		WriteError(sw, r, apierr.New(apierr.Forbidden, "cross-origin request refused"))
		return
	}
	rt.mux.ServeHTTP(sw, r)
}

// ServeHTTP dispatches by method, then authenticates, checks the role
// and runs the route.
func (pr *pathRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := pr.rt
	route := pr.any
	if route == nil {
		m := r.Method
		if m == http.MethodHead {
			m = http.MethodGet
		}
		route = pr.byMethod[m]
	}
	if route == nil {
		allow := make([]string, 0, len(pr.byMethod))
		for m := range pr.byMethod {
			allow = append(allow, m)
		}
		slices.Sort(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteError(w, r, apierr.Errorf(apierr.MethodNotAllowed, "%s %s is not allowed; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	if route.Role != Public {
		p, aerr := authenticate(rt.auths, r)
		if aerr != nil {
			WriteError(w, r, aerr)
			return
		}
		if sw, ok := w.(*statusWriter); ok {
			sw.subject = p.Subject
		}
		if aerr := rt.roles.check(p, route.Role); aerr != nil {
			WriteError(w, r, aerr)
			return
		}
		r = r.WithContext(withPrincipal(r.Context(), p))
	}
	if route.Handler != nil {
		route.Handler.ServeHTTP(w, r)
		return
	}
	if err := route.Handle(w, r); err != nil {
		if apierr.CodeOf(err).Status() >= 500 {
			rt.log.Error("admin: request failed", "request_id", apierr.RequestIDFrom(r.Context()), "method", r.Method,
				"path", r.URL.Path, "err", err)
		}
		WriteError(w, r, err)
	}
}

// WriteError answers r with err in the one error shape, with r's request
// id. Handlers of subtrees (Route.Handler) use it for their errors.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	apierr.WriteRequest(w, r, err)
}

// statusWriter records the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status  int
	subject string
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
