package admin

import (
	"log/slog"
	"net/http"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/recording"
)

// Options are what the admin API serves. A nil service leaves its
// endpoints out.
type Options struct {
	// Config assigns the roles.
	Config Config
	// Authenticators verify callers, tried in order (see Authenticator).
	// Empty: the admin API is closed — every endpoint but the public
	// ones answers 401.
	Authenticators []Authenticator
	// Logger receives the request log and failures; nil: slog.Default().
	Logger *slog.Logger

	// Audit serves /v1/audit/ and the policy history, and records API
	// key changes.
	Audit *audit.Log
	// Policy serves /v1/policy and its reload, and resolves approval
	// settings.
	Policy *policy.Engine
	// Approvals serves /v1/approvals and /v1/grants.
	Approvals *approval.Service
	// ReviewURLBase is the base of review links when the approval
	// service has none configured (approvals.review_url_base).
	ReviewURLBase string
	// Keys serves /v1/keys (nil: API keys are disabled).
	Keys *identity.FileKeyStore
	// Asserter's public keys are published at identity.JWKSPath.
	Asserter *identity.Asserter
	// Recordings serves /v1/recordings (verification, content for
	// replay, erasure).
	Recordings *recording.Recorder
	// Console serves the web console under /ui/ (nil: no console). It
	// authenticates its own browser sessions, so the route is public to
	// the router; the router's cross-origin protection still runs first.
	Console http.Handler
	// Export serves /v1/export/status (nil: export is not configured).
	Export ExportStatus
}

// New builds the admin API from o.
//
// Each area of the API is a file of this package with a function that
// returns its routes, plugged in below with one line. That is how the
// endpoints still to come join it — recording replay, export status,
// the ISO 27001 report — and the web console, as one Route with Path
// "/ui/" and a Handler serving its own pages, with browser sessions as
// one more Authenticator in Options.Authenticators (see Authenticator).
// Routes then appear in docs/admin-api.md and must be added to the
// table of TestEveryEndpoint, which fails until they are.
func New(o Options) *Router {
	rt := newRouter(o.Authenticators, roleGroups{cfg: o.Config.Roles}, o.Logger)
	if o.Asserter != nil {
		rt.Handle(jwksRoutes(o.Asserter)...)
	}
	if o.Audit != nil {
		rt.Handle(auditRoutes(o.Audit)...)
		rt.Handle(countRoutes(o.Audit)...)
		rt.Handle(reportRoutes(o.Audit)...)
	}
	if o.Policy != nil {
		rt.Handle(policyRoutes(o.Policy, o.Audit)...)
	}
	if o.Approvals != nil {
		rt.Handle(approvalRoutes(o.Approvals, settingLookup(o.Policy), o.ReviewURLBase)...)
	}
	if o.Keys != nil {
		rt.Handle(keyRoutes(o.Keys, o.Audit)...)
	}
	if o.Recordings != nil {
		rt.Handle(recordingRoutes(o.Recordings, o.Audit)...)
	}
	if o.Console != nil {
		rt.Handle(Route{Path: "/ui/", Role: Public, Handler: o.Console,
			Summary: "The web console (HTML pages; browser login through admin.console.issuer, see docs/console.md)"})
	}
	if o.Export != nil {
		rt.Handle(exportRoutes(o.Export)...)
	}
	return rt
}

// settingLookup resolves approval settings against the policy in force.
func settingLookup(eng *policy.Engine) SettingLookup {
	return func(name string) (*policy.ApprovalSetting, bool) {
		if eng == nil {
			return nil, false
		}
		s, ok := eng.Current().Approvals()[name]
		return s, ok
	}
}
