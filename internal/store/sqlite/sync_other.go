//go:build !linux

package sqlite

import "os"

// fdatasync is f.Sync where fdatasync(2) is not available.
func fdatasync(f *os.File) error { return f.Sync() }

// links is unknown here: syncWAL looks at the WAL's path every time.
func links(*os.File) (n uint64, ok bool) { return 0, false }

// bootID is unknown here: an index left open counts as possibly damaged
// (index_crash.go).
func bootID() string { return "" }
