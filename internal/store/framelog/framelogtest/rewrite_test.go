package framelogtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/store/framelog"
)

// sizes are the record counts of the test log's frames.
var sizes = []int{1, 3, 5, 2, 4, 7}

func rec(seq int64) []byte { return []byte(fmt.Sprintf(`{"seq":%d,"user":"alice"}`, seq)) }

// hashesOf computes the stored hashes of records [base, base+len(recs))
// with prefix answering the hashes below base's.
func hashesOf(t *testing.T, base int64, recs [][]byte, prefix []tlog.Hash) []tlog.Hash {
	t.Helper()
	all := slices.Clone(prefix)
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for k, x := range idx {
			out[k] = all[x]
		}
		return out, nil
	})
	for n, d := range recs {
		hs, err := tlog.StoredHashes(base+int64(n), d, r)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, hs...)
	}
	return all[len(prefix):]
}

// buildLog writes a log at base (its hashes below base's are prefix)
// with frames of sizes records each, every frame with a head, and
// returns its path and records.
func buildLog(t *testing.T, base int64, prefix []tlog.Hash) (string, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db.frames")
	l, err := framelog.Create(path, base)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var recs [][]byte
	seq := base
	for _, n := range sizes {
		for k := 0; k < n; k++ {
			recs = append(recs, rec(seq+int64(k)))
		}
		seq += int64(n)
	}
	hs := hashesOf(t, base, recs, prefix)
	lo := tlog.StoredHashCount(base)
	seq = base
	for i, n := range sizes {
		b := framelog.Batch{
			FirstSeq:    seq,
			Records:     recs[seq-base : seq-base+int64(n)],
			HashStart:   tlog.StoredHashCount(seq),
			Hashes:      hs[tlog.StoredHashCount(seq)-lo : tlog.StoredHashCount(seq+int64(n))-lo],
			Head:        []byte(fmt.Sprintf("head %d\n", seq+int64(n))),
			HeadHistory: i%2 == 0,
		}
		if err := l.AppendBatch(&b); err != nil {
			t.Fatal(err)
		}
		seq += int64(n)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	return path, recs
}

// reopen opens the rewritten file with framelog.Open (which verifies
// every frame and the chain) and returns its records and stored hashes.
func reopen(t *testing.T, path string) (*framelog.Log, [][]byte, []tlog.Hash) {
	t.Helper()
	w, cut, err := framelog.Open(path)
	if err != nil {
		t.Fatalf("framelog.Open of the rewritten file: %v", err)
	}
	w.Close()
	if cut != 0 {
		t.Fatalf("Open cut %d bytes of a rewritten file", cut)
	}
	l, _, err := framelog.OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var recs [][]byte
	var hs []tlog.Hash
	for i := 0; i < l.Frames(); i++ {
		b, err := l.ReadBatch(i)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, b.Records...)
		hs = append(hs, b.Hashes...)
	}
	return l, recs, hs
}

func mustRead(t *testing.T, path string) *File {
	t.Helper()
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustWrite(t *testing.T, f *File, path string) {
	t.Helper()
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
}

func TestNoOpRewriteIsIdentical(t *testing.T) {
	for _, base := range []int64{0, 1000} {
		t.Run(fmt.Sprint("base ", base), func(t *testing.T) {
			prefix := hashesOf(t, 0, recsFrom(0, base), nil)
			path, _ := buildLog(t, base, prefix)
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f := mustRead(t, path)
			if f.Base != base || len(f.Frames) != len(sizes) || f.Torn != 0 {
				t.Fatalf("read base %d, %d frames, torn %d", f.Base, len(f.Frames), f.Torn)
			}
			mustWrite(t, f, path)
			got, _ := os.ReadFile(path)
			if !bytes.Equal(got, want) {
				t.Fatalf("a no-op rewrite changed the file (%d bytes, was %d)", len(got), len(want))
			}
			// Renumbering with the hashes as they are is a no-op too.
			if err := f.renumber(f.flatHashes()); err != nil {
				t.Fatal(err)
			}
			if b, _ := f.Encode(); !bytes.Equal(b, want) {
				t.Fatal("renumber of an untouched file changed it")
			}
		})
	}
}

func recsFrom(from, to int64) [][]byte {
	var out [][]byte
	for s := from; s < to; s++ {
		out = append(out, rec(s))
	}
	return out
}

// The edits change exactly what they say, and framelog.Open accepts the
// result: CRCs and chain are valid, so only the tree can catch them.
func TestOpsProduceValidFiles(t *testing.T) {
	path0, recs0 := buildLog(t, 0, nil)
	hs0 := hashesOf(t, 0, recs0, nil)
	n0 := int64(len(recs0))
	fresh := func(t *testing.T) (string, *File) {
		p := filepath.Join(t.TempDir(), "frames")
		b, _ := os.ReadFile(path0)
		os.WriteFile(p, b, 0o600)
		return p, mustRead(t, p)
	}
	t.Run("SetRecord", func(t *testing.T) {
		p, f := fresh(t)
		if err := f.SetRecord(7, []byte("forged")); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, p)
		_, recs, hs := reopen(t, p)
		want := slices.Clone(recs0)
		want[7] = []byte("forged")
		equalRecs(t, recs, want)
		equalHashes(t, hs, hs0)
		// Record gives the File's own bytes: editing them edits the record.
		r, _ := f.Record(8)
		r[0] = '['
		mustWrite(t, f, p)
		_, recs, _ = reopen(t, p)
		if recs[8][0] != '[' {
			t.Fatal("edit through Record lost")
		}
	})
	t.Run("SwapRecords", func(t *testing.T) {
		p, f := fresh(t)
		if err := f.SwapRecords(3, 4); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, p)
		_, recs, hs := reopen(t, p)
		want := slices.Clone(recs0)
		want[3], want[4] = want[4], want[3]
		equalRecs(t, recs, want)
		equalHashes(t, hs, hs0)
	})
	for _, cut := range []int64{0, 1, 2, 4, 9, 10, n0 - 1, n0} {
		t.Run(fmt.Sprint("TruncateAt ", cut), func(t *testing.T) {
			p, f := fresh(t)
			if err := f.TruncateAt(cut); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, p)
			l, recs, hs := reopen(t, p)
			equalRecs(t, recs, recs0[:cut])
			equalHashes(t, hs, hs0[:tlog.StoredHashCount(cut)])
			if l.Size() != cut {
				t.Fatalf("size %d", l.Size())
			}
			// A cut inside a frame drops that frame's head; at a boundary
			// the last frame keeps its own.
			if l.Frames() > 0 {
				b, _ := l.ReadBatch(l.Frames() - 1)
				atBoundary := false
				var s int64
				for _, n := range sizes {
					s += int64(n)
					atBoundary = atBoundary || s == cut
				}
				if (b.Head != nil) != atBoundary {
					t.Fatalf("last frame's head %q after a cut at %d (boundary %v)", b.Head, cut, atBoundary)
				}
			}
		})
	}
	if err := mustRead(t, path0).TruncateAt(n0 + 1); err == nil {
		t.Fatal("TruncateAt past the end accepted")
	}
	t.Run("DropFrames", func(t *testing.T) {
		p, f := fresh(t)
		if err := f.DropFrames(2); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, p)
		l, recs, _ := reopen(t, p)
		cut := n0 - int64(sizes[len(sizes)-1]+sizes[len(sizes)-2])
		equalRecs(t, recs, recs0[:cut])
		if l.Frames() != len(sizes)-2 || l.Size() != cut {
			t.Fatalf("%d frames, size %d", l.Frames(), l.Size())
		}
	})
	for _, del := range []int64{0, 2, 9, n0 - 1} {
		t.Run(fmt.Sprint("DeleteRecord ", del), func(t *testing.T) {
			p, f := fresh(t)
			if err := f.DeleteRecord(del); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, p)
			l, recs, hs := reopen(t, p)
			equalRecs(t, recs, slices.Delete(slices.Clone(recs0), int(del), int(del)+1))
			// The hashes stay by index, the surplus at the end goes.
			equalHashes(t, hs, hs0[:tlog.StoredHashCount(n0-1)])
			if del == 0 && l.Frames() != len(sizes)-1 {
				t.Fatalf("the emptied one-record frame is still there: %d frames", l.Frames())
			}
		})
	}
	for _, ins := range []int64{0, 5, 9, n0} {
		t.Run(fmt.Sprint("InsertRecord ", ins), func(t *testing.T) {
			p, f := fresh(t)
			if err := f.InsertRecord(ins, []byte("forged")); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, f, p)
			_, recs, hs := reopen(t, p)
			want := slices.Insert(slices.Clone(recs0), int(ins), []byte("forged"))
			equalRecs(t, recs, want)
			// Old hashes by index; the new last record's computed over them.
			equalHashes(t, hs[:len(hs0)], hs0)
			tail := hashesOf(t, n0, want[n0:], hs0)
			equalHashes(t, hs[len(hs0):], tail)
		})
	}
	t.Run("SetHash", func(t *testing.T) {
		p, f := fresh(t)
		var z tlog.Hash
		if err := f.SetHash(2, z); err != nil {
			t.Fatal(err)
		}
		if err := f.SetHash(tlog.StoredHashCount(n0), z); err == nil {
			t.Fatal("SetHash past the end accepted")
		}
		mustWrite(t, f, p)
		l, _, hs := reopen(t, p)
		want := slices.Clone(hs0)
		want[2] = z
		equalHashes(t, hs, want)
		if got, _ := l.ReadHashes([]int64{2}); got[0] != z {
			t.Fatal("ReadHashes does not see the edit")
		}
	})
	t.Run("Rehash all", func(t *testing.T) {
		p, f := fresh(t)
		r, _ := f.Record(9)
		copy(r[bytes.Index(r, []byte("alice")):], "mallo")
		if err := f.Rehash(0, f.Size()); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, p)
		l, recs, hs := reopen(t, p)
		equalHashes(t, hs, hashesOf(t, 0, recs, nil))
		// Consistent, so every proof from the stored hashes works, but the
		// tree is not the one the heads were signed for.
		th, err := tlog.TreeHash(n0, l)
		if err != nil {
			t.Fatal(err)
		}
		orig, _ := tlog.TreeHash(n0, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for k, x := range idx {
				out[k] = hs0[x]
			}
			return out, nil
		}))
		if th == orig {
			t.Fatal("rehashed tree has the signed tree's hash")
		}
	})
	t.Run("Rehash one frame", func(t *testing.T) {
		p, f := fresh(t)
		fr, _ := f.FrameOf(9) // frame 3: records [9, 11)
		b := f.Frames[fr]
		r, _ := f.Record(9)
		r[2] = 'X'
		if err := f.Rehash(b.FirstSeq, b.FirstSeq+int64(len(b.Records))); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, p)
		_, recs, hs := reopen(t, p)
		lo, hi := tlog.StoredHashCount(b.FirstSeq), tlog.StoredHashCount(b.FirstSeq+int64(len(b.Records)))
		equalHashes(t, hs[:lo], hs0[:lo])
		equalHashes(t, hs[lo:hi], hashesOf(t, 0, recs, nil)[lo:hi])
		equalHashes(t, hs[hi:], hs0[hi:])
		if slices.Equal(hs[lo:hi], hs0[lo:hi]) {
			t.Fatal("rehash of an edited frame changed no hash")
		}
	})
	t.Run("SetHead", func(t *testing.T) {
		p, f := fresh(t)
		if err := f.SetHead(1, []byte("other head\n"), true); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, p)
		l, _, _ := reopen(t, p)
		b, _ := l.ReadBatch(1)
		if string(b.Head) != "other head\n" || !b.HeadHistory {
			t.Fatalf("head %q history %v", b.Head, b.HeadHistory)
		}
	})
}

// SwapFrames keeps every CRC valid and breaks the chain: framelog
// refuses the file as corrupt at the first frame out of place.
func TestSwapFramesIsCorrupt(t *testing.T) {
	path, _ := buildLog(t, 0, nil)
	f := mustRead(t, path)
	if err := f.SwapFrames(2, 4); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, path)
	for name, open := range map[string]func(string) (*framelog.Log, int64, error){"Open": framelog.Open, "OpenReadOnly": framelog.OpenReadOnly} {
		_, _, err := open(path)
		var ce *framelog.CorruptError
		if !errors.As(err, &ce) || ce.Frame != 2 {
			t.Fatalf("%s of swapped frames: %v, want a CorruptError at frame 2", name, err)
		}
	}
	if _, err := Read(path); err == nil {
		t.Fatal("Read accepted a file framelog refuses")
	}
}

// FlipByte changes one byte and no CRC: in a middle frame that is
// corruption naming the frame; in the last frame it is a torn tail.
func TestFlipByte(t *testing.T) {
	path, recs := buildLog(t, 0, nil)
	orig, _ := os.ReadFile(path)
	off1, err := FrameOffset(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	if off1 != fileHeader+frameHeader+int64(len(mustEncodeFrame(t, path, 0))) {
		t.Fatalf("frame 1 at %d", off1)
	}
	if err := FlipByte(path, 1, frameHeader+40, 0x01); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if diff := countDiff(b, orig); diff != 1 || b[off1+frameHeader+40] == orig[off1+frameHeader+40] {
		t.Fatalf("%d bytes differ", diff)
	}
	_, _, err = framelog.Open(path)
	var ce *framelog.CorruptError
	if !errors.As(err, &ce) || ce.Frame != 1 || ce.Offset != off1 {
		t.Fatalf("Open after a flip in frame 1: %v", err)
	}

	os.WriteFile(path, orig, 0o600)
	last := len(sizes) - 1
	if err := FlipByte(path, last, frameHeader+3, 0x80); err != nil {
		t.Fatal(err)
	}
	f := mustRead(t, path)
	if len(f.Frames) != last || f.Torn == 0 {
		t.Fatalf("flip in the last frame: %d frames, torn %d", len(f.Frames), f.Torn)
	}
	l, cut, err := framelog.Open(path)
	if err != nil || cut == 0 || l.Size() != int64(len(recs)-sizes[last]) {
		t.Fatalf("Open after a flip in the last frame: cut %d, err %v", cut, err)
	}
	l.Close()
	if _, err := FrameOffset(path, last+1); err == nil {
		t.Fatal("FrameOffset past the last frame")
	}
}

func mustEncodeFrame(t *testing.T, path string, i int) []byte {
	t.Helper()
	f := mustRead(t, path)
	p, err := framelog.EncodeBatch(nil, &f.Frames[i])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + max(len(a), len(b)) - min(len(a), len(b))
}

// On a file whose base is not 0 the hash operations need the prefix's
// hashes (a migrated store's table), and use them.
func TestBasePrefix(t *testing.T) {
	const base = 13
	prefix := hashesOf(t, 0, recsFrom(0, base), nil)
	path, recs := buildLog(t, base, prefix)
	f := mustRead(t, path)
	if err := f.Rehash(base, f.Size()); err == nil {
		t.Fatal("Rehash computed record 13's hashes without record 12's leaf hash")
	}
	f = mustRead(t, path)
	f.Prefix = tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for k, x := range idx {
			out[k] = prefix[x]
		}
		return out, nil
	})
	if err := f.InsertRecord(f.Size(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := f.Rehash(base, f.Size()); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, path)
	_, got, hs := reopen(t, path)
	want := append(slices.Clone(recs), []byte("x"))
	equalRecs(t, got, want)
	equalHashes(t, hs, hashesOf(t, base, want, prefix))
}

func equalRecs(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func equalHashes(t *testing.T, got, want []tlog.Hash) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d hashes, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("hash %d differs", i)
		}
	}
}

// TestZeroTailStripped: a preallocated file (zeros after the frames,
// decisions 044 and 045) reads with no torn tail, and Write writes the
// frames only: the rewritten file is the frames without the zeros.
func TestZeroTailStripped(t *testing.T) {
	path, _ := buildLog(t, 0, nil)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(bytes.Clone(orig), make([]byte, 64<<10)...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Read(path)
	if err != nil || f.Torn != 0 || len(f.Frames) != len(sizes) {
		t.Fatalf("Read: %v, torn %d, %d frames", err, f.Torn, len(f.Frames))
	}
	out := filepath.Join(t.TempDir(), "rewritten")
	if err := f.Write(out); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, orig) {
		t.Fatalf("rewritten: %d bytes, want the %d of the frames", len(got), len(orig))
	}
}
