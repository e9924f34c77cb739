//go:build unix

package keyfile

import (
	"io/fs"
	"os"
	"syscall"
)

// Private reports whether a key file is readable by its owner only,
// or additionally by the process's own group and nobody else — what a
// Kubernetes Secret volume with fsGroup gives a non-root container (the
// kubelet adds group read; the owner is root). World access, group write
// and a foreign group are refused.
func Private(fi fs.FileInfo) bool {
	perm := fi.Mode().Perm()
	if perm&0o077 == 0 {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && perm&0o037 == 0 && int(st.Gid) == os.Getegid()
}
