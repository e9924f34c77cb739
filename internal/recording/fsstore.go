package recording

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

var _ BlobStore = (*FSStore)(nil)

// FSStore keeps objects as files under a root directory (by default
// <data dir>/recordings/objects). Writes go to a temporary file in the
// target directory, are fsynced, renamed into place, and the directory is
// fsynced: a crash leaves the old state or the new one.
type FSStore struct {
	root string
}

// tmpPrefix marks files a Put has not finished; List skips them.
const tmpPrefix = ".tmp-"

// NewFSStore opens (creating with mode 0700) the store rooted at root.
func NewFSStore(root string) (*FSStore, error) {
	if root == "" {
		return nil, errors.New("recording: filesystem store: empty root")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("recording: filesystem store: %w", err)
	}
	return &FSStore{root: root}, nil
}

// Root is the store's directory.
func (s *FSStore) Root() string { return s.root }

func (s *FSStore) path(key string) (string, error) {
	if err := validKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements BlobStore.
func (s *FSStore) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("recording: put %s: %w", key, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("recording: put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if n, err := io.CopyN(f, ctxReader{ctx, r}, size); err != nil {
		return fmt.Errorf("recording: put %s: %d of %d bytes: %w", key, n, size, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("recording: put %s: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("recording: put %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("recording: put %s: %w", key, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("recording: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("recording: sync %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Get implements BlobStore.
func (s *FSStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("recording: get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("recording: get %s: %w", key, err)
	}
	return f, nil
}

// Delete implements BlobStore.
func (s *FSStore) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("recording: delete %s: %w", key, err)
	}
	return nil
}

// List implements BlobStore.
func (s *FSStore) List(ctx context.Context, prefix string, fn func(key string, size int64) error) error {
	type obj struct {
		key  string
		size int64
	}
	var objs []obj
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasPrefix(d.Name(), tmpPrefix) || strings.HasPrefix(d.Name(), probePrefix) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		objs = append(objs, obj{key, info.Size()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording: list %q: %w", prefix, err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].key < objs[j].key })
	for _, o := range objs {
		if err := fn(o.key, o.size); err != nil {
			return err
		}
	}
	return nil
}

// probePrefix names the files Probe writes.
const probePrefix = ".probe-"

// Probe writes, syncs and removes a small file in the root.
func (s *FSStore) Probe(ctx context.Context) error {
	f, err := os.CreateTemp(s.root, probePrefix+"*")
	if err != nil {
		return fmt.Errorf("recording: probe %s: %w", s.root, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write([]byte("probe"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("recording: probe %s: %w", s.root, err)
	}
	return nil
}
