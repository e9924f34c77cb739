package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/config"
)

func newServeCmd() *cobra.Command {
	var cfgPath, logFormat, logLevel string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the gateway and the admin listener",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return err
			}
			// Components that fall back to slog.Default() (and the standard
			// log package, e.g. net/http's own errors) write through the
			// configured handler too: one format on stderr.
			slog.SetDefault(log)
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			a, err := newApp(ctx, cfg, log)
			if err != nil {
				return err
			}
			return a.run(ctx)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "warden.yaml", "configuration file")
	addLogFlags(cmd, &logFormat, &logLevel)
	return cmd
}

func addLogFlags(cmd *cobra.Command, format, level *string) {
	cmd.Flags().StringVar(format, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(level, "log-level", "info", "log level: debug, info, warn, error")
}

func newLogger(w interface{ Write([]byte) (int, error) }, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, &exitError{code: 2, err: errUsage("--log-format must be text or json")}
}

type errUsage string

func (e errUsage) Error() string { return string(e) }
