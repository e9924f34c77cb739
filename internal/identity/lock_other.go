//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package identity

// lockFile is a no-op where flock is unavailable: concurrent writers from
// two processes may then lose an update (last-used time, at worst a revoke
// racing a create); run `warden keys` while the gateway is idle there.
func lockFile(path string) (func(), error) { return func() {}, nil }
