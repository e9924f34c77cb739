package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// dataFiles are the files of a SQLite-layout data dir that a backup
// treats by name; everything else in the data dir is copied as it is.
type dataFiles struct {
	dataDir     string
	auditDB     string
	approvalsDB string
	checkpoint  string
	signer      string
	verifier    string
}

// backupLayout is where a backup keeps each file: the default data-dir
// layout, so `warden verify --data-dir BACKUP` works on it as it is.
func backupLayout(dir string) dataFiles {
	signer, verifier := audit.KeyPaths(dir)
	return dataFiles{
		dataDir: dir, auditDB: filepath.Join(dir, "audit.db"), approvalsDB: filepath.Join(dir, approval.DefaultFile),
		checkpoint: filepath.Join(dir, "audit.checkpoint"), signer: signer, verifier: verifier,
	}
}

// resolveDataFiles takes the paths from the config file when one is
// given (a configured audit.path, checkpoint_file or signing_key_file
// outside the data dir), else the defaults under dataDir.
func resolveDataFiles(cfgPath, dataDir string) (dataFiles, error) {
	if cfgPath == "" {
		return backupLayout(dataDir), nil
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return dataFiles{}, err
	}
	if !cfg.Audit.On() {
		return dataFiles{}, errors.New("the audit log is disabled in this config: nothing to back up")
	}
	if cfg.Audit.Store != "sqlite" {
		return dataFiles{}, fmt.Errorf("the audit store is %s: back it up with its own tools (pg_dump, continuous archiving; see docs/deploy.md), then `warden verify --dsn` the copy", cfg.Audit.Store)
	}
	return dataFiles{
		dataDir: cfg.DataDir, auditDB: cfg.Audit.Path, approvalsDB: cfg.Approvals.Path,
		checkpoint: cfg.Audit.CheckpointFile, signer: cfg.Audit.SigningKeyFile,
		verifier: filepath.Join(filepath.Dir(cfg.Audit.SigningKeyFile), audit.VerifierFile),
	}, nil
}

func newBackupCmd() *cobra.Command {
	var cfgPath, dataDir, out, workDir string
	cmd := &cobra.Command{
		Use:   "backup --data-dir DIR --out BACKUP",
		Short: "Copy a running gateway's SQLite data dir consistently, then verify the copy",
		Long: `Backup copies the audit log and the approval store with SQLite's online
backup API (a consistent snapshot; the gateway keeps serving and writing),
and the keys, the checkpoint file and every other file of the data dir. The
copy has the layout of a data dir, and is then verified exactly as
` + "`warden verify --data-dir BACKUP`" + ` would: every hash, every signed
checkpoint. A copy that does not verify is an error (exit 1).

With --out - the verified copy is written to stdout as a tar archive
(for ` + "`kubectl exec … -- warden backup --out - > backup.tar`" + ` from an image
without a shell), staged in --work-dir.

The backup holds the audit signing key and the masking key: keep it
encrypted and access-controlled. For store: postgres use PostgreSQL's own
backups and ` + "`warden verify --dsn`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src, err := resolveDataFiles(cfgPath, dataDir)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx := cmd.Context()
			if out != "-" {
				return runBackup(ctx, src, out, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			stage, err := os.MkdirTemp(workDir, "warden-backup-")
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer os.RemoveAll(stage)
			dst := filepath.Join(stage, "backup")
			if err := runBackup(ctx, src, dst, cmd.ErrOrStderr(), cmd.ErrOrStderr()); err != nil {
				return err
			}
			if err := writeTar(cmd.OutOrStdout(), dst); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("backup: writing the archive: %w", err)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&cfgPath, "config", "c", "", "take the paths from this configuration file")
	fl.StringVar(&dataDir, "data-dir", "./warden-data", "data directory (without --config)")
	fl.StringVar(&out, "out", "", "backup directory to create (must not exist), or - for a tar archive on stdout")
	fl.StringVar(&workDir, "work-dir", "", "with --out -: where to stage the copy (default $TMPDIR)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// runBackup copies src into the new directory dst and verifies the copy.
func runBackup(ctx context.Context, src dataFiles, dst string, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if _, err := os.Stat(src.auditDB); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("backup: no audit log at %s: %w", src.auditDB, err)}
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("backup: %w (the backup directory must not exist)", err)}
	}
	to := backupLayout(dst)
	start := time.Now()
	// The checkpoint file first: the database snapshot taken after it is
	// at least as long, so the copy verifies against it.
	for _, f := range []struct{ from, to string }{{src.checkpoint, to.checkpoint}, {audit.HeadPath(src.checkpoint), audit.HeadPath(to.checkpoint)},
		{src.signer, to.signer}, {src.verifier, to.verifier}} {
		if err := copyFile(f.from, f.to, true); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("backup: %w", err)}
		}
	}
	if err := sqlite.Backup(ctx, src.auditDB, to.auditDB); err != nil {
		return &exitError{code: 2, err: err}
	}
	if _, err := os.Stat(src.approvalsDB); err == nil {
		if err := sqlite.Backup(ctx, src.approvalsDB, to.approvalsDB); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	if err := copyRest(ctx, src, dst); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("backup: %w", err)}
	}
	if err := syncDir(dst); err != nil {
		return &exitError{code: 2, err: fmt.Errorf("backup: %w", err)}
	}
	fmt.Fprintf(stdout, "backup of %s written to %s in %s; verifying the copy\n", src.dataDir, dst, time.Since(start).Round(time.Millisecond))
	if err := runVerify(ctx, verifyFlags{dataDir: dst}, stdout, stderr); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("backup: the copy in %s does not verify (kept for inspection): %w", dst, err)}
	}
	return nil
}

// handled reports whether path is one of the named files (or their
// SQLite side files, and the audit log's frame file, which
// sqlite.Backup copies after the database), which copyRest must not copy
// again. The audit search index is left out: it is rebuilt from the log.
func (d dataFiles) handled(path string) bool {
	for _, db := range []string{d.auditDB, d.approvalsDB, sqlite.IndexPath(d.auditDB)} {
		if path == db || path == db+"-wal" || path == db+"-shm" || path == db+"-journal" {
			return true
		}
	}
	if fp := sqlite.FramesPath(d.auditDB); path == fp || strings.HasPrefix(path, fp+".") {
		return true // and its temporary or set-aside copies
	}
	return path == d.checkpoint || path == audit.HeadPath(d.checkpoint) || path == d.signer || path == d.verifier
}

var sqliteHeader = []byte("SQLite format 3\x00")

// copyRest copies every other regular file under the data dir: other
// SQLite databases through the backup API, the rest byte for byte; SQLite
// side files, lock files and the backup itself are left out.
func copyRest(ctx context.Context, src dataFiles, dst string) error {
	absDst, _ := filepath.Abs(dst)
	return filepath.WalkDir(src.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if abs, _ := filepath.Abs(p); abs == absDst {
			return filepath.SkipDir
		}
		if d.IsDir() || !d.Type().IsRegular() || src.handled(p) {
			return nil
		}
		name := d.Name()
		if strings.HasSuffix(name, "-wal") || strings.HasSuffix(name, "-shm") || strings.HasSuffix(name, "-journal") || strings.HasSuffix(name, ".lock") {
			return nil
		}
		rel, err := filepath.Rel(src.dataDir, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		if isSQLite(p) {
			return sqlite.Backup(ctx, p, target)
		}
		return copyFile(p, target, false)
	})
}

func isSQLite(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	_, err = io.ReadFull(f, head)
	return err == nil && bytes.Equal(head, sqliteHeader)
}

// copyFile copies a regular file with its permission bits and fsyncs it.
// A missing source is skipped when optional.
func copyFile(from, to string, optional bool) error {
	in, err := os.Open(from)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	tmp := to + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm()&0o700)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, to)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return nil
}

func syncDir(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}

// writeTar writes the files under dir to w as a tar archive with names
// relative to dir.
func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
