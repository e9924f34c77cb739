package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/gateway"
)

// app is the wired gateway: everything `warden serve` runs, reused by
// `warden demo` and by the end-to-end tests.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	server  *gateway.Server
	closers []func(context.Context) error
}

// newApp builds every component from cfg. Nothing listens yet.
func newApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	srv, err := gateway.NewServer(cfg, log, gateway.Options{})
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, server: srv}
	return a, nil
}

// run listens (if not yet) and serves until ctx ends, then shuts down.
func (a *app) run(ctx context.Context) error {
	err := a.server.Serve(ctx)
	a.close()
	return err
}

func (a *app) close() {
	cctx, cancel := context.WithTimeout(context.Background(), a.cfg.Timeouts.Shutdown)
	defer cancel()
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](cctx); err != nil {
			a.log.Error("shutdown", "err", err)
		}
	}
	a.closers = nil
}
