package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Cursor keeps a sink's export position durably: every entry before it
// (and every checkpoint of a smaller size) is delivered or dead-lettered.
//
// Contract: Save returns only when the position is durable; Load returns
// 0 for a sink that never saved. Positions only move forward, but Save
// must accept any value (the exporter never moves backwards itself).
type Cursor interface {
	Load(ctx context.Context) (int64, error)
	Save(ctx context.Context, next int64) error
}

// FileCursor is a Cursor in a small file (written to a temporary file,
// fsynced and renamed into place, so a crash leaves the old or the new
// position, never a torn one).
type FileCursor struct {
	path string
}

// NewFileCursor returns a cursor stored at path (created on first Save).
func NewFileCursor(path string) *FileCursor { return &FileCursor{path: path} }

var _ Cursor = (*FileCursor)(nil)

type cursorFile struct {
	Next int64 `json:"next"`
}

// Load reads the position (0 when the file does not exist).
func (c *FileCursor) Load(ctx context.Context) (int64, error) {
	b, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("export: cursor: %w", err)
	}
	var cf cursorFile
	if err := json.Unmarshal(b, &cf); err != nil || cf.Next < 0 {
		return 0, fmt.Errorf("export: cursor %s is corrupt (%v): fix or remove it (removing re-exports the whole log)", c.path, err)
	}
	return cf.Next, nil
}

// Save writes the position durably.
func (c *FileCursor) Save(ctx context.Context, next int64) error {
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("export: cursor: %w", err)
	}
	tmp := c.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("export: cursor: %w", err)
	}
	_, err = f.WriteString(`{"next":` + strconv.FormatInt(next, 10) + "}\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(c.path))
	}
	if err != nil {
		return fmt.Errorf("export: save cursor %s: %w", c.path, err)
	}
	return nil
}

// syncDir fsyncs a directory so a rename or create in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
