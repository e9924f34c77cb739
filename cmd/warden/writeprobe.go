package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
)

// writeProbeName is the scratch file the SQLite write probe creates (and
// removes) in the audit store's directory.
const writeProbeName = ".warden-readyz-probe"

// writeProbe is the /readyz write probe of a store kept in files (SQLite),
// run after an append failed: a disk that reads but cannot write (full,
// remounted read-only, failing) passes a read, so recovery must be proved
// by writing. It creates a scratch file in dir, writes one page to it,
// fsyncs it and the directory, and removes it; and opens each of files
// (the database, its WAL and the frame file) for writing without writing, so a file made
// read-only is seen. Nothing reaches the log: a write to a table, even
// rolled back, would either be evidence or not reach fsync.
//
// A probe stuck in the kernel (a hung disk) is not waited for past ctx,
// and is not started again while it is still running.
func writeProbe(dir string, files ...string) func(context.Context) error {
	var running atomic.Bool
	page := make([]byte, 4096) // SQLite's page: a write that fits nothing else fails
	return func(ctx context.Context) error {
		if !running.CompareAndSwap(false, true) {
			return errors.New("write probe: the previous probe has not returned (the disk hangs)")
		}
		done := make(chan error, 1)
		go func() {
			defer running.Store(false)
			done <- probeWrite(dir, page, files)
		}()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("write probe: %w", ctx.Err())
		}
	}
}

func probeWrite(dir string, page []byte, files []string) error {
	p := filepath.Join(dir, writeProbeName)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write probe: %w", err)
	}
	_, werr := f.Write(page)
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	rerr := os.Remove(p)
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("write probe %s: %w", p, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("write probe: sync %s: %w", dir, err)
		}
	}
	for _, name := range files {
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write probe: %w", err)
		}
		f.Close()
	}
	return nil
}
