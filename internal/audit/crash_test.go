package audit_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
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
	"github.com/wardenhq/warden/internal/store/framelog/framelogtest"
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

// crashOnce runs crashChild on dir and kills it with SIGKILL after n
// acknowledged appends; it adds every acknowledged (seq, id) to acked.
func crashOnce(t *testing.T, dir string, n int, acked map[int64]string) {
	t.Helper()
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
	got := 0
	for sc.Scan() {
		var seq int64
		var id string
		if _, err := fmt.Sscanf(sc.Text(), "%d %s", &seq, &id); err != nil {
			t.Fatalf("child output %q: %v", sc.Text(), err)
		}
		acked[seq] = id
		got++
		if got == n {
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
	if got < n {
		t.Fatalf("child stopped after %d appends: %s", got, stderr.String())
	}
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
		// Kill after a number of acknowledgements that varies by round,
		// so the kill lands at different points of a batch.
		crashOnce(t, dir, 300+round*137, acked)

		// Offline verification, then start-up, then every ack present.
		st, err := sqlite.Open(context.Background(), dir+"/audit.db")
		if err != nil {
			t.Fatal(err)
		}
		ext, err := audit.ReadExternal(dir + "/audit.checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(context.Background(), st, mustVerifier(t, dir), audit.VerifyOptions{External: ext, SingleWriter: true})
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
		// Every acknowledged entry is covered by the signed head.
		for seq := range acked {
			if seq >= rep.Latest.Size {
				t.Fatalf("round %d: acknowledged entry %d is beyond the signed head %d", round, seq, rep.Latest.Size)
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

// TestTamperDeleteTailAfterCrash is the second attack: after a
// crash, delete the entries the store's own checkpoints do not cover
// (with their tree hashes), which used to leave a store that verified.
// The head signed after every batch covers every acknowledged entry (in
// the frame of the batch, and in the head file), so Verify and Open
// refuse the shortened store. The records, hashes and heads are in the
// frame file (decision 042): cutting its tail at the last frame carrying
// a history checkpoint takes the heads of the cut frames with it, so the
// head file is what catches it; a cut that leaves the newest head in the
// last frame (the attacker forgot it, as the old attack left the head
// row) is caught without the head file. With every later head gone, the
// checkpoint file's older head is all that is left; a witness that
// cosigned a later head catches that (cmd/warden TestWitnessTamper*).
func TestTamperDeleteTailAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test spawns processes")
	}
	dir := t.TempDir()
	acked := map[int64]string{}
	crashOnce(t, dir, 400, acked)
	var maxAcked int64
	for seq := range acked {
		maxAcked = max(maxAcked, seq)
	}
	frames := sqlite.FramesPath(dir + "/audit.db")
	orig, err := framelogtest.Read(frames)
	if err != nil {
		t.Fatal(err)
	}
	// The tail after the newest history checkpoint below the last
	// acknowledged entry (the batch that carried the last history
	// checkpoint may be the last acknowledged one: then that checkpoint
	// goes too). The frames are the evidence: the checkpoints table may
	// lag them after a crash.
	var signed int64
	var newestHead []byte
	for _, b := range orig.Frames {
		end := b.FirstSeq + int64(len(b.Records))
		if b.HeadHistory && end <= maxAcked {
			signed = end
		}
		if b.Head != nil {
			newestHead = b.Head
		}
	}
	if signed == 0 || newestHead == nil {
		t.Fatalf("no history checkpoint below %d in the frames", maxAcked)
	}
	cut := func(keepHead bool) {
		t.Helper()
		f, err := framelogtest.Read(frames)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.TruncateAt(signed); err != nil {
			t.Fatal(err)
		}
		if keepHead {
			f.SetHead(len(f.Frames)-1, newestHead, false)
		}
		if err := f.Write(frames); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", "file:"+dir+"/audit.db")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		mustExec(t, db, dropTriggers, fmt.Sprintf("DELETE FROM checkpoints WHERE size > %d", signed))
	}
	cut(false)

	verify := func() error {
		st, err := sqlite.OpenReadOnly(context.Background(), dir+"/audit.db")
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ext, err := audit.ReadHead(context.Background(), st, dir+"/audit.checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		_, err = audit.Verify(context.Background(), st, mustVerifier(t, dir), audit.VerifyOptions{External: ext, SingleWriter: true})
		return err
	}
	var d *audit.Divergence
	if err := verify(); !errors.As(err, &d) || !strings.Contains(d.Msg, "the store was truncated or rolled back") || d.Seq != signed || d.CheckpointSize <= maxAcked {
		t.Fatalf("tail of %d acknowledged entries cut after a crash: Verify = %v", maxAcked+1-signed, err)
	}
	open := func() error {
		t.Helper()
		cfg := audit.Config{}
		cfg.SetDefaults()
		cfg.Resolve(dir)
		s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "crash-audit")
		if err != nil {
			t.Fatal(err)
		}
		st, err := sqlite.Open(context.Background(), cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		l, err := audit.Open(context.Background(), st, cfg, s, v, audit.WithLogger(slog.New(slog.DiscardHandler)))
		if err == nil {
			l.Close(context.Background())
		}
		return err
	}
	if err := open(); !errors.As(err, &d) || d.Seq != signed {
		t.Fatalf("Open on the shortened store = %v, want a divergence at %d", err, signed)
	}
	headFile := audit.HeadPath(dir + "/audit.checkpoint")
	savedHead := readFile(t, headFile)
	os.Remove(headFile)
	// The limit, stated: the heads of the cut frames went with them, and
	// the checkpoint file holds a history checkpoint no newer than the
	// cut unless the child wrote a later one before it was killed.
	if err := verify(); err != nil {
		t.Logf("without the head file, the files alone: %v", err)
	}

	// The same cut leaving the newest head in the last frame: the store's
	// own head (ReadHead, as Open and warden verify read it) covers every
	// acknowledged entry.
	if err := os.WriteFile(headFile, savedHead, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := orig.Write(frames); err != nil {
		t.Fatal(err)
	}
	cut(true)
	os.Remove(headFile)
	if err := verify(); !errors.As(err, &d) || d.Seq != signed || d.CheckpointSize <= maxAcked {
		t.Fatalf("tail cut, newest head kept in the last frame, head file removed: Verify = %v, want the truncation found", err)
	}
	if err := open(); !errors.As(err, &d) || d.Seq != signed {
		t.Fatalf("Open on the shortened store with the newest head in its last frame = %v, want a divergence at %d", err, signed)
	}
}
