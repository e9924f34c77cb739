//go:build !unix

package keyfile

import "io/fs"

// Private reports whether a key file is readable by its owner only.
func Private(fi fs.FileInfo) bool { return fi.Mode().Perm()&0o077 == 0 }
