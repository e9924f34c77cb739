package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/recording"
)

// newKeygenCmd is `warden keygen`: it creates the Ed25519 key that signs
// audit checkpoints. The signer key stays on the gateway (mode 0600); the
// verifier key is what auditors use with `warden verify`.
func newKeygenCmd() *cobra.Command {
	var dataDir, out, name, kek string
	cmd := &cobra.Command{
		Use:   "keygen [--data-dir D] [--name NAME] | keygen --recordings-kek FILE",
		Short: "Create the audit checkpoint signing key (<data-dir>/keys/audit.signer and audit.verifier), or a recordings key-encryption key",
		Long: `Create the audit checkpoint signing key (<data-dir>/keys/audit.signer and
audit.verifier), or with --recordings-kek a key-encryption key for session
recordings: replicas that share recordings (S3 store, PostgreSQL catalogue)
need the same KEK file, e.g. from one Kubernetes Secret:

  warden keygen --recordings-kek recordings.kek
  kubectl create secret generic warden-recordings-kek --from-file=recordings.kek`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kek != "" {
				if err := recording.GenerateKEKFile(kek); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (secret, mode 0600); give every replica the same file as recordings.key_file, and protect it like the audit signing key\n", kek)
				return nil
			}
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
	cmd.Flags().StringVar(&kek, "recordings-kek", "", "write a new recordings key-encryption key to this file instead (never overwrites)")
	return cmd
}
