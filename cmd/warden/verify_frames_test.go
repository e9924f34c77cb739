package main

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// TestVerifyFrameFile: warden verify reads the frame file without
// writing it: a torn tail is reported and left in place (exit 0), a frame
// damaged in the middle is a divergence naming the entry, the frame and
// its offset (exit 1), not an I/O error (exit 2).
func TestVerifyFrameFile(t *testing.T) {
	dir := t.TempDir()
	cfg := audit.Config{CheckpointEvery: 10}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	ctx := context.Background()
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "frames-verify")
	if err != nil {
		t.Fatal(err)
	}
	writeAdmissions(t, cfg, s, v, 30)
	fp := sqlite.FramesPath(cfg.Path)

	out, code := runCmd(t, newVerifyCmd(), "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "verified entries [0, 32)") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}

	// A torn tail: reported, left, still OK. The file is preallocated: a
	// torn write lands at the frames' end (the last non-zero byte), not
	// at EOF.
	full, err := os.ReadFile(fp)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(fp, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("WFR1"), int64(len(bytes.TrimRight(full, "\x00"))))
	f.Close()
	before, _ := os.Stat(fp)
	out, code = runCmd(t, newVerifyCmd(), "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "4 bytes of a write cut short") || !strings.Contains(out, "verified entries [0, 32)") {
		t.Fatalf("verify with a torn tail: exit %d\n%s", code, out)
	}
	if after, _ := os.Stat(fp); after.Size() != before.Size() {
		t.Fatalf("verify changed the frame file: %d → %d bytes", before.Size(), after.Size())
	}

	// A flipped byte in the payload of frame 2: a divergence at its
	// first entry.
	fr, _, err := framelog.OpenReadOnly(fp)
	if err != nil {
		t.Fatal(err)
	}
	if fr.Frames() < 4 {
		t.Fatalf("only %d frames", fr.Frames())
	}
	end1, seq2 := frameEnd(t, fr, 1)
	fr.Close()
	b, err := os.ReadFile(fp)
	if err != nil {
		t.Fatal(err)
	}
	b[end1+16+40] ^= 0x01 // inside frame 2's payload (a hash)
	if err := os.WriteFile(fp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runCmd(t, newVerifyCmd(), "--data-dir", dir)
	want := "FAILED: entry " + itoa(seq2) + ": the frame file does not verify"
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "corrupt frame 2 at offset "+itoa(end1)) {
		t.Fatalf("verify of a damaged frame: exit %d, want 1 and %q\n%s", code, want, out)
	}
	// And the gateway refuses to open it (nothing is cut or changed).
	if st, err := sqlite.Open(ctx, cfg.Path); err == nil {
		st.Close()
		t.Fatal("Open of a store with a damaged frame succeeded")
	}
	if after, _ := os.ReadFile(fp); string(after) != string(b) {
		t.Fatal("Open changed a damaged frame file")
	}
}

// frameEnd returns the offset just past frame i and the first seq of
// frame i+1.
func frameEnd(t *testing.T, fr *framelog.Log, i int) (int64, int64) {
	t.Helper()
	b, err := fr.ReadBatch(i)
	if err != nil {
		t.Fatal(err)
	}
	// Frames are laid out one after the other from offset 32.
	off := int64(32)
	for k := 0; k <= i; k++ {
		pk, err := fr.ReadFrame(k)
		if err != nil {
			t.Fatal(err)
		}
		off += 16 + int64(len(pk))
	}
	return off, b.FirstSeq + int64(len(b.Records))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
