package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/recording"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served on the admin listener.
const Prefix = "/ui/"

// Config is the `admin.console:` section.
//
//	admin:
//	  console:
//	    issuer: https://idp.example.com      # OIDC issuer for browser login
//	    client_id: warden-console
//	    client_secret_file: /etc/warden/console-secret   # optional: public client with PKCE when empty
//	    public_url: https://warden-admin.example.com     # where browsers reach the admin listener
//	    idle_timeout: 30m
//	    absolute_timeout: 8h
type Config struct {
	// Issuer is the OpenID provider browsers log in at (discovery at
	// Issuer/.well-known/openid-configuration). Empty: the console is off.
	Issuer string `yaml:"issuer"`
	// ClientID is the console's OAuth client id at the issuer; its ID
	// tokens must carry it as audience. Default "warden-console".
	ClientID string `yaml:"client_id"`
	// ClientSecret is read from ClientSecretFile; empty means a public
	// client (PKCE only).
	ClientSecret     string `yaml:"-"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// PublicURL is the admin listener's URL as browsers see it; the
	// redirect URI is PublicURL + "/ui/callback". Cookies are Secure when
	// it is https (or the request came over TLS).
	PublicURL string `yaml:"public_url"`
	// GroupsClaim is the ID token claim holding the groups. Default
	// "groups".
	GroupsClaim string `yaml:"groups_claim"`
	// IdleTimeout ends a session unused this long. Default 30m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// AbsoluteTimeout ends a session this long after login, used or not.
	// Default 8h.
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
}

// SetDefaults fills the defaults.
func (c *Config) SetDefaults() {
	if c.ClientID == "" {
		c.ClientID = "warden-console"
	}
	if c.GroupsClaim == "" {
		c.GroupsClaim = "groups"
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.AbsoluteTimeout <= 0 {
		c.AbsoluteTimeout = 8 * time.Hour
	}
}

// Enabled reports whether the console is configured.
func (c *Config) Enabled() bool { return c.Issuer != "" }

// Roles lists the groups holding each role, as admin.roles does. A nil
// Approver means no group beyond a request's own reviewer groups.
type Roles struct{ Auditor, Approver, Admin []string }

// Options are what the console serves.
type Options struct {
	// Config is admin.console.
	Config Config
	// Roles are admin.roles.
	Roles Roles
	// Audit backs the evidence pages and the overview (nil: they answer
	// 503).
	Audit *audit.Log
	// Approvals backs the inbox (nil: it answers 503).
	Approvals *approval.Service
	// Policy backs the policy page (nil: it answers 503).
	Policy *policy.Engine
	// Sessions keeps the sessions server-side (the SQLite or PostgreSQL
	// store of the audit log's database); nil: in memory, lost on restart
	// and not shared by replicas.
	Sessions SessionStore
	// Recordings backs the replay player on the request page (nil: no
	// recordings are shown).
	Recordings *recording.Recorder
	// Witnessing reads the witnesses' cosignatures for the request page
	// and the overview (nil: "no witness configured").
	Witnessing *Witnessing
	// Export reports the SIEM export's lag on the overview (nil: export
	// is not configured).
	Export ExportStatus
	// Logger receives failures; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Console serves the pages under Prefix.
type Console struct {
	o     Options
	log   *slog.Logger
	tmpl  map[string]*template.Template
	sess  *sessions
	login *loginFlow
	mux   *http.ServeMux
}

// New builds the console. It fails when the configuration is incomplete
// or a template does not parse.
func New(o Options) (*Console, error) {
	o.Config.SetDefaults()
	if !o.Config.Enabled() {
		return nil, errors.New("console: admin.console.issuer is not set")
	}
	if o.Config.PublicURL == "" {
		return nil, errors.New("console: admin.console.public_url is not set")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{o: o, log: o.Logger, tmpl: map[string]*template.Template{}, mux: http.NewServeMux()}
	c.sess = newSessions(o.Sessions, o.Config.IdleTimeout, o.Config.AbsoluteTimeout, o.Now, o.Logger)
	c.login = newLoginFlow(o.Config, o.Now)
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /ui/login", c.loginStart)
	c.mux.HandleFunc("GET /ui/callback", c.callback)
	c.mux.HandleFunc("POST /ui/logout", c.logout)
	c.mux.Handle("GET /ui/{$}", c.page("auditor", c.overview))
	c.mux.Handle("GET /ui/search", c.page("auditor", c.search))
	c.mux.Handle("GET /ui/search.csv", c.page("auditor", c.exportCSV))
	c.mux.Handle("GET /ui/search.jsonl", c.page("auditor", c.exportJSONL))
	c.mux.Handle("GET /ui/entry/{seq}", c.page("auditor", c.entry))
	c.mux.Handle("GET /ui/request/{id}", c.page("auditor", c.requestEntry))
	c.mux.Handle("GET /ui/approvals", c.page("", c.approvals))
	c.mux.Handle("GET /ui/report", c.page("auditor", c.report))
	c.mux.Handle("GET /ui/policy", c.page("auditor", c.policyPage))
	c.mux.Handle("POST /ui/approvals/{id}/{verdict}", c.page("", c.review))
	c.mux.Handle("POST /ui/grants/{id}/revoke", c.page("", c.revoke))
	c.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, nil, http.StatusNotFound, "No such page.")
	})
	return c, nil
}

// csp is the Content-Security-Policy of every console answer: nothing
// inline, nothing from elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(w, r)
}

// report offers the evidence report of a period (by default the last
// 30 days); the form submits to the admin API's GET /v1/report, which
// accepts the console session (see Authenticator).
func (c *Console) report(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	to := c.o.Now().UTC().AddDate(0, 0, 1)
	c.render(w, r, http.StatusOK, "report", p, struct{ From, To string }{to.AddDate(0, 0, -30).Format(time.DateOnly), to.Format(time.DateOnly)})
}

// Sessions is the number of stored sessions (for tests and metrics);
// -1 when the store cannot be read.
func (c *Console) Sessions() int { return c.sess.len() }

// SweepInterval is how often RunSweeper removes expired sessions.
const SweepInterval = time.Minute

// RunSweeper removes expired sessions from the store every
// SweepInterval until ctx ends. Reads already refuse an expired session;
// the sweeper keeps the table from growing with sessions nobody ended.
func (c *Console) RunSweeper(ctx context.Context) {
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := c.sess.sweep(ctx); err != nil {
				if ctx.Err() == nil {
					c.log.Error("console: sweep sessions", "err", err)
				}
			} else if n > 0 {
				c.log.Debug("console: swept expired sessions", "count", n)
			}
		}
	}
}

// pageFunc serves one page for a logged-in principal.
type pageFunc func(w http.ResponseWriter, r *http.Request, p *identity.Principal)

// page wraps a pageFunc with the session check (redirect to the login
// when there is none) and the role check (a 403 page).
func (c *Console) page(role string, f pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := c.principal(r)
		if p == nil {
			if r.Method != http.MethodGet {
				c.errorPage(w, r, nil, http.StatusUnauthorized, "Your session has ended; log in again.")
				return
			}
			http.Redirect(w, r, "/ui/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !c.hasRole(p, role) {
			c.errorPage(w, r, p, http.StatusForbidden, fmt.Sprintf("This page needs the %s role, which none of your groups holds.", role))
			return
		}
		f(w, r, p)
	})
}

// hasRole answers whether p holds role ("" needs none).
func (c *Console) hasRole(p *identity.Principal, role string) bool {
	var gs []string
	switch role {
	case "":
		return true
	case "auditor":
		gs = c.o.Roles.Auditor
	case "approver":
		if c.o.Roles.Approver == nil {
			return true
		}
		gs = c.o.Roles.Approver
	case "admin":
		gs = c.o.Roles.Admin
	}
	return slices.ContainsFunc(p.Groups, func(g string) bool { return slices.Contains(gs, g) })
}

// Authenticator returns the console's sessions as an authenticator of
// the admin API (admin.Authenticator): a browser logged in to the
// console may then follow links to the JSON API's GET endpoints (the
// report download) with its role checked as for a bearer token. Unsafe
// methods stay behind the router's cross-origin protection, which runs
// before authentication.
func (c *Console) Authenticator() SessionAuthenticator { return SessionAuthenticator{c} }

// SessionAuthenticator verifies the console's session cookie.
type SessionAuthenticator struct{ c *Console }

// Authenticate returns the session's principal. Without a cookie, or
// with one of an ended session, it reports "no credential" (an
// *identity.Error without a code), so the next authenticator is tried
// and the caller finally gets 401.
func (a SessionAuthenticator) Authenticate(r *http.Request) (*identity.Principal, error) {
	p := a.c.principal(r)
	if p == nil {
		return nil, &identity.Error{Status: http.StatusUnauthorized}
	}
	cp := *p
	return &cp, nil
}

// principal returns the caller's session principal, or nil.
func (c *Console) principal(r *http.Request) *identity.Principal {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	// The inbox's background polling (htmx sends HX-Request) must not
	// keep an unattended session alive: only what a person does counts
	// as activity for the idle timeout.
	return c.sess.get(r.Context(), ck.Value, r.Header.Get("HX-Request") == "")
}
