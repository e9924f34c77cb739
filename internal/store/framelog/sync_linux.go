//go:build linux

package framelog

import (
	"os"
	"path/filepath"
	"syscall"
)

// fdatasync flushes f's data and the metadata needed to read it back (its
// size), as internal/store/sqlite's and internal/audit's copies do.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// lockFile takes an exclusive, non-blocking flock on f: a second process
// opening the log for writing fails instead of interleaving frames. The
// lock goes with the file's close.
func lockFile(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
	return nil
}

// syncDir fsyncs the directory holding path, so a new file's name is
// durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
