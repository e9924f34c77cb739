//go:build linux

package sqlite

import (
	"os"
	"strings"
	"syscall"
)

// fdatasync flushes f's data (and the metadata needed to read it back),
// as SQLite's own sync of the WAL does on Linux.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// bootID returns the kernel's id of this boot ("" if unknown): the search
// index's open marker records it (index_crash.go).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
