package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/policy"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/store/postgres"
	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness"
)

// app is the wired gateway: everything `warden serve` runs, reused by
// `warden demo` and by the end-to-end tests.
type app struct {
	cfg         *config.Config
	log         *slog.Logger
	server      *gateway.Server
	auth        *identity.Authenticator
	policy      *policy.Engine
	masks       *mask.Set
	audit       *audit.Log
	approvals   *approval.Service
	asserter    *identity.Asserter
	admin       *admin.Router
	recorder    *recording.Recorder
	witness     *witness.Submitter          // nil without audit.witnesses
	witnessStop func(context.Context) error // set by startWitnesses
	cosigs      witness.Store               // witness cosignatures; nil without witnesses
	export      *export.Service             // nil without export.sinks
	exportStop  func(context.Context) error // set by openExport
	closers     []func(context.Context) error
}

// newApp builds every component from cfg. Nothing listens yet. On error,
// whatever was opened is closed again.
func newApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (a *app, err error) {
	tuneGC()
	// Configuration mistakes are refused before anything is opened or
	// recorded: a failed start leaves no audit entry behind.
	if err := preflight(ctx, cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a = &app{cfg: cfg, log: log}
	// `return nil, err` sets a to nil before this runs: keep our own.
	self := a
	defer func() {
		if err != nil {
			self.close()
		}
	}()
	// Released last (closers run in reverse), after every store closed.
	a.closers = append(a.closers, func(context.Context) error { unlock(); return nil })
	opts := gateway.Options{}

	// The audit log comes first: everything after it may record to it.
	if cfg.Audit.On() {
		if err := a.openAudit(ctx); err != nil {
			return nil, err
		}
		opts.Audit = a.audit
		if c := cfg.Audit.Config; c.Store != "postgres" {
			// After a failed append, /readyz turns ready again only once
			// the store's disk takes a write (docs/deploy.md).
			opts.AuditWriteProbe = writeProbe(filepath.Dir(c.Path), c.Path, c.Path+"-wal", sqlite.FramesPath(c.Path))
		}
	} else {
		log.Warn("audit log disabled (audit.enabled: false): no evidence is recorded")
	}

	if cfg.Identity != nil {
		a.auth, err = identity.New(ctx, *cfg.Identity, cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		a.closers = append(a.closers, func(context.Context) error { return a.auth.Close() })
		opts.Auth = a.auth
		ac := a.auth.Config().Assertion
		asserter, err := identity.NewAsserter(ac.KeyFile, ac.Issuer, ac.TTL)
		if err != nil {
			return nil, fmt.Errorf("identity assertion key: %w", err)
		}
		opts.Asserter = asserter
		a.asserter = asserter
	} else {
		log.Warn("no identity section: requests are not authenticated (allow_anonymous: true)")
	}

	mcfg := mask.Config{}
	if cfg.Masking != nil {
		mcfg = *cfg.Masking
	}
	key, err := maskKey(cfg, mcfg.Key)
	if err != nil {
		return nil, err
	}
	if a.masks, err = mask.New(mcfg, key); err != nil {
		return nil, fmt.Errorf("masking: %w", err)
	}
	opts.Masks = a.masks

	if cfg.Policy != nil {
		if err := a.openPolicy(ctx); err != nil {
			return nil, err
		}
		opts.Policy = a.policy
		if a.audit != nil {
			if err := a.openApprovals(ctx); err != nil {
				return nil, err
			}
			opts.Approvals = a.approvals
		} else {
			log.Warn("approvals need the audit log: require_approval rules will refuse every request")
		}
	} else if cfg.Identity != nil {
		log.Warn("no policy section: every authenticated request is allowed")
	}

	if err := a.openRecordings(ctx); err != nil {
		return nil, err
	}
	opts.Recorder = a.recorder

	srv, err := gateway.NewServer(cfg, log, opts)
	if err != nil {
		return nil, err
	}
	a.server = srv
	if err := a.openExport(ctx); err != nil {
		return nil, err
	}
	if a.approvals != nil {
		srv.Registry().MustRegister(a.approvals.Collector())
	}
	if a.witness != nil {
		srv.Registry().MustRegister(a.witness.Collector())
	}
	if a.admin, err = a.newAdmin(ctx); err != nil {
		return nil, err
	}
	srv.SetAdmin(a.admin)
	return a, nil
}

// newAdmin builds the admin API over the components that exist. Without
// identity it has no authenticator, so it is closed.
func (a *app) newAdmin(ctx context.Context) (*admin.Router, error) {
	for _, d := range a.cfg.Admin.Deprecations() {
		a.log.Warn(d)
	}
	o := admin.Options{
		Config: a.cfg.Admin, Logger: a.log, Audit: a.audit, Policy: a.policy, Approvals: a.approvals,
		ReviewURLBase: a.cfg.Approvals.ReviewURLBase, Asserter: a.asserter, Recordings: a.recorder,
	}
	if a.export != nil {
		o.Export = a.export
	}
	if a.auth != nil {
		o.Authenticators = []admin.Authenticator{a.auth}
		o.Keys = a.auth.KeyStore()
	}
	if cc := a.cfg.Admin.Console; cc.Enabled() {
		con, err := newConsole(ctx, a, cc)
		if err != nil {
			return nil, err
		}
		o.Console = con
		// Browsers logged in to the console may follow its links to the
		// API's GET endpoints (the report download).
		o.Authenticators = append(o.Authenticators, con.Authenticator())
	}
	return admin.New(o), nil
}

// newConsole builds the web console from admin.console, reading the
// client secret file when one is configured, with its sessions in the
// audit log's database (see openSessions), and starts the session
// sweeper for the app's lifetime.
func newConsole(ctx context.Context, a *app, cc console.Config) (*console.Console, error) {
	if cc.ClientSecretFile != "" {
		b, err := os.ReadFile(cc.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("admin.console.client_secret_file: %w", err)
		}
		cc.ClientSecret = strings.TrimSpace(string(b))
	}
	st, err := a.openSessions(ctx)
	if err != nil {
		return nil, err
	}
	r := a.cfg.Admin.Roles
	o := console.Options{Config: cc, Roles: console.Roles{Auditor: r.Auditor, Approver: r.Approver, Admin: r.Admin},
		Audit: a.audit, Approvals: a.approvals, Policy: a.policy, Recordings: a.recorder, Sessions: st, Logger: a.log}
	if a.witness != nil && a.cosigs != nil {
		o.Witnessing = &console.Witnessing{Store: a.cosigs, Witnesses: a.witness.Verifiers()}
	}
	if a.export != nil { // a nil *export.Service must not become a non-nil interface
		o.Export = a.export
	}
	con, err := console.New(o)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); con.RunSweeper(sctx) }()
	// Stop the sweeper before the session store closes (closers run in
	// reverse).
	a.closers = append(a.closers, func(context.Context) error { cancel(); <-done; return nil })
	return con, nil
}

// openSessions opens the console's session store in the audit log's
// database: the console_sessions table beside the audit tables in
// PostgreSQL (shared by replicas), or console-sessions.db in the data
// directory. Without an audit log the sessions stay in memory (a restart
// logs everyone out).
func (a *app) openSessions(ctx context.Context) (console.SessionStore, error) {
	switch {
	case !a.cfg.Audit.On():
		a.log.Warn("console sessions are kept in memory (audit.enabled: false): a restart logs everyone out")
		return nil, nil
	case a.cfg.Audit.Store == "postgres":
		s, err := postgres.OpenSessions(ctx, a.cfg.Audit.PostgresConfig())
		if err != nil {
			return nil, a.cfg.KeyError("audit.dsn", fmt.Errorf("console session store: %w", err))
		}
		a.closers = append(a.closers, func(context.Context) error { return s.Close() })
		return s, nil
	default:
		s, err := sqlite.OpenSessions(ctx, filepath.Join(a.cfg.DataDir, "console-sessions.db"))
		if err != nil {
			return nil, fmt.Errorf("console session store: %w", err)
		}
		a.closers = append(a.closers, func(context.Context) error { return s.Close() })
		return s, nil
	}
}

// openApprovals opens the approval store next to the audit store (the
// same PostgreSQL, or approvals.db beside audit.db) and starts the
// service's background work (expiry sweeper, cross-replica wake-ups,
// webhooks) for the lifetime of ctx.
func (a *app) openApprovals(ctx context.Context) error {
	var st approval.Store
	if a.cfg.Audit.Store == "postgres" {
		s, err := postgres.OpenApprovals(ctx, a.cfg.Audit.PostgresConfig(), a.log)
		if err != nil {
			return a.cfg.KeyError("audit.dsn", fmt.Errorf("approval store: %w", err))
		}
		st = s
		a.closers = append(a.closers, func(context.Context) error { return s.Close() })
	} else {
		s, err := sqlite.OpenApprovals(ctx, a.cfg.Approvals.Path)
		if err != nil {
			return fmt.Errorf("approval store: %w", err)
		}
		st = s
		a.closers = append(a.closers, func(context.Context) error { return s.Close() })
	}
	a.approvals = approval.New(st, a.audit, approval.WithConfig(a.cfg.Approvals),
		approval.WithInstance(a.cfg.Instance), approval.WithLogger(a.log))
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.approvals.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("approval service stopped", "err", err)
		}
	}()
	// Stop the service before its store closes (closers run in reverse).
	a.closers = append(a.closers, func(context.Context) error { cancel(); <-done; return nil })
	return nil
}

func (a *app) openAudit(ctx context.Context) error {
	c := a.cfg.Audit.Config
	var st audit.Store
	switch c.Store {
	case "postgres":
		s, err := postgres.OpenConfig(ctx, a.cfg.Audit.PostgresConfig(), postgres.WithLogger(a.log))
		if err != nil {
			return a.cfg.KeyError("audit.dsn", fmt.Errorf("audit store: %w", err))
		}
		st = s
	default:
		s, err := sqlite.Open(ctx, c.Path)
		if err != nil {
			return fmt.Errorf("audit store %s: %w", c.Path, err)
		}
		st = s
	}
	a.closers = append(a.closers, func(context.Context) error { return st.Close() })
	// The exporter stops after the log's Close (closers run in reverse),
	// so the final checkpoint is exported too, and before the store closes.
	a.closers = append(a.closers, func(ctx context.Context) error {
		if a.exportStop != nil {
			return a.exportStop(ctx)
		}
		return nil
	})
	signer, verifier, err := audit.LoadOrCreateKeys(c.SigningKeyFile, c.KeyName)
	if err != nil {
		return fmt.Errorf("audit signing key: %w", err)
	}
	// Witnesses are asked before the log appends anything (witness.go).
	startDetails, err := a.openWitnesses(ctx, st, signer, verifier)
	if err != nil {
		return err
	}
	// Runs after the log's Close (closers run in reverse), so the final
	// checkpoint is submitted too.
	a.closers = append(a.closers, func(ctx context.Context) error {
		if a.witnessStop != nil {
			return a.witnessStop(ctx)
		}
		return nil
	})
	opts := []audit.Option{audit.WithLogger(a.log), audit.WithInstance(a.cfg.Instance)}
	if startDetails != nil {
		opts = append(opts, audit.WithStartDetails(startDetails))
	}
	l, err := audit.Open(ctx, st, c, signer, verifier, opts...)
	if err != nil {
		return fmt.Errorf("audit store %s: %w", a.storeName(), err)
	}
	a.audit = l
	a.closers = append(a.closers, l.Close)
	a.startWitnesses()
	return nil
}

// storeName names the audit store in messages: its file, or the config
// key of the PostgreSQL DSN (never the DSN, which may hold a password).
func (a *app) storeName() string {
	if a.cfg.Audit.Store == "postgres" {
		return "in PostgreSQL (audit.dsn)"
	}
	return a.cfg.Audit.Path
}

func (a *app) openPolicy(ctx context.Context) error {
	pc := a.cfg.Policy
	// A policy naming a masking profile that does not exist is refused at
	// start and on reload (the previous policy stays in force).
	check := func(p *policy.Policy) error { return checkMaskProfiles(p, a.masks) }
	eng, err := policy.NewEngine(pc.File, policy.WithDebounce(pc.Debounce), policy.WithLogger(a.log), policy.WithCheck(check))
	if err != nil {
		return policyLoadError(a.cfg, err)
	}
	a.policy = eng
	eng.OnChange(a.policyChanged)
	eng.ReloadOnSignal(ctx) // SIGHUP
	if pc.WatchEnabled() {
		if err := eng.Watch(ctx); err != nil {
			return fmt.Errorf("policy: watch %s: %w", pc.File, err)
		}
	}
	a.log.Info("policy loaded", "file", pc.File, "version", eng.Current().Version())
	return nil
}

// policyChanged records every policy reload (or failed reload) in the
// audit log as config.changed. The engine logs the reload itself (one
// line per reload).
func (a *app) policyChanged(ch policy.Change) {
	if a.audit == nil {
		return
	}
	details := map[string]any{"what": "policy", "file": a.cfg.Policy.File, "old_version": ch.Old, "new_version": ch.New, "actor": ch.Actor}
	if ch.Err != nil {
		details["error"] = ch.Err.Error()
		details["applied"] = false
	} else {
		details["applied"] = true
		policySources(details, ch)
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Audit.WriteTimeout)
	defer cancel()
	if _, err := a.audit.Append(ctx, &audit.Entry{Kind: audit.KindConfigChanged, Time: ch.At, Details: details}); err != nil {
		a.log.Error("audit: could not record config.changed", "err", err)
	}
}

// maxPolicySource bounds each canonical policy text a config.changed
// entry carries (two of them, escaped, stay well under
// audit.MaxEntrySize); a larger policy is recorded by its hash only.
const maxPolicySource = 128 << 10

// policySources puts the canonical texts of the old and new policy into
// an applied change's details (decision 021): sha256 of each is its
// version, so the report and the console diff versions from the log
// alone.
func policySources(details map[string]any, ch policy.Change) {
	for _, s := range []struct {
		key, omitted string
		p            *policy.Policy
	}{{"old_policy_source", "old_policy_source_omitted", ch.OldPolicy}, {"policy_source", "policy_source_omitted", ch.NewPolicy}} {
		if s.p == nil {
			continue
		}
		if b := s.p.Canonical(); len(b) <= maxPolicySource {
			details[s.key] = string(b)
		} else {
			details[s.omitted] = fmt.Sprintf("canonical policy of %d bytes, above the %d-byte limit: recorded by its hash only", len(b), maxPolicySource)
		}
	}
}

// maskKey returns the HMAC key for masking fingerprints: the configured
// one, or a random key generated once and kept in the data dir, so that
// stable tokens stay stable across restarts.
func maskKey(cfg *config.Config, configured string) ([]byte, error) {
	if configured != "" {
		if len(configured) < 16 {
			return nil, errors.New("masking.key must be at least 16 characters")
		}
		return []byte(configured), nil
	}
	path := filepath.Join(cfg.DataDir, "keys", "mask.key")
	if b, err := os.ReadFile(path); err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) < 16 {
			return nil, fmt.Errorf("masking key %s is corrupt", path)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("masking key: %w", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("masking key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("masking key: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(k) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("masking key: %w", err)
	}
	return k, nil
}

// run listens (if not yet) and serves until ctx ends, then shuts down.
func (a *app) run(ctx context.Context) error {
	err := a.server.Serve(ctx)
	a.close()
	if err != nil {
		a.log.Error("warden stopped", "err", err)
	} else {
		a.log.Info("warden stopped")
	}
	return err
}

func (a *app) close() {
	timeout := a.cfg.Timeouts.Shutdown
	cctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](cctx); err != nil {
			a.log.Error("shutdown", "err", err)
		}
	}
	a.closers = nil
}
