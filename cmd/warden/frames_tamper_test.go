package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog"
	"github.com/wardenhq/warden/internal/store/framelog/framelogtest"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// framesLog writes a log of 32 entries (gateway.started, 30 requests,
// gateway.stopped), one frame each, with checkpoints every 10, in a new
// data dir.
func framesLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, code := runCmd(t, newKeygenCmd(), "--data-dir", dir, "--name", "acme-audit"); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	cfg := audit.Config{CheckpointEvery: 10}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	ctx := context.Background()
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "unused")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := audit.Open(ctx, st, cfg, s, v)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if _, err := l.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: fmt.Sprint("r", i), Model: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVerifyFrameFileAttacks: `warden verify --data-dir` on a frame file
// cut, reordered or damaged (decision 038's attacks): exit 1, the place
// named where the store can name it.
func TestVerifyFrameFileAttacks(t *testing.T) {
	clean := framesLog(t)
	if out, code := runCmd(t, newVerifyCmd(), "--data-dir", clean); code != 0 || !strings.Contains(out, "verified entries [0, 32)") {
		t.Fatalf("untampered: exit %d\n%s", code, out)
	}
	frames := func(dir string) string { return sqlite.FramesPath(filepath.Join(dir, "audit.db")) }
	edit := func(t *testing.T, dir string, fn func(f *framelogtest.File) error) {
		t.Helper()
		f, err := framelogtest.Read(frames(dir))
		if err != nil {
			t.Fatal(err)
		}
		if err := fn(f); err != nil {
			t.Fatal(err)
		}
		if err := f.Write(frames(dir)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   string
		also   string // in the output too, if set
	}{
		{
			name: "record edited, both CRCs fixed",
			tamper: func(t *testing.T, dir string) {
				replaceInRecord(t, filepath.Join(dir, "audit.db"), 12, `"r11"`, `"rX1"`)
			},
			want: "FAILED: entry 12: leaf hash mismatch",
		},
		{
			name: "last frames dropped at a frame boundary",
			tamper: func(t *testing.T, dir string) {
				edit(t, dir, func(f *framelogtest.File) error { return f.DropFrames(3) })
			},
			want: "FAILED: store has 29 entries but the checkpoint file says 32: the store was truncated or rolled back",
		},
		{
			name: "last frames dropped, head file removed",
			tamper: func(t *testing.T, dir string) {
				edit(t, dir, func(f *framelogtest.File) error { return f.DropFrames(3) })
				os.Remove(audit.HeadPath(filepath.Join(dir, "audit.checkpoint")))
			},
			// The checkpoint file holds the checkpoint signed at stop.
			want: "FAILED: store has 29 entries but the checkpoint file says 32",
		},
		{
			name: "last frames dropped, checkpoint file removed",
			tamper: func(t *testing.T, dir string) {
				edit(t, dir, func(f *framelogtest.File) error { return f.DropFrames(3) })
				os.Remove(filepath.Join(dir, "audit.checkpoint"))
			},
			// The head file holds the head signed after the last batch,
			// and the message names it.
			want: "FAILED: store has 29 entries but the head file says 32",
		},
		{
			name: "a middle frame's hashes made consistent with an edited record",
			tamper: func(t *testing.T, dir string) {
				edit(t, dir, func(f *framelogtest.File) error {
					b, err := f.Record(15)
					if err != nil {
						return err
					}
					f.SetRecord(15, []byte(strings.Replace(string(b), `"r14"`, `"rXX"`, 1)))
					return f.Rehash(15, 16)
				})
			},
			want: "FAILED: checkpoint 3 (size 21): signed tree hash does not match the entries",
		},
		{
			name: "last frame's byte flipped, mark removed (a torn tail to framelog)",
			tamper: func(t *testing.T, dir string) {
				if err := framelogtest.FlipByte(frames(dir), 31, 40, 0x01); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(framelog.MarkPath(frames(dir))); err != nil {
					t.Fatal(err)
				}
			},
			want: "FAILED: store has 31 entries but the checkpoint file says 32",
			also: "bytes of a write cut short",
		},
		{
			// The durable mark (decision 045) covers the acknowledged
			// last frame: damage there is corruption, not a torn tail.
			name: "last frame's byte flipped, under the durable mark",
			tamper: func(t *testing.T, dir string) {
				if err := framelogtest.FlipByte(frames(dir), 31, 40, 0x01); err != nil {
					t.Fatal(err)
				}
			},
			want: "FAILED: entry 31: the frame file does not verify",
			also: "below the durable mark",
		},
		{
			name: "a middle frame's byte flipped, CRC not fixed",
			tamper: func(t *testing.T, dir string) {
				if err := framelogtest.FlipByte(frames(dir), 10, 40, 0x01); err != nil {
					t.Fatal(err)
				}
			},
			want: "FAILED: entry 10: the frame file does not verify from there on: framelog: ",
			also: "corrupt frame 10 at offset ",
		},
		{
			name: "two frames swapped, CRCs valid",
			tamper: func(t *testing.T, dir string) {
				edit(t, dir, func(f *framelogtest.File) error { return f.SwapFrames(5, 6) })
			},
			want: "FAILED: entry 5: the frame file does not verify from there on: framelog: ",
			also: "corrupt frame 5 at offset ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, clean, dir)
			tc.tamper(t, dir)
			out, code := runCmd(t, newVerifyCmd(), "--data-dir", dir)
			if code != 1 || !strings.Contains(out, tc.want) || !strings.Contains(out, tc.also) {
				t.Fatalf("exit %d, want 1 and %q:\n%s", code, tc.want, out)
			}
		})
	}
}

// TestStartupRefusesCorruptFrameFile: a frame file damaged in the middle
// (a byte flipped, its CRC not fixed) stops the start with exit 1 and the
// damaged frame named, even with allow_unverified_start: nothing may be
// appended after a frame that does not verify.
func TestStartupRefusesCorruptFrameFile(t *testing.T) {
	dir, admin, cfg := startupDir(t)
	stopServe(t, startServe(t, filepath.Join(dir, "warden.yaml"), admin))
	stopServe(t, startServe(t, filepath.Join(dir, "warden.yaml"), admin)) // two runs: frames past the first
	fp := sqlite.FramesPath(filepath.Join(dir, "data", "audit.db"))
	if err := framelogtest.FlipByte(fp, 1, 40, 0x01); err != nil {
		t.Fatal(err)
	}
	for _, allow := range []bool{false, true} {
		y := cfg
		if allow {
			y += "audit:\n  allow_unverified_start: true\n"
		}
		writeFiles(t, dir, map[string]string{"warden.yaml": y})
		code, out := runWarden(t, dir, "serve", "--config", "warden.yaml")
		if code != 1 || !strings.Contains(out, "corrupt frame 1 at offset") {
			t.Fatalf("serve (allow_unverified_start %v) on a damaged frame file: exit %d:\n%s", allow, code, out)
		}
	}
}

// TestStartupRefusesForgedFrameHistoryHead: a history head in a middle
// frame replaced by one signed with another key, the checkpoints table
// left intact (decision 047). `warden serve` exits 1 naming the
// checkpoint and both copies (the frame's head, the table's row), and
// `warden verify` says FAILED at the same checkpoint.
func TestStartupRefusesForgedFrameHistoryHead(t *testing.T) {
	dir, admin, cfg := startupDir(t)
	// Every batch's head joins the history: each run's frames carry one.
	writeFiles(t, dir, map[string]string{"warden.yaml": cfg + "audit:\n  checkpoint_every: 1\n"})
	stopServe(t, startServe(t, filepath.Join(dir, "warden.yaml"), admin))
	stopServe(t, startServe(t, filepath.Join(dir, "warden.yaml"), admin))
	fp := sqlite.FramesPath(filepath.Join(dir, "data", "audit.db"))
	f, err := framelogtest.Read(fp)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Frames) < 3 || !f.Frames[1].HeadHistory {
		t.Fatalf("%d frames, frame 1 history head %v: want a history head in a middle frame", len(f.Frames), len(f.Frames) > 1 && f.Frames[1].HeadHistory)
	}
	size := f.Frames[1].FirstSeq + int64(len(f.Frames[1].Records))
	skey, _, err := note.GenerateKey(rand.Reader, "acme-audit")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := audit.SignCheckpoint(signer, size, tlog.Hash{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetHead(1, c.Note, true); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(fp); err != nil {
		t.Fatal(err)
	}
	code, out := runWarden(t, dir, "serve", "--config", "warden.yaml")
	want := []string{
		"does not verify",
		fmt.Sprintf("(size %d, the history head in frame 1 of audit.db.frames; the checkpoints table holds another note of that size)", size),
		"checkpoint signature invalid",
	}
	if code != 1 {
		t.Fatalf("serve on a store with a forged middle frame head: exit %d:\n%s", code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("serve's output lacks %q:\n%s", w, out)
		}
	}
	out, code = runCmd(t, newVerifyCmd(), "--data-dir", filepath.Join(dir, "data"))
	if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, want[1]) {
		t.Fatalf("verify: exit %d, want 1, FAILED and %q:\n%s", code, want[1], out)
	}
}
