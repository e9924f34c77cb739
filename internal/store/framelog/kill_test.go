//go:build linux

package framelog

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// TestKill runs a child process that appends and syncs batches as fast
// as it can, printing the log's size after each Sync, and SIGKILLs it
// mid-stream, several times on one file: after each kill, Open (cutting a
// torn tail if the kill fell inside a write) finds every record the child
// reported durable, the frames verify, and the next child appends on.
// Every other child preallocates the file (in small chunks, so that it
// grows the zero region during the run and the kill can fall inside a
// grow): Open must then tell the zeros ahead of the frames from a torn
// frame, with the durable mark beside the file.
func TestKill(t *testing.T) {
	if path := os.Getenv("FRAMELOG_KILL_CHILD"); path != "" {
		chunk, _ := strconv.ParseInt(os.Getenv("FRAMELOG_KILL_PREALLOC"), 10, 64)
		killChild(path, chunk)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := Create(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestKill$")
		cmd.Env = append(os.Environ(), "FRAMELOG_KILL_CHILD="+path)
		prealloc := round%2 == 1
		if prealloc {
			cmd.Env = append(cmd.Env, "FRAMELOG_KILL_PREALLOC=65536")
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var durable int64
		deadline := time.Now().Add(time.Duration(50+round*40) * time.Millisecond)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "durable "); ok {
				durable, _ = strconv.ParseInt(n, 10, 64)
			}
			if durable > 0 && time.Now().After(deadline) {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() { // what the child printed before it died
			if n, ok := strings.CutPrefix(sc.Text(), "durable "); ok {
				durable, _ = strconv.ParseInt(n, 10, 64)
			}
		}
		cmd.Wait()
		l, cut, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: Open after SIGKILL: %v", round, err)
		}
		if l.Size() < durable {
			t.Fatalf("round %d: log holds %d records after SIGKILL, the child had synced %d", round, l.Size(), durable)
		}
		if err := l.Scan(0, func(i int, p []byte) error {
			_, err := DecodeBatch(p)
			return err
		}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if fi, err := os.Stat(path); err != nil {
			t.Fatal(err)
		} else if prealloc && fi.Size() <= l.End() {
			t.Fatalf("round %d: the preallocating child left no zeros ahead of the frames (file %d bytes, frames end at %d)", round, fi.Size(), l.End())
		}
		t.Logf("round %d (preallocated %v): %d records synced by the child, %d found, %d bytes cut", round, prealloc, durable, l.Size(), cut)
		l.Close()
	}
}

func killChild(path string, prealloc int64) {
	l, _, err := Open(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	if prealloc > 0 {
		markEvery = 10 * time.Millisecond // the kill falls between marks too
		if err := l.Preallocate(prealloc, func(err error) {
			if err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
		}); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	c := &chain{seq: l.Size()} // hash values are not checked by the log, only counts
	for i := 0; ; i++ {
		b := c.nextUnhashed(1 + i%9)
		if err := l.AppendBatch(b); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if i%3 == 0 {
			if err := l.Sync(); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("durable", l.Size())
		}
	}
}

// nextUnhashed is next with zero hashes of the right count, for a chain
// that does not start at 0 in a fresh process.
func (c *chain) nextUnhashed(n int) *Batch {
	b := &Batch{FirstSeq: c.seq, HashStart: tlog.StoredHashCount(c.seq)}
	for range n {
		b.Records = append(b.Records, record(c.seq))
		c.seq++
	}
	b.Hashes = make([]tlog.Hash, hashCount(b.FirstSeq, n))
	return b
}
