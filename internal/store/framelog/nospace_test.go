//go:build linux

package framelog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestNoSpace: a write refused for lack of space (here a 256 KiB tmpfs
// in a private user and mount namespace, filled up) fails that Append
// only: the partial frame is cut off again (the file ends where the log
// does), the log is not failed, and once space comes back the next
// Append and Sync succeed and a reopen finds every frame, no torn tail.
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
	dir := t.TempDir()
	cmd := exec.Command("unshare", "-rm", "sh", "-c",
		`mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" -test.run '^TestNoSpace$'`, "sh", dir, os.Args[0])
	cmd.Env = append(os.Environ(), "FRAMELOG_NOSPACE_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func noSpaceChild(dir string) error {
	path := filepath.Join(dir, "a.log")
	l, err := Create(path, 0)
	if err != nil {
		return err
	}
	c := &chain{}
	// A filler leaves room for a few frames only.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 200<<10), 0o600); err != nil {
		return err
	}
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
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() != l.end {
		return fmt.Errorf("after the refused write the file has %d bytes, the log ends at %d", fi.Size(), l.end)
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
