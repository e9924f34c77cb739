//go:build !unix

package audit

import "io/fs"

func privateMode(fi fs.FileInfo) bool { return fi.Mode().Perm()&0o077 == 0 }
