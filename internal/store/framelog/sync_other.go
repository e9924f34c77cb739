//go:build !linux

package framelog

import "os"

// fdatasync is f.Sync where fdatasync(2) is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// lockFile does nothing here: the caller (the store) must hold its own
// lock.
func lockFile(*os.File) error { return nil }

// syncDir does nothing here (directories cannot be synced everywhere).
func syncDir(string) error { return nil }
