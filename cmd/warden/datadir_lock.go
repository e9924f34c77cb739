package main

import (
	"errors"
	"fmt"
	"path/filepath"
)

// dataDirLockFile is the lock `warden serve` holds in its data dir for
// as long as it runs. Backups leave *.lock files out.
const dataDirLockFile = "warden.lock"

// errDataDirBusy means another process holds the data dir.
var errDataDirBusy = errors.New("data dir is in use")

// lockDataDir takes the data dir for this process: a second `warden
// serve` on the same directory would append to the same SQLite log from
// two sequencers and lose records to sequence conflicts, and would share
// the checkpoint file, keys and approvals. Read-only commands (verify,
// backup, keys list) do not take the lock. The returned func releases it.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, dataDirLockFile)
	release, holder, err := flockExclusive(path)
	if errors.Is(err, errDataDirBusy) {
		return nil, &dataDirBusyError{dir: dir, holder: holder, lock: path}
	}
	if err != nil {
		return nil, fmt.Errorf("data dir %s: lock: %w", dir, err)
	}
	return release, nil
}

// dataDirBusyError is lockDataDir's refusal: another process holds dir.
type dataDirBusyError struct {
	dir, holder, lock string // holder: the pid written in the lock file, if any
}

func (e *dataDirBusyError) who() string {
	if e.holder != "" {
		return "another warden serve (pid " + e.holder + ")"
	}
	return "another process"
}

func (e *dataDirBusyError) Error() string {
	return fmt.Sprintf("data dir %s is in use by %s: two gateways on one data_dir would corrupt its audit log; stop the other one or give each its own data_dir (lock: %s)", e.dir, e.who(), e.lock)
}

func (e *dataDirBusyError) Unwrap() error { return errDataDirBusy }
