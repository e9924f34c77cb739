package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/wardenhq/warden/internal/store/framelog"
)

// backuper is what the modernc driver's connection offers for SQLite's
// online backup API.
type backuper interface {
	NewBackup(dstURI string) (*msqlite.Backup, error)
	NewRestore(srcURI string) (*msqlite.Backup, error)
}

func fileURI(path string, q url.Values) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Backup copies the SQLite database at src (the audit store or the
// approval store, possibly in use by a running gateway) to dst with
// SQLite's online backup API: one read transaction, so the copy is a
// consistent snapshot while writers go on (WAL mode). dst must not exist;
// it is written as a single self-contained file (journal_mode DELETE),
// checked with PRAGMA integrity_check and fsynced. The audit store's
// frame file (FramesPath), if src has one, is copied after the database:
// every frame that verifies at that moment (framelog.OpenReadOnly), up to
// the last one's end, to FramesPath(dst), fsynced. Taken after the
// database snapshot, the frames are at least as long as any checkpoint or
// marker in it, so the copy verifies.
func Backup(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlite: backup %s: %w", src, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("sqlite: backup to %s: %w", dst, os.ErrExist)
	}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_query_only", "1")
	db, err := sql.Open("sqlite", fileURI(src, q))
	if err != nil {
		return fmt.Errorf("sqlite: backup %s: %w", src, err)
	}
	defer db.Close()
	err = withRaw(ctx, db, func(b backuper) error {
		bk, err := b.NewBackup(fileURI(dst, url.Values{}))
		if err != nil {
			return err
		}
		// All pages in one step: one read transaction, one snapshot.
		// (Stepping in chunks would restart whenever the gateway writes.)
		_, stepErr := bk.Step(-1)
		return errors.Join(stepErr, bk.Finish())
	})
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("sqlite: backup %s to %s: %w", src, dst, err)
	}
	if err := finishCopy(ctx, dst); err != nil {
		os.Remove(dst)
		return fmt.Errorf("sqlite: backup %s to %s: %w", src, dst, err)
	}
	if err := backupFrames(FramesPath(src), FramesPath(dst)); err != nil {
		return fmt.Errorf("sqlite: backup %s to %s: %w", src, dst, err)
	}
	return nil
}

// backupFrames copies the verified frames of the frame file at src (if
// there is one) to dst, which must not exist, and fsyncs the copy.
func backupFrames(src, dst string) error {
	fr, _, err := framelog.OpenReadOnly(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	end := fr.End()
	fr.Close()
	return copyPrefix(src, dst, end)
}

// copyPrefix copies the first n bytes of src to the new file dst (0600)
// and fsyncs it and its directory.
func copyPrefix(src, dst string, n int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(in, 0, n))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(dst))
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// Restore replaces the database at dst with the copy at src, through the
// same API (so a WAL left beside dst is dealt with by SQLite, not by
// copying files). No gateway may be running on dst.
func Restore(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlite: restore %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("sqlite: restore to %s: %w", dst, err)
	}
	if f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return fmt.Errorf("sqlite: restore to %s: %w", dst, err)
	} else {
		f.Close()
	}
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	db, err := sql.Open("sqlite", fileURI(dst, q))
	if err != nil {
		return fmt.Errorf("sqlite: restore to %s: %w", dst, err)
	}
	defer db.Close()
	err = withRaw(ctx, db, func(b backuper) error {
		bk, err := b.NewRestore(fileURI(src, url.Values{"mode": {"ro"}}))
		if err != nil {
			return err
		}
		_, stepErr := bk.Step(-1)
		return errors.Join(stepErr, bk.Finish())
	})
	if err != nil {
		return fmt.Errorf("sqlite: restore %s to %s: %w", src, dst, err)
	}
	if err := restoreFrames(FramesPath(src), FramesPath(dst)); err != nil {
		return fmt.Errorf("sqlite: restore %s to %s: %w", src, dst, err)
	}
	return nil
}

// restoreFrames puts the frame file of a backup (if it has one) in place
// at dst: copied and synced under a temporary name, then renamed over
// dst. A frame file already at dst (the replaced log's) is kept aside as
// dst.before-restore-<unix time>, never deleted, and its durable mark
// goes aside with it: the mark describes the replaced file, not the
// restored one (a backup has no mark; the restored log writes its own).
func restoreFrames(src, dst string) error {
	fr, _, err := framelog.OpenReadOnly(src)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fr = nil
	case err != nil:
		return err
	}
	aside := fmt.Sprintf("%s.before-restore-%d", dst, time.Now().Unix())
	for _, p := range [][2]string{{dst, aside}, {framelog.MarkPath(dst), framelog.MarkPath(aside)}} {
		if _, err := os.Lstat(p[0]); err != nil {
			continue
		}
		if err := os.Rename(p[0], p[1]); err != nil {
			if fr != nil {
				fr.Close()
			}
			return err
		}
	}
	if fr == nil {
		return nil
	}
	end := fr.End()
	fr.Close()
	tmp := dst + ".restore"
	os.Remove(tmp) // a leftover of an interrupted restore
	if err := copyPrefix(src, tmp, end); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// withRaw runs f on one driver connection of db.
func withRaw(ctx context.Context, db *sql.DB, f func(backuper) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		b, ok := dc.(backuper)
		if !ok {
			return fmt.Errorf("driver connection %T has no backup API", dc)
		}
		return f(b)
	})
}

// finishCopy turns the copy into one self-contained file and checks it.
func finishCopy(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", fileURI(path, url.Values{"_busy_timeout": {"10000"}}))
	if err != nil {
		return err
	}
	defer db.Close()
	var mode, check string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode=DELETE").Scan(&mode); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil {
		return err
	}
	if check != "ok" {
		return fmt.Errorf("integrity check of the copy: %s", check)
	}
	if err := db.Close(); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
