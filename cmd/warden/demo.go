package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/examples"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/devstack"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

type demoFlags struct {
	gatewayAddr, adminAddr, issuerAddr, modelAddr, dataDir string
	logFormat, logLevel                                    string
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run Warden with a demo identity provider and a demo model server, all on loopback",
		Long: `demo starts, with no configuration and no other software:
  - the Warden gateway and its admin listener,
  - a demo OpenID Connect issuer (users alice, bob, carol, dave, indexer; secret "demo"),
  - a demo OpenAI-compatible model server whose answers contain fake PII,
and prints curl commands that exercise everything Warden does. Ctrl-C stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.gatewayAddr, "gateway-addr", "127.0.0.1:8080", "gateway listen address")
	fl.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:9090", "admin listen address")
	fl.StringVar(&f.issuerAddr, "issuer-addr", "127.0.0.1:9091", "demo OIDC issuer listen address")
	fl.StringVar(&f.modelAddr, "model-addr", "127.0.0.1:9092", "demo model server listen address")
	fl.StringVar(&f.dataDir, "data-dir", "./warden-data", "data directory (audit log, keys)")
	addLogFlags(cmd, &f.logFormat, &f.logLevel)
	return cmd
}

// demoStack is what runDemo started, for printing and tests.
type demoStack struct {
	gatewayURL, adminURL, issuerURL, modelURL string
	dataDir, policyFile, warden               string
}

func runDemo(ctx context.Context, f demoFlags, stdout, stderr io.Writer) error {
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(log) // as serve: every component writes through it
	issuerLn, err := net.Listen("tcp", f.issuerAddr)
	if err != nil {
		return fmt.Errorf("demo issuer: %w (choose another with --issuer-addr)", err)
	}
	modelLn, err := net.Listen("tcp", f.modelAddr)
	if err != nil {
		issuerLn.Close()
		return fmt.Errorf("demo model server: %w (choose another with --model-addr)", err)
	}
	st := demoStack{
		issuerURL: "http://" + issuerLn.Addr().String(),
		modelURL:  "http://" + modelLn.Addr().String(),
	}
	issuer, err := devstack.NewIssuer(st.issuerURL)
	if err != nil {
		return err
	}
	model := devstack.NewModelServer()
	side := []*http.Server{
		{Handler: issuer.Handler(), ReadHeaderTimeout: 10 * time.Second},
		{Handler: model.Handler(), ReadHeaderTimeout: 10 * time.Second},
	}
	go func() { _ = side[0].Serve(issuerLn) }()
	go func() { _ = side[1].Serve(modelLn) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range side {
			_ = s.Shutdown(sctx)
		}
	}()

	// Resolve ":0" now, so the review links and printed URLs are real.
	if f.gatewayAddr, err = resolveAddr(f.gatewayAddr); err != nil {
		return fmt.Errorf("%w (choose another with --gateway-addr)", err)
	}
	if f.adminAddr, err = resolveAddr(f.adminAddr); err != nil {
		return fmt.Errorf("%w (choose another with --admin-addr)", err)
	}
	st.adminURL = "http://" + f.adminAddr
	cfg, err := demoConfig(f, st)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := a.server.Listen(); err != nil {
		a.close()
		return fmt.Errorf("%w (choose other addresses with --gateway-addr/--admin-addr)", err)
	}
	st.gatewayURL = "http://" + a.server.Addr()
	st.adminURL = "http://" + a.server.AdminAddr()
	st.dataDir, _ = filepath.Abs(cfg.DataDir)
	st.policyFile, _ = filepath.Abs(cfg.Policy.File)
	st.warden = wardenCommand()
	printDemo(stdout, st)
	err = a.run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	fmt.Fprintln(stdout, "warden demo stopped.")
	return err
}

// demoConfig is the configuration `warden demo` runs: the same structure
// as a warden.yaml (see examples/warden.yaml). The demo policy is written
// to the data dir on first start (and then left alone, so that edits are
// kept and hot-reloaded).
func demoConfig(f demoFlags, st demoStack) (*config.Config, error) {
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return nil, err
	}
	policyFile := filepath.Join(f.dataDir, "policy.yaml")
	if _, err := os.Stat(policyFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policyFile, examples.DemoPolicy, 0o600); err != nil {
			return nil, err
		}
	}
	cfg := &config.Config{
		Listen:      f.gatewayAddr,
		AdminListen: f.adminAddr,
		DataDir:     f.dataDir,
		Instance:    "demo",
		Routes: []config.Route{
			{Name: "openai", PathPrefix: "/v1/", Upstream: st.modelURL, Profile: config.ProfileOpenAI},
			{Name: "admin", PathPrefix: "/admin/", Upstream: st.modelURL, Profile: config.ProfileGeneric},
		},
		Identity: &identity.Config{
			Issuers: []identity.IssuerConfig{{Issuer: st.issuerURL, Audiences: []string{devstack.DemoAudience}}},
		},
		Policy: &policy.Config{File: policyFile},
	}
	cfg.Approvals.ReviewURLBase = st.adminURL
	// The console logs in at the demo issuer; in the demo, approvers may
	// also read the evidence, so that bob can follow his approvals.
	cfg.Admin.Console = console.Config{Issuer: st.issuerURL, ClientID: devstack.ConsoleClientID, PublicURL: st.adminURL}
	cfg.Admin.Roles.Auditor = []string{"ml-admins", "auditors", "ml-approvers"}
	cfg.SetDefaults()
	cfg.Timeouts.Shutdown = 5 * time.Second
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	return cfg, nil
}

// resolveAddr turns a port-0 address into a concrete free one.
func resolveAddr(addr string) (string, error) {
	if !strings.HasSuffix(addr, ":0") {
		return addr, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// wardenCommand is how to invoke this binary in printed examples: its
// path, or "go run ./cmd/warden" when it was started by go run (whose
// binary lives in a temporary build directory).
func wardenCommand() string {
	exe, err := os.Executable()
	if err != nil || strings.Contains(exe, "go-build") {
		return "go run ./cmd/warden"
	}
	return exe
}
