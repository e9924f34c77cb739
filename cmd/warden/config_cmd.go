package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a configuration file; errors name the key and line",
		Long: `Validate loads the configuration strictly (unknown keys, wrong types and
semantic errors are refused with file, line and key), checks that the listen
addresses resolve, compiles the masking profiles, and loads and compiles the
policy file it names, checking that every masking profile the policy names
exists. It opens no store and creates nothing: it does not check that
PostgreSQL is reachable or that the audit store verifies (warden verify does).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if err := preflight(cmd.Context(), cfg); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	})
	return cmd
}
