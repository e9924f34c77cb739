package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// FileConfig configures the file sink: OCSF events as JSON lines, with
// size and time rotation.
type FileConfig struct {
	// Path is the active file, e.g. /var/log/warden/ocsf.jsonl. Rotated
	// files are named <base>-<UTC time>.jsonl beside it. Required.
	Path string `yaml:"path"`
	// MaxSizeMB rotates the file once it reaches this many MiB. Default
	// 100; negative: never by size.
	MaxSizeMB int64 `yaml:"max_size_mb"`
	// MaxAge rotates the file once it has been open this long (measured
	// from when Warden created or opened it). Default 24h; negative:
	// never by age.
	MaxAge time.Duration `yaml:"max_age"`
	// Keep is how many rotated files to keep (the oldest are deleted).
	// Default 0: keep all.
	Keep int `yaml:"keep"`
	// Fsync is "batch" (default: every batch is fsynced before it counts
	// as delivered), "interval" (at most every fsync_interval; a power
	// loss, not a crash, can lose up to that much), or "never" (the
	// operating system decides).
	Fsync string `yaml:"fsync"`
	// FsyncInterval is the interval of fsync: interval. Default 1s.
	FsyncInterval time.Duration `yaml:"fsync_interval"`
}

// SetDefaults fills zero fields.
func (c *FileConfig) SetDefaults() {
	if c.MaxSizeMB == 0 {
		c.MaxSizeMB = 100
	}
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.Fsync == "" {
		c.Fsync = "batch"
	}
	if c.FsyncInterval == 0 {
		c.FsyncInterval = time.Second
	}
}

// Validate reports invalid fields with their key paths.
func (c *FileConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, field.Errorf("path", "is required"))
	} else if !strings.HasSuffix(c.Path, ".jsonl") {
		errs = append(errs, field.Errorf("path", "must end in .jsonl (rotated files are named from it)"))
	}
	switch c.Fsync {
	case "batch", "interval", "never":
	default:
		errs = append(errs, field.Errorf("fsync", "must be batch, interval or never, not %q", c.Fsync))
	}
	if c.Keep < 0 {
		errs = append(errs, field.Errorf("keep", "must be >= 0"))
	}
	if c.FsyncInterval < 0 {
		errs = append(errs, field.Errorf("fsync_interval", "must be > 0"))
	}
	return errors.Join(errs...)
}

// FileSink writes events as JSON lines to a local file. Rotation happens
// only between batches, and every batch starts with an event carrying
// the tree frontier, so each file verifies on its own.
type FileSink struct {
	cfg FileConfig
	now func() time.Time

	f        *os.File
	size     int64
	opened   time.Time
	lastSync time.Time
	buf      []byte // the batch's lines, reused
}

// maxFileBuf is the largest write buffer the file sink keeps between
// batches (the default batch_bytes, 1 MiB, plus one event).
const maxFileBuf = 2 << 20

var _ Sink = (*FileSink)(nil)

// NewFileSink returns a file sink (the file is opened on first Send).
func NewFileSink(cfg FileConfig, now func() time.Time) (*FileSink, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: file sink: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &FileSink{cfg: cfg, now: now}, nil
}

func (s *FileSink) open() error {
	if err := os.MkdirAll(filepath.Dir(s.cfg.Path), 0o750); err != nil {
		return fmt.Errorf("export: file sink: %w", err)
	}
	f, err := os.OpenFile(s.cfg.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("export: file sink: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("export: file sink: %w", err)
	}
	size, err := cutTornLine(f, fi.Size())
	if err != nil {
		f.Close()
		return fmt.Errorf("export: file sink: %w", err)
	}
	s.f, s.size, s.opened = f, size, s.now()
	if err := syncDir(filepath.Dir(s.cfg.Path)); err != nil {
		return fmt.Errorf("export: file sink: %w", err)
	}
	return nil
}

// Send appends the batch as one write; on a failed write the file is cut
// back to where the batch began, so no torn line stays behind.
func (s *FileSink) Send(ctx context.Context, batch []Event) (Ack, error) {
	if s.f == nil {
		if err := s.open(); err != nil {
			return Ack{}, err
		}
	}
	n := 0
	for _, ev := range batch {
		n += len(ev.JSON) + 1
	}
	// One buffer for every batch: a fresh one per batch (up to
	// batch_bytes, 1 MiB) was allocated and zeroed before the copy.
	if cap(s.buf) < n {
		s.buf = make([]byte, 0, n)
	}
	buf := s.buf[:0]
	for _, ev := range batch {
		buf = append(append(buf, ev.JSON...), '\n')
	}
	if cap(buf) > maxFileBuf {
		s.buf = nil // an odd huge batch does not stay in memory
	}
	if _, err := s.f.Write(buf); err != nil {
		terr := s.f.Truncate(s.size)
		s.closeFile()
		if terr != nil {
			return Ack{}, fmt.Errorf("export: file sink: write %s: %w (and cutting back the partial batch failed: %v)", s.cfg.Path, err, terr)
		}
		return Ack{}, fmt.Errorf("export: file sink: write %s: %w", s.cfg.Path, err)
	}
	s.size += int64(len(buf))
	if s.cfg.Fsync == "batch" || (s.cfg.Fsync == "interval" && s.now().Sub(s.lastSync) >= s.cfg.FsyncInterval) {
		if err := s.f.Sync(); err != nil {
			// The bytes may or may not be durable: re-sending is safe
			// (receivers de-duplicate), losing them is not.
			s.closeFile()
			return Ack{}, fmt.Errorf("export: file sink: sync %s: %w", s.cfg.Path, err)
		}
		s.lastSync = s.now()
	}
	if (s.cfg.MaxSizeMB > 0 && s.size >= s.cfg.MaxSizeMB<<20) || (s.cfg.MaxAge > 0 && s.now().Sub(s.opened) >= s.cfg.MaxAge) {
		if err := s.rotate(); err != nil {
			// The batch is written; rotation is retried after the next.
			return allSettled(len(batch)), nil
		}
	}
	return allSettled(len(batch)), nil
}

// rotate closes the active file and renames it with the current time.
func (s *FileSink) rotate() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.closeFile()
	base := strings.TrimSuffix(s.cfg.Path, ".jsonl")
	name := base + "-" + s.now().UTC().Format("20060102T150405.000000000Z") + ".jsonl"
	if err := os.Rename(s.cfg.Path, name); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(s.cfg.Path)); err != nil {
		return err
	}
	if s.cfg.Keep > 0 {
		old, _ := s.Rotated()
		for len(old) > s.cfg.Keep {
			os.Remove(old[0])
			old = old[1:]
		}
	}
	return nil
}

// Rotated lists the rotated files, oldest first.
func (s *FileSink) Rotated() ([]string, error) {
	base := strings.TrimSuffix(s.cfg.Path, ".jsonl")
	m, err := filepath.Glob(base + "-*.jsonl")
	if err != nil {
		return nil, err
	}
	slices.Sort(m)
	return m, nil
}

func (s *FileSink) closeFile() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// Close syncs and closes the active file.
func (s *FileSink) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	return err
}

// cutTornLine cuts a partial last line (a crash or power loss in the
// middle of a write) off the file of size n, so the next batch starts on
// a line of its own; the events of the torn batch are re-sent from the
// cursor. It returns the new size.
func cutTornLine(f *os.File, n int64) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	for end := n; end > 0; {
		start := max(end-chunk, 0)
		m, err := f.ReadAt(buf[:end-start], start)
		if err != nil && m < int(end-start) {
			return 0, fmt.Errorf("read %s: %w", f.Name(), err)
		}
		if i := bytes.LastIndexByte(buf[:m], '\n'); i >= 0 {
			keep := start + int64(i) + 1
			if keep == n {
				return n, nil
			}
			return keep, f.Truncate(keep)
		}
		end = start
	}
	return 0, f.Truncate(0)
}
