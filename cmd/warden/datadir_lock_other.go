//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package main

// flockExclusive is a no-op where flock is unavailable: there, make sure
// only one `warden serve` uses a data dir.
func flockExclusive(string) (func(), string, error) { return func() {}, "", nil }
