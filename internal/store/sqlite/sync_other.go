//go:build !linux

package sqlite

import "os"

// fdatasync is f.Sync where fdatasync(2) is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// bootID is unknown here: an index left open counts as possibly damaged
// (index_crash.go).
func bootID() string { return "" }
