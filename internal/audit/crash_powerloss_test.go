package audit_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// TestCrashPowerLoss simulates a power loss after SIGKILL: the frame file
// loses an arbitrary part of what was written after the last
// acknowledged batch (an acknowledged batch was fsynced before its
// answer, so it survives; anything after it may not). Two shapes: the
// file cut (a growing file's new size not committed), and, since the file
// is preallocated (decisions 044, 045), a range of pages lost (zeros)
// while later ones landed, past both the acknowledged frames and the
// durable mark. For each, on a copy of the store: Open cuts the torn tail
// (or finds the file ends on a frame), every acknowledged entry is there
// and the store verifies; a Log then starts on it and appends.
func TestCrashPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test spawns processes")
	}
	dir := t.TempDir()
	acked := map[int64]string{}
	rng := rand.New(rand.NewPCG(13, 42))
	cuts, removed, holes := 0, 0, 0
	// Two rounds, more while no kill left frames after the acknowledged
	// ones (the kill may land just after a flush was answered).
	for round := 0; round < 2 || ((removed == 0 || holes == 0) && round < 8); round++ {
		crashOnce(t, dir, 250+round*171, acked)
		var maxAcked int64 = -1
		for seq := range acked {
			maxAcked = max(maxAcked, seq)
		}
		fp := sqlite.FramesPath(filepath.Join(dir, "audit.db"))
		ackEnd, size, base := ackedEnd(t, fp, maxAcked)
		full, err := os.ReadFile(fp)
		if err != nil {
			t.Fatal(err)
		}
		nz := int64(len(bytes.TrimRight(full, "\x00")))
		// Nothing below the durable mark can be lost: it covers frames an
		// fdatasync had made durable.
		lo := max(ackEnd, framelog.ReadMark(framelog.MarkPath(fp), base))
		// Cut at the end of the last acknowledged frame, inside the
		// frames after it, at random offsets up to their end, and at the
		// file's size (in the preallocated zeros).
		offsets := []int64{ackEnd, size, nz}
		for range 4 {
			offsets = append(offsets, ackEnd+rng.Int64N(nz-ackEnd+1))
		}
		t.Logf("round %d: acknowledged frames end at %d, the frames at %d (mark or more: %d), the file at %d", round, ackEnd, nz, lo, size)
		for i, off := range offsets {
			cuts++
			if off < nz {
				removed++
			}
			cp := filepath.Join(t.TempDir(), "copy")
			copyStore(t, dir, cp)
			if err := os.Truncate(sqlite.FramesPath(filepath.Join(cp, "audit.db")), off); err != nil {
				t.Fatal(err)
			}
			checkAfterPowerLoss(t, cp, acked, round, i, off, ackEnd)
		}
		// Pages lost out of order: [a, b) zeroed, what follows kept.
		for i := range 4 {
			if nz-lo < 2 {
				break
			}
			a := lo + rng.Int64N(nz-lo-1)
			b := a + 1 + rng.Int64N(min(nz-a-1, 8192))
			if i == 0 {
				b = min(a+4096, nz-1)
			}
			holes++
			cp := filepath.Join(t.TempDir(), "copy")
			copyStore(t, dir, cp)
			data := bytes.Clone(full)
			clear(data[a:b])
			if err := os.WriteFile(sqlite.FramesPath(filepath.Join(cp, "audit.db")), data, 0o600); err != nil {
				t.Fatal(err)
			}
			checkAfterPowerLoss(t, cp, acked, round, 100+i, a, ackEnd)
		}
	}
	t.Logf("%d cuts (%d removing bytes), %d holes, %d acknowledged entries", cuts, removed, holes, len(acked))
	if removed == 0 || holes == 0 {
		t.Fatal("no cut removed anything: the child never had unacknowledged frames at the kill")
	}
}

// ackedEnd returns the offset just past the frame holding seq, the
// frame file's size and its base.
func ackedEnd(t *testing.T, path string, seq int64) (int64, int64, int64) {
	t.Helper()
	fr, _, err := framelog.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	frame, _, err := fr.Find(seq)
	if err != nil {
		t.Fatalf("acknowledged entry %d is not in the frame file: %v", seq, err)
	}
	off := int64(32) // the file header; frames follow one another
	for k := 0; k <= frame; k++ {
		p, err := fr.ReadFrame(k)
		if err != nil {
			t.Fatal(err)
		}
		off += 16 + int64(len(p))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return off, fi.Size(), fr.Base()
}

func checkAfterPowerLoss(t *testing.T, dir string, acked map[int64]string, round, i int, off, ackEnd int64) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(dir, "audit.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("round %d cut %d at %d (acknowledged end %d): Open: %v", round, i, off, ackEnd, err)
	}
	// The frames (up to the last non-zero byte: zeros after them are
	// the preallocated end) end between the acknowledged ones and the cut.
	b, err := os.ReadFile(sqlite.FramesPath(path))
	if nz := int64(len(bytes.TrimRight(b, "\x00"))); err != nil || nz < ackEnd || nz > off {
		t.Fatalf("round %d cut %d: frames end at %d after Open, want [%d, %d] (%v)", round, i, nz, ackEnd, off, err)
	}
	v := mustVerifier(t, dir)
	if _, err := audit.Verify(ctx, st, v, audit.VerifyOptions{SingleWriter: true}); err != nil {
		t.Fatalf("round %d cut %d at %d: verify: %v", round, i, off, err)
	}
	for seq, id := range acked {
		recs, err := st.ReadRecords(ctx, seq, seq+1)
		if err != nil {
			t.Fatalf("round %d cut %d at %d: acknowledged entry %d is missing: %v", round, i, off, seq, err)
		}
		e, err := audit.ParseEntry(seq, recs[0].Data)
		if err != nil || e.ID != id {
			t.Fatalf("round %d cut %d: entry %d is %v (%v), acknowledged as %s", round, i, seq, e, err, id)
		}
	}
	// A gateway starts on it (verifying, signing what is unsigned) and
	// goes on appending.
	cfg := audit.Config{CheckpointEvery: 50}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	s, _, err := audit.LoadSigner(cfg.SigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, st, cfg, s, v, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("round %d cut %d at %d: audit.Open: %v", round, i, off, err)
	}
	if _, err := l.Append(ctx, request(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(ctx, st, v, audit.VerifyOptions{SingleWriter: true}); err != nil {
		t.Fatalf("round %d cut %d at %d: verify after appending: %v", round, i, off, err)
	}
	st.Close()
}

// copyStore copies the store's files (the database, its WAL, the frame
// file and its durable mark) and the keys of the data dir src to dst. The checkpoint and head
// files are left out: a power loss may take them back too, and the
// store alone must verify.
func copyStore(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dst, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	names := []string{"audit.db", "audit.db-wal", "audit.db.frames", "audit.db.frames.mark", filepath.Join("keys", audit.SignerFile)}
	for _, n := range names {
		in, err := os.Open(filepath.Join(src, n))
		if os.IsNotExist(err) && (n == "audit.db-wal" || n == "audit.db.frames.mark") {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dst, n), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
