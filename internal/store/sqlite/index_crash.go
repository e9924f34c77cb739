package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The search index is written with synchronous=OFF (decision 035): no
// commit and no WAL checkpoint of the index is ever fsynced. What that
// can cost depends on how the process ended:
//
//   - The process was killed (or crashed): the OS holds every write the
//     process made, WAL mode keeps the file consistent, and the indexer
//     catches up from the log what the index lacks.
//   - The machine lost power (or the kernel crashed) while the index was
//     open: pages the OS had not written yet are gone, in any order, and
//     the file can be damaged in ways SQLite does not notice on open
//     (a checkpoint's copy half on disk, a WAL that no longer matches).
//
// openMarker tells the two apart. Before the index is opened for writing,
// a marker file (the index path + "-open") holding the kernel's boot id
// is written and fsynced; a clean close syncs the index files and removes
// it. A marker found at open from another boot means the machine went
// down with the index open: the file is set aside and rebuilt from the
// log. A marker from this boot means only the process ended: the index
// is kept. Where the boot id is unknown (not Linux), any marker counts as
// a power loss.

// markerSuffix names the marker beside the index file.
const markerSuffix = "-open"

// uncleanFromOtherBoot reports whether the index at path was left open
// (no clean close) by a process of another boot of the machine, so its
// unsynced writes may be lost.
func uncleanFromOtherBoot(path string) (bool, string, error) {
	b, err := os.ReadFile(path + markerSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("sqlite: index marker: %w", err)
	}
	was := markerBoot(string(b))
	now := bootID()
	return now == "" || was != now, was, nil
}

// markerBoot returns the boot id a marker records ("" if none).
func markerBoot(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if v, ok := strings.CutPrefix(line, "boot "); ok {
			return v
		}
	}
	return ""
}

// writeMarker durably records that this process opens the index at path
// for writing; it returns the marker's content (for removeMarker).
func writeMarker(path string) (string, error) {
	content := fmt.Sprintf("boot %s\npid %d\n", bootID(), os.Getpid())
	f, err := os.OpenFile(path+markerSuffix, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("sqlite: index marker: %w", err)
	}
	_, err = f.WriteString(content)
	err = errors.Join(err, fdatasync(f), f.Close(), syncDir(filepath.Dir(path)))
	if err != nil {
		return "", fmt.Errorf("sqlite: index marker: %w", err)
	}
	return content, nil
}

// closeMarker syncs the index files at path (closed: no connection
// left) and then removes the marker if it is still the one written by
// this opener (content): another writer that opened the index since
// (warden index rebuild beside the gateway) owns it now, and leaving it is
// the safe side.
func closeMarker(path, content string) error {
	var errs []error
	for _, p := range []string{path, path + "-wal"} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, fdatasync(f), f.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: index: sync at close (the index is rebuilt after a power loss): %w", err)
	}
	if b, err := os.ReadFile(path + markerSuffix); err != nil || string(b) != content {
		return nil
	}
	if err := os.Remove(path + markerSuffix); err != nil {
		return fmt.Errorf("sqlite: index marker: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir fsyncs a directory, so a file created, renamed or removed in it
// stays so.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
