//go:build linux

package framelog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNoSpace: a write refused for lack of space (here a 256 KiB tmpfs
// in a private user and mount namespace, filled up) fails that Append
// only: the partial frame is cut off again (the file ends where the log
// does), the log is not failed, and once space comes back the next
// Append and Sync succeed and a reopen finds every frame, no torn tail.
// Preallocating, the same, and the failed grows are reported only.
func TestNoSpace(t *testing.T) {
	if dir := os.Getenv("FRAMELOG_NOSPACE_CHILD"); dir != "" {
		if err := noSpaceChild(dir); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ok")
		return
	}
	if err := exec.Command("unshare", "-rm", "true").Run(); err != nil {
		t.Skipf("no unprivileged user and mount namespaces here (unshare -rm): %v", err)
	}
	// Growing, then preallocating (chunks of 1 MiB that cannot be
	// written: the grow's ENOSPC is reported, not a failure of the log).
	for _, pre := range []string{"", "1"} {
		dir := t.TempDir()
		cmd := exec.Command("unshare", "-rm", "sh", "-c",
			`mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" -test.run '^TestNoSpace$'`, "sh", dir, os.Args[0])
		cmd.Env = append(os.Environ(), "FRAMELOG_NOSPACE_CHILD="+dir, "FRAMELOG_NOSPACE_PREALLOC="+pre)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ok") {
			t.Fatalf("child (preallocating: %q): %v\n%s", pre, err, out)
		}
	}
}

func noSpaceChild(dir string) error {
	path := filepath.Join(dir, "a.log")
	l, err := Create(path, 0)
	if err != nil {
		return err
	}
	// A filler leaves room for a few frames only. It is written before
	// Preallocate: the grow Preallocate starts at once would otherwise
	// race it for the space (and the filler's write could be the one
	// refused).
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 200<<10), 0o600); err != nil {
		return err
	}
	growFailed := make(chan struct{}, 1) // the first failed grow reported
	pre := os.Getenv("FRAMELOG_NOSPACE_PREALLOC") != ""
	if pre {
		if err := l.Preallocate(1<<20, func(error) {
			select {
			case growFailed <- struct{}{}:
			default:
			}
		}); err != nil {
			return err
		}
	}
	c := &chain{}
	var failed error
	appended := 0
	for range 10000 {
		b := c.nextUnhashed(64) // ~5 KiB a frame
		if err := l.AppendBatch(b); err != nil {
			failed = err
			c.seq = b.FirstSeq // the batch was not appended
			break
		}
		appended++
	}
	switch {
	case failed == nil:
		return errors.New("the disk never filled")
	case !errors.Is(failed, syscall.ENOSPC):
		return fmt.Errorf("append on a full disk: %v, want ENOSPC", failed)
	case errors.Is(failed, ErrFailed) || l.Err() != nil:
		return fmt.Errorf("a full disk failed the log: %v / %v", failed, l.Err())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	// Preallocating, zeros a grow wrote after the cut may follow.
	if int64(len(b)) < l.end || (!pre && int64(len(b)) != l.end) || len(bytes.Trim(b[l.end:], "\x00")) != 0 {
		return fmt.Errorf("after the refused write the file has %d bytes, the log ends at %d", len(b), l.end)
	}
	if pre {
		// The grow runs in the background: wait for its report (it cannot
		// succeed, the 1 MiB chunk is larger than the whole disk).
		select {
		case <-growFailed:
		case <-time.After(time.Minute):
			return errors.New("no failed grow was reported")
		}
	}
	if err := l.Sync(); err != nil {
		return fmt.Errorf("sync after a refused write: %v", err)
	}
	// Space comes back.
	if err := os.Remove(filler); err != nil {
		return err
	}
	for range 3 {
		if err := l.AppendBatch(c.nextUnhashed(64)); err != nil {
			return fmt.Errorf("append once space is back: %v", err)
		}
		appended++
	}
	if err := l.Sync(); err != nil {
		return err
	}
	want := l.Size()
	l.Close()
	l, cut, err := Open(path)
	if err != nil {
		return err
	}
	defer l.Close()
	if cut != 0 || l.Frames() != appended || l.Size() != want {
		return fmt.Errorf("reopened: cut %d, %d frames, size %d; want 0, %d, %d", cut, l.Frames(), l.Size(), appended, want)
	}
	for i := range l.Frames() {
		if _, err := l.ReadBatch(i); err != nil {
			return err
		}
	}
	return nil
}
