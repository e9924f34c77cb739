package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

func newRestoreCmd() *cobra.Command {
	var cfgPath, dataDir, from string
	var force bool
	cmd := &cobra.Command{
		Use:   "restore --from BACKUP --data-dir DIR",
		Short: "Restore a backup made by `warden backup` into a data dir (the gateway must be stopped)",
		Long: `Restore verifies the backup first and refuses one that does not verify.
It writes the databases through SQLite's backup API (so stale -wal files
beside them cannot corrupt the result), copies the keys and the other files,
and verifies the data dir afterwards.

A data dir that already holds an audit log is replaced only with --force.
If its checkpoint file is newer than the backup's, it is kept aside as
audit.checkpoint.before-restore-<time> and the lost range is printed: a
restore rolls the log back, and witnesses or exports that saw the newer
checkpoint will show it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dst, err := resolveDataFiles(cfgPath, dataDir)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return runRestore(cmd.Context(), from, dst, force, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "", "backup directory made by warden backup")
	fl.StringVarP(&cfgPath, "config", "c", "", "take the target paths from this configuration file")
	fl.StringVar(&dataDir, "data-dir", "./warden-data", "data directory to restore into (without --config)")
	fl.BoolVar(&force, "force", false, "replace an existing audit log")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func runRestore(ctx context.Context, from string, dst dataFiles, force bool, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	src := backupLayout(from)
	fmt.Fprintf(stdout, "verifying the backup %s\n", from)
	if err := runVerify(ctx, verifyFlags{dataDir: from}, stdout, stderr); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("restore: the backup does not verify; nothing was changed: %w", err)}
	}
	// Hold the data dir like a gateway would: a running gateway makes the
	// restore refuse, and none can start while it runs.
	if err := os.MkdirAll(dst.dataDir, 0o700); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("restore: %w", err)}
	}
	unlock, err := lockDataDir(dst.dataDir)
	if busy := (*dataDirBusyError)(nil); errors.As(err, &busy) {
		return &exitError{code: 2, err: fmt.Errorf("restore: %s is in use by %s; stop the gateway first, nothing was changed", dst.dataDir, busy.who())}
	} else if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("restore: %w", err)}
	}
	defer unlock()
	if _, err := os.Stat(dst.auditDB); err == nil && !force {
		return &exitError{code: 2, err: fmt.Errorf("restore: %s already holds an audit log; stop the gateway and pass --force to replace it", dst.auditDB)}
	}
	if err := keepNewerCheckpoint(src, dst, stdout); err != nil {
		return &exitError{code: 2, err: err}
	}
	for _, f := range []struct{ from, to string }{{src.signer, dst.signer}, {src.verifier, dst.verifier}} {
		if err := copyFile(f.from, f.to, true); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("restore: %w", err)}
		}
	}
	if err := sqlite.Restore(ctx, src.auditDB, dst.auditDB); err != nil {
		return &exitError{code: 2, err: err}
	}
	// The search index of the replaced log goes; the gateway rebuilds it
	// from the restored one.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(sqlite.IndexPath(dst.auditDB) + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return &exitError{code: 2, err: fmt.Errorf("restore: %w", err)}
		}
	}
	if _, err := os.Stat(src.approvalsDB); err == nil {
		if err := sqlite.Restore(ctx, src.approvalsDB, dst.approvalsDB); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	// The rest of the backup (other keys, API keys, policy …) goes back
	// under the data dir, by the same rules as the backup took it.
	if err := restoreRest(ctx, src, dst); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("restore: %w", err)}
	}
	// The checkpoint and head last: they must never be ahead of the
	// database. A head left from the replaced log goes (kept aside above
	// when it was ahead).
	if err := os.Remove(audit.HeadPath(dst.checkpoint)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &exitError{code: 2, err: fmt.Errorf("restore: %w", err)}
	}
	for _, f := range []struct{ from, to string }{{src.checkpoint, dst.checkpoint}, {audit.HeadPath(src.checkpoint), audit.HeadPath(dst.checkpoint)}} {
		if err := copyFile(f.from, f.to, true); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("restore: %w", err)}
		}
	}
	fmt.Fprintf(stdout, "restored into %s; verifying it\n", dst.dataDir)
	vf := verifyFlags{dataDir: dst.dataDir, db: dst.auditDB, key: dst.verifier, checkpointFile: dst.checkpoint}
	if err := runVerify(ctx, vf, stdout, stderr); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("restore: the restored data dir does not verify: %w", err)}
	}
	return nil
}

// keepNewerCheckpoint moves the target's checkpoint file aside when it is
// ahead of the backup's, and says what the restore loses.
func keepNewerCheckpoint(src, dst dataFiles, stdout io.Writer) error {
	// The newer of the checkpoint file and the head signed per batch.
	cur, err := audit.ReadExternal(dst.checkpoint)
	if err != nil || cur == nil {
		return nil // no checkpoint file: nothing to compare
	}
	v, err := audit.LoadVerifier(src.verifier)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	bak, err := os.ReadFile(src.checkpoint)
	if err != nil {
		return fmt.Errorf("restore: the backup has no checkpoint file: %w", err)
	}
	b, err := audit.OpenCheckpoint(bak, v)
	if err != nil {
		return fmt.Errorf("restore: the backup's checkpoint: %w", err)
	}
	c, err := audit.OpenCheckpoint(cur, v)
	if err != nil || c.Size <= b.Size {
		// Signed by another key (a different log) or not ahead: the
		// backup's replaces it.
		return nil
	}
	aside := fmt.Sprintf("%s.before-restore-%d", dst.checkpoint, time.Now().Unix())
	if err := os.WriteFile(aside, cur, 0o644); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Remove(dst.checkpoint); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "WARNING: the log in %s reached %d entries; the backup ends at %d. Entries [%d, %d) are lost by this restore.\n"+
		"The newer checkpoint is kept at %s; witnesses and exports that saw it will show the rollback.\n",
		dst.dataDir, c.Size, b.Size, b.Size, c.Size, aside)
	return nil
}

func restoreRest(ctx context.Context, src, dst dataFiles) error {
	return filepath.WalkDir(src.dataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() || src.handled(p) {
			return err
		}
		rel, err := filepath.Rel(src.dataDir, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst.dataDir, rel)
		if isSQLite(p) {
			return sqlite.Restore(ctx, p, target)
		}
		return copyFile(p, target, false)
	})
}
