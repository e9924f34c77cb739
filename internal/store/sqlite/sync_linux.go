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

// links is the number of names f's file has (0 once it is deleted); ok
// is false if fstat failed.
func links(f *os.File) (n uint64, ok bool) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, false
	}
	return uint64(st.Nlink), true
}

// bootID returns the kernel's id of this boot ("" if unknown): the search
// index's open marker records it (index_crash.go).
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
