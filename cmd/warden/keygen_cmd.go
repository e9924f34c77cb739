package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/audit"
)

// newKeygenCmd is `warden keygen`: it creates the Ed25519 key that signs
// audit checkpoints. The signer key stays on the gateway (mode 0600); the
// verifier key is what auditors use with `warden verify`.
func newKeygenCmd() *cobra.Command {
	var dataDir, out, name string
	cmd := &cobra.Command{
		Use:   "keygen [--data-dir D] [--name NAME]",
		Short: "Create the audit checkpoint signing key (<data-dir>/keys/audit.signer and audit.verifier)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			signer := out
			if signer == "" {
				signer, _ = audit.KeyPaths(dataDir)
			}
			vkey, err := audit.GenerateKeyFiles(signer, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), vkey)
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (secret, mode 0600) and its verifier key beside it; give the verifier key (printed above) to auditors\n", signer)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "./warden-data", "data directory")
	cmd.Flags().StringVar(&out, "out", "", "signer key file (default <data-dir>/keys/audit.signer)")
	cmd.Flags().StringVar(&name, "name", audit.DefaultKeyName, "key name (the checkpoint origin)")
	return cmd
}
