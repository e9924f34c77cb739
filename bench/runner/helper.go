package runner

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/wardenhq/warden/bench/floor"
	"github.com/wardenhq/warden/bench/upstream"
)

// Helper runs one of the harness's helper processes when args name one
// ("upstream" or "floor") and reports whether it did. The runner starts
// them by re-executing its own binary, so every program that calls Run
// must call Helper first (package main and TestMain do).
//
//	upstream -listen ADDR -deltas N -pace D
//	floor -listen ADDR -upstream URL
func Helper(ctx context.Context, args []string) (bool, error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "upstream":
		return true, serveUpstream(ctx, args[1:])
	case "floor":
		return true, serveFloor(ctx, args[1:])
	}
	return false, nil
}

func listenAndServe(ctx context.Context, addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func serveUpstream(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:18000", "address to listen on")
	deltas := fs.Int("deltas", 20, "content deltas per SSE stream")
	pace := fs.Duration("pace", 10*time.Millisecond, "pause between deltas")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return listenAndServe(ctx, *addr, upstream.New(upstream.Options{StreamDeltas: *deltas, StreamPace: *pace}))
}

func serveFloor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:18080", "address to listen on")
	up := fs.String("upstream", "http://127.0.0.1:18000", "upstream base URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*up)
	if err != nil {
		return fmt.Errorf("floor: -upstream: %w", err)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	return listenAndServe(ctx, *addr, floor.New(u, 512))
}
