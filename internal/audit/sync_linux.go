//go:build linux

package audit

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data (and the metadata needed to read it back)
// without the inode's timestamps.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
