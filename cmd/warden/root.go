package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "warden",
		Short:         "Warden: an evidence-producing gateway for ML inference endpoints",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newDemoCmd(),
		newConfigCmd(),
		newKeysCmd(),
		newPolicyCmd(),
		newVerifyCmd(),
		newIndexCmd(),
		newKeygenCmd(),
		newApprovalsCmd(),
		newVersionCmd(),
		newBackupCmd(),
		newRestoreCmd(),
		newReportCmd(),
		newEvidenceCmd(),
		newReplayCmd(),
		newRecordingsCmd(),
		newExportCmd(),
	)
	return root
}
