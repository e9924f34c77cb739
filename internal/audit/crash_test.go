package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// crashChild runs in a child process: it opens the log in dir and appends
// from 32 goroutines forever, printing "seq id" for every acknowledged
// (durable) append, until it is killed.
func crashChild(dir string) {
	cfg := audit.Config{CheckpointEvery: 50}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	ctx := context.Background()
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "crash-audit")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	st, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	l, err := audit.Open(ctx, st, cfg, s, v, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(4)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := 0; w < 32; w++ {
		go func() {
			for i := 0; ; i++ {
				ref, err := l.Append(ctx, request(i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(5)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %s\n", ref.Seq, ref.ID)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashReopen kills a process that is appending from many goroutines
// (SIGKILL, mid-batch) several times; after each kill the store opens
// cleanly (verification passes) and every acknowledged append is there.
func TestCrashReopen(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test spawns processes")
	}
	dir := t.TempDir()
	acked := map[int64]string{}
	for round := 0; round < 4; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "WARDEN_AUDIT_CRASH_CHILD="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n := 0
		// Kill after a number of acknowledgements that varies by round,
		// so the kill lands at different points of a batch.
		for sc.Scan() {
			var seq int64
			var id string
			if _, err := fmt.Sscanf(sc.Text(), "%d %s", &seq, &id); err != nil {
				t.Fatalf("child output %q: %v", sc.Text(), err)
			}
			acked[seq] = id
			n++
			if n == 300+round*137 {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		for sc.Scan() { // drain whatever was acknowledged before the kill
			var seq int64
			var id string
			if _, err := fmt.Sscanf(sc.Text(), "%d %s", &seq, &id); err == nil {
				acked[seq] = id
			}
		}
		cmd.Wait()
		if n < 300+round*137 {
			t.Fatalf("round %d: child stopped after %d appends: %s", round, n, stderr.String())
		}

		// Offline verification, then start-up, then every ack present.
		st, err := sqlite.Open(context.Background(), dir+"/audit.db")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(context.Background(), st, mustVerifier(t, dir), audit.VerifyOptions{External: readFile(t, dir+"/audit.checkpoint"), SingleWriter: true})
		if err != nil {
			t.Fatalf("round %d: verify after SIGKILL: %v", round, err)
		}
		for seq, id := range acked {
			recs, err := st.ReadRecords(context.Background(), seq, seq+1)
			if err != nil {
				t.Fatalf("round %d: acknowledged entry %d is missing: %v", round, seq, err)
			}
			e, err := audit.ParseEntry(seq, recs[0].Data)
			if err != nil || e.ID != id {
				t.Fatalf("round %d: entry %d is %v (%v), acknowledged as %s", round, seq, e, err, id)
			}
		}
		st.Close()
		t.Logf("round %d: %d entries, %d acknowledged, %d unsigned after the kill", round, rep.Size, len(acked), rep.UnsignedTail)
	}
}

func mustVerifier(t *testing.T, dir string) note.Verifier {
	t.Helper()
	_, v, err := audit.LoadSigner(dir + "/keys/" + audit.SignerFile)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
