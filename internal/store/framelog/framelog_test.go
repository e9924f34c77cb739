package framelog

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// build writes a log at a new path with batches of the given sizes from
// base, synced and closed, and returns its path, the batches and each
// frame's offset (offs[len(sizes)] is the file's size).
func build(t *testing.T, base int64, sizes ...int) (string, []*Batch, []int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Create(path, base)
	if err != nil {
		t.Fatal(err)
	}
	bs, offs := appendSizes(t, l, newChain(t, base), false, sizes...)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, bs, offs
}

// appendSizes appends to l batches of the given sizes from c (each synced
// if syncEach) and returns them and each frame's offset, then the end.
func appendSizes(t *testing.T, l *Log, c *chain, syncEach bool, sizes ...int) ([]*Batch, []int64) {
	t.Helper()
	var bs []*Batch
	offs := []int64{l.end}
	for _, n := range sizes {
		b := c.next(t, n)
		if err := l.AppendBatch(b); err != nil {
			t.Fatal(err)
		}
		if syncEach {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		bs = append(bs, b)
		offs = append(offs, l.end)
	}
	return bs, offs
}

// checkFrames reads every frame of l and compares it with want.
func checkFrames(t *testing.T, l *Log, want []*Batch) {
	t.Helper()
	if l.Frames() != len(want) {
		t.Fatalf("%d frames, want %d", l.Frames(), len(want))
	}
	size := l.Base()
	for i, w := range want {
		got, err := l.ReadBatch(i)
		if err != nil {
			t.Fatal(err)
		}
		equalBatch(t, &got, w)
		size = w.FirstSeq + int64(len(w.Records))
	}
	if l.Size() != size {
		t.Fatalf("Size %d, want %d", l.Size(), size)
	}
}

func TestAppendReadReopen(t *testing.T) {
	for _, base := range []int64{0, 1000} {
		path, bs, offs := build(t, base, 1, 3, 64, 1, 256, 2)
		l, cut, err := Open(path)
		if err != nil || cut != 0 {
			t.Fatalf("Open: cut %d, %v", cut, err)
		}
		if l.Base() != base {
			t.Fatalf("Base %d, want %d", l.Base(), base)
		}
		checkFrames(t, l, bs)
		// Find: every record's frame; outside the log, not found.
		for i, b := range bs {
			for s := b.FirstSeq; s < b.FirstSeq+int64(len(b.Records)); s++ {
				if f, first, err := l.Find(s); err != nil || f != i || first != b.FirstSeq {
					t.Fatalf("Find(%d) = %d, %d, %v; want %d, %d", s, f, first, err, i, b.FirstSeq)
				}
			}
		}
		for _, s := range []int64{base - 1, l.Size(), l.Size() + 100} {
			if _, _, err := l.Find(s); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Find(%d): %v, want ErrNotFound", s, err)
			}
		}
		if _, err := l.ReadFrame(len(bs)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ReadFrame past the end: %v", err)
		}
		// ReadHashes: every hash the frames hold, one by one and all at
		// once; outside them, not found.
		var all []int64
		var want []tlog.Hash
		for _, b := range bs {
			for i, h := range b.Hashes {
				all = append(all, b.HashStart+int64(i))
				want = append(want, h)
			}
		}
		got, err := l.ReadHashes(all)
		if err != nil || len(got) != len(want) {
			t.Fatalf("ReadHashes: %d hashes, %v", len(got), err)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("hash %d differs", all[i])
			}
		}
		if h, err := l.ReadHashes([]int64{all[len(all)-1]}); err != nil || h[0] != want[len(want)-1] {
			t.Fatalf("ReadHashes of the last hash: %v", err)
		}
		for _, h := range []int64{tlog.StoredHashCount(base) - 1, all[len(all)-1] + 1} {
			if _, err := l.ReadHashes([]int64{all[0], h}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("ReadHashes(%d): %v, want ErrNotFound", h, err)
			}
		}
		// Scan from frame 2 sees frames 2.. in order.
		var seen []int
		if err := l.Scan(2, func(i int, p []byte) error {
			b, err := DecodeBatch(p)
			if err != nil {
				return err
			}
			equalBatch(t, &b, bs[i])
			seen = append(seen, i)
			return nil
		}); err != nil || len(seen) != len(bs)-2 || seen[0] != 2 {
			t.Fatalf("Scan: %v, saw %v", err, seen)
		}
		// Appending goes on where the file ends, after a reopen too.
		more := newChain(t, l.Size()).next(t, 5)
		if err := l.AppendBatch(more); err != nil {
			t.Fatal(err)
		}
		end := l.End()
		if l.Frames() != len(bs) || end != offs[len(offs)-1] {
			t.Fatalf("a frame is visible before Sync (%d frames, End %d)", l.Frames(), end)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		checkFrames(t, l, append(bs, more))
		l.Close()
		l, _, err = Open(path)
		if err != nil {
			t.Fatal(err)
		}
		checkFrames(t, l, append(bs, more))
		l.Close()
	}
}

func TestAppendRefusesBadChain(t *testing.T) {
	path, bs, _ := build(t, 0, 2, 2)
	l, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, first := range []int64{0, 3, 5} { // a repeat, an overlap, a gap
		if err := l.AppendBatch(newChain(t, first).next(t, 1)); !errors.Is(err, ErrChain) {
			t.Fatalf("batch at %d: %v, want ErrChain", first, err)
		}
		p, _ := EncodeBatch(nil, newChain(t, first).next(t, 1))
		if err := l.Append(p); !errors.Is(err, ErrChain) {
			t.Fatalf("payload at %d: %v, want ErrChain", first, err)
		}
	}
	if err := l.Append([]byte("short")); !errors.Is(err, ErrBatch) {
		t.Fatalf("bad payload: %v, want ErrBatch", err)
	}
	// Refusals write nothing and do not break the log.
	good := newChain(t, 4).next(t, 3)
	if err := l.AppendBatch(good); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, l, append(bs, good))
}

// TestTornTailEveryOffset cuts the file at every length inside its last
// frame: Open cuts back to the frame before, which is intact, and appends
// go on from there; OpenReadOnly leaves the file alone. The torn bytes
// counted are those up to the last non-zero one (zeros after it are a
// preallocated end): they are truncated when they run to EOF, zeroed
// otherwise.
func TestTornTailEveryOffset(t *testing.T) {
	path, bs, offs := build(t, 0, 3, 1, 4)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last := offs[len(offs)-2]
	for n := last + 1; n < int64(len(full)); n++ {
		torn := filepath.Join(t.TempDir(), "torn.log")
		if err := os.WriteFile(torn, full[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		nz := int64(len(bytes.TrimRight(full[:n], "\x00")))
		want, wantSize := max(nz-last, 0), n
		if nz == n {
			wantSize = last
		}
		ro, tail, err := OpenReadOnly(torn)
		if err != nil || tail != want {
			t.Fatalf("cut at %d: OpenReadOnly: torn %d, %v; want %d", n, tail, err, want)
		}
		if ro.End() != last {
			t.Fatalf("cut at %d: End %d, want %d", n, ro.End(), last)
		}
		checkFrames(t, ro, bs[:len(bs)-1])
		ro.Close()
		if fi, _ := os.Stat(torn); fi.Size() != n {
			t.Fatalf("OpenReadOnly changed the file's size to %d", fi.Size())
		}
		l, cut, err := Open(torn)
		if err != nil || cut != want {
			t.Fatalf("cut at %d: Open: cut %d, %v; want %d", n, cut, err, want)
		}
		checkFrames(t, l, bs[:len(bs)-1])
		if fi, _ := os.Stat(torn); fi.Size() != wantSize {
			t.Fatalf("cut at %d: file is %d bytes after Open, want %d", n, fi.Size(), wantSize)
		}
		reappendRestores(t, l, bs[len(bs)-1], torn, full)
	}
}

// reappendRestores appends b (the frame a torn tail was cut from) to l,
// syncs and closes it, and checks the file at path is full again.
func reappendRestores(t *testing.T, l *Log, b *Batch, path string, full []byte) {
	t.Helper()
	if err := l.AppendBatch(b); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if got, _ := os.ReadFile(path); !bytes.Equal(got, full) {
		t.Fatalf("the re-appended frame does not restore the file (%d bytes, want %d; first diff at %d)", len(got), len(full), firstDiff(got, full))
	}
}

// TestTornTailShapes: other ways a last frame can be incomplete — zeros
// where it should be (a size extended before the data landed), a bad
// checksum in a complete last frame, garbage after the last frame.
func TestTornTailShapes(t *testing.T) {
	path, bs, offs := build(t, 0, 2, 2, 2)
	full, _ := os.ReadFile(path)
	last := offs[len(offs)-2]
	zeroed := bytes.Clone(full)
	clear(zeroed[last:])
	flipped := bytes.Clone(full)
	flipped[len(flipped)-1] ^= 0x40
	hdrFlipped := bytes.Clone(full)
	hdrFlipped[last+5] ^= 0x01
	garbage := append(bytes.Clone(full), []byte("\x00\x17not a frame, not anything")...)
	for name, tc := range map[string]struct {
		data   []byte
		frames int
		cut    int64
	}{
		"last frame zeroed":         {zeroed, 2, 0}, // zeros to EOF: a preallocated end
		"last frame's payload flip": {flipped, 2, int64(len(full)) - last},
		"last frame's header flip":  {hdrFlipped, 2, int64(len(full)) - last},
		"garbage after":             {garbage, 3, int64(len(garbage) - len(full))},
		"header only, no frames":    {full[:fileHeader], 0, 0},
		"header and a few bytes":    {full[:fileHeader+5], 0, 5},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "a.log")
			os.WriteFile(p, tc.data, 0o600)
			l, cut, err := Open(p)
			if err != nil || cut != tc.cut {
				t.Fatalf("Open: cut %d, %v; want cut %d", cut, err, tc.cut)
			}
			defer l.Close()
			checkFrames(t, l, bs[:tc.frames])
		})
	}
}

// TestBitFlipMiddleFrame flips one bit of every byte of a middle frame in
// turn: Open (and OpenReadOnly) fail naming that frame and its offset,
// and the file is left as it was.
func TestBitFlipMiddleFrame(t *testing.T) {
	path, _, offs := build(t, 0, 2, 3, 2)
	full, _ := os.ReadFile(path)
	p := filepath.Join(t.TempDir(), "flipped.log")
	for at := offs[1]; at < offs[2]; at++ {
		bad := bytes.Clone(full)
		bad[at] ^= 1 << (at % 8)
		if err := os.WriteFile(p, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, open := range []func(string) (*Log, int64, error){Open, OpenReadOnly} {
			l, _, err := open(p)
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				l.Close()
				t.Fatalf("flip at %d: %v, want a CorruptError", at, err)
			}
			if ce.Frame != 1 || ce.Offset != offs[1] {
				t.Fatalf("flip at %d: %v names frame %d at %d, want frame 1 at %d", at, err, ce.Frame, ce.Offset, offs[1])
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, bad) {
				t.Fatalf("flip at %d: Open changed the file", at)
			}
		}
	}
}

// writeRaw appends a frame around payload without any check.
func writeRaw(t *testing.T, path string, payload []byte) {
	t.Helper()
	l := &Log{buf: append(zeroHeader[:0:0], zeroHeader[:]...)}
	l.buf = append(l.buf, payload...)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	l.f, l.end = f, fi.Size()
	if err := l.write(0, 1); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptChain(t *testing.T) {
	enc := func(first int64, n int) []byte {
		p, err := EncodeBatch(nil, newChain(t, first).next(t, n))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	badPrefix := enc(7, 2)
	badPrefix[16]++ // hash start, with valid CRCs around it
	for name, tc := range map[string]struct {
		base     int64
		payloads [][]byte
		frame    int
	}{
		"gap":                   {0, [][]byte{enc(0, 2), enc(3, 1)}, 1},
		"overlap":               {0, [][]byte{enc(0, 2), enc(1, 1)}, 1},
		"repeat":                {0, [][]byte{enc(0, 2), enc(2, 1), enc(2, 1)}, 2},
		"first frame not base":  {5, [][]byte{enc(0, 5)}, 0},
		"hash start":            {7, [][]byte{badPrefix}, 0},
		"not a batch":           {0, [][]byte{enc(0, 1), []byte("a valid frame, not a batch")}, 1},
		"gap then a valid tail": {0, [][]byte{enc(0, 1), enc(2, 1), enc(3, 1)}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.log")
			l, err := Create(path, tc.base)
			if err != nil {
				t.Fatal(err)
			}
			l.Close()
			for _, p := range tc.payloads {
				writeRaw(t, path, p)
			}
			before, _ := os.ReadFile(path)
			_, _, err = Open(path)
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Frame != tc.frame {
				t.Fatalf("Open: %v, want a CorruptError for frame %d", err, tc.frame)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
				t.Fatal("Open changed a corrupt file")
			}
		})
	}
}

func TestNotALog(t *testing.T) {
	path, _, _ := build(t, 0, 1)
	full, _ := os.ReadFile(path)
	garbage := make([]byte, 4096)
	rand.NewChaCha8([32]byte{1}).Read(garbage)
	badVersion := bytes.Clone(full)
	badVersion[8] = 2
	for name, data := range map[string][]byte{
		"empty":            {},
		"garbage":          garbage,
		"short header":     full[:fileHeader-1],
		"header flipped":   badVersion,
		"zeros":            make([]byte, 100),
		"another log type": append([]byte("SQLite format 3\x00"), garbage...),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "a.log")
			os.WriteFile(p, data, 0o600)
			_, _, err := Open(p)
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Frame != -1 {
				t.Fatalf("Open: %v, want a CorruptError for the file header", err)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
				t.Fatal("Open changed the file")
			}
		})
	}
	if _, _, err := Open(filepath.Join(t.TempDir(), "none.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a missing file: %v", err)
	}
	if _, err := Create(path, 0); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create over a log: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, full) {
		t.Fatal("Create over a log changed it")
	}
	// Create leaves nothing but the log behind, whether it succeeds or not.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("%d files beside the log after Create, want none", len(ents)-1)
	}
	if _, err := Create(filepath.Join(t.TempDir(), "no", "such", "dir.log"), 0); err == nil {
		t.Fatal("Create in a missing directory succeeded")
	}
}

func TestLargeFrame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := Create(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := newChain(t, 0)
	small := c.next(t, 2)
	big := c.next(t, 2)
	big.Records[1] = bytes.Repeat([]byte("0123456789abcdef"), 17<<16) // 17 MiB
	after := newChain(t, 4).next(t, 1)
	for _, b := range []*Batch{small, big, after} {
		if err := l.AppendBatch(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkFrames(t, l, []*Batch{small, big, after})
	l.Close()
	l, cut, err := Open(path)
	if err != nil || cut != 0 {
		t.Fatalf("reopen: cut %d, %v", cut, err)
	}
	defer l.Close()
	checkFrames(t, l, []*Batch{small, big, after})
}

func TestReadOnly(t *testing.T) {
	path, bs, _ := build(t, 0, 1, 2)
	l, _, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkFrames(t, l, bs)
	if err := l.AppendBatch(newChain(t, 3).next(t, 1)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Append on a read-only log: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Sync on a read-only log: %v", err)
	}
	// A writer can open the file beside the reader, but not beside
	// another writer.
	w, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, err := Open(path); err == nil {
		t.Fatal("a second writer opened the log")
	}
}

// TestFailClosed: after a failed Sync or write, every later Append and
// Sync fails even once the cause is gone, and the frame that reached the
// page cache but not a Sync is not visible; a reopen recovers.
func TestFailClosed(t *testing.T) {
	for _, failing := range []string{"sync", "write"} {
		t.Run(failing, func(t *testing.T) {
			path, bs, _ := build(t, 0, 2)
			l, _, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			c := newChain(t, 2)
			b := c.next(t, 1)
			good := l.f
			broken, err := os.Open(path) // read-only: writes fail
			if err != nil {
				t.Fatal(err)
			}
			if failing == "sync" {
				broken.Close() // closed: fdatasync fails
				if err := l.AppendBatch(b); err != nil {
					t.Fatal(err)
				}
				l.f = broken
				if err := l.Sync(); err == nil {
					t.Fatal("Sync on a closed file succeeded")
				}
			} else {
				l.f = broken
				if err := l.AppendBatch(b); err == nil {
					t.Fatal("write on a read-only file succeeded")
				}
				broken.Close()
			}
			l.f = good
			if err := l.AppendBatch(c.next(t, 1)); !errors.Is(err, ErrFailed) {
				t.Fatalf("Append after a failed %s: %v, want ErrFailed", failing, err)
			}
			if err := l.Sync(); !errors.Is(err, ErrFailed) {
				t.Fatalf("Sync after a failed %s: %v, want ErrFailed", failing, err)
			}
			checkFrames(t, l, bs) // reads still work, and stop at the durable frames
			l.Close()
			l, _, err = Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.AppendBatch(newChain(t, l.Size()).next(t, 1)); err != nil {
				t.Fatalf("Append after reopening: %v", err)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	path, _, _ := build(t, 0, 1)
	l, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := l.AppendBatch(newChain(t, 1).next(t, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := l.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if _, err := l.ReadFrame(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadFrame after Close: %v", err)
	}
}

// TestReadSeesChange: a frame changed on disk after Open is refused on
// read, not returned.
func TestReadSeesChange(t *testing.T) {
	path, _, offs := build(t, 0, 1, 1)
	l, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{'X'}, offs[1]+frameHeader+batchPrefix+6)
	f.Close()
	var ce *CorruptError
	if _, err := l.ReadFrame(1); !errors.As(err, &ce) || ce.Frame != 1 {
		t.Fatalf("ReadFrame of a changed frame: %v", err)
	}
	if _, err := l.ReadFrame(0); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentReads: readers running beside the writer (and beside a
// Sync running apart from the appends, as the store's flusher does) see
// only durable frames, each intact, and the watermark never goes back.
func TestConcurrentReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := Create(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := newChain(t, 0)
	const n = 300
	var want []*Batch
	for i := range n {
		want = append(want, c.next(t, 1+i%5))
	}
	var appended atomic.Int64 // frames whose Append returned
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	check := func(ok bool, msg string) {
		if !ok {
			select {
			case errs <- errors.New(msg):
			default:
			}
		}
	}
	for range 3 {
		wg.Go(func() {
			prev := 0
			for !done.Load() {
				k := l.Frames()
				check(k >= prev, "Frames went back")
				check(int64(k) <= appended.Load(), "a frame is visible before its Append returned")
				prev = k
				if k == 0 {
					continue
				}
				i := rand.IntN(k)
				b, err := l.ReadBatch(i)
				check(err == nil, "ReadBatch of a durable frame failed")
				check(err == nil && b.FirstSeq == want[i].FirstSeq && bytes.Equal(b.Records[0], want[i].Records[0]), "frame content differs")
				s := l.Size()
				if s > 0 {
					f, _, err := l.Find(s - 1)
					check(err == nil && f < l.Frames(), "Find of the last durable record failed")
					h, err := l.ReadHashes([]int64{tlog.StoredHashCount(s) - 1})
					check(err == nil && h[0] == c.hs[tlog.StoredHashCount(s)-1], "ReadHashes of the last durable hash failed")
				}
			}
		})
	}
	// A flusher syncing apart from the writer.
	wg.Go(func() {
		for !done.Load() {
			check(l.Sync() == nil, "Sync failed")
		}
	})
	for i, b := range want {
		if err := l.AppendBatch(b); err != nil {
			t.Fatal(err)
		}
		appended.Store(int64(i + 1))
		if i%7 == 0 {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkFrames(t, l, want)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestOpenVisit: OpenVisit and OpenReadOnlyVisit hand every verified
// frame to the visitor once, in order, with its payload, and not a torn
// tail (at any offset of the last frame); a visitor's error fails the
// open, wrapped with the frame's number, and the file is left as it was
// (a torn tail is not cut).
func TestOpenVisit(t *testing.T) {
	path, bs, offs := build(t, 4, 3, 1, 4, 2)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	last := offs[len(offs)-2]
	opens := []struct {
		name string
		open func(string, Visitor) (*Log, int64, error)
	}{{"OpenVisit", OpenVisit}, {"OpenReadOnlyVisit", OpenReadOnlyVisit}}
	for _, o := range opens {
		for n := last; n <= int64(len(full)); n++ {
			p := filepath.Join(t.TempDir(), "v.log")
			if err := os.WriteFile(p, full[:n], 0o600); err != nil {
				t.Fatal(err)
			}
			want := bs
			if n < int64(len(full)) {
				want = bs[:len(bs)-1]
			}
			var got []int
			l, _, err := o.open(p, func(i int, payload []byte) error {
				b, err := DecodeBatch(payload)
				if err != nil {
					return err
				}
				if i >= len(want) {
					t.Fatalf("%s, file cut at %d: visited frame %d of %d", o.name, n, i, len(want))
				}
				equalBatch(t, &b, want[i])
				got = append(got, i)
				return nil
			})
			if err != nil {
				t.Fatalf("%s, file cut at %d: %v", o.name, n, err)
			}
			l.Close()
			if len(got) != len(want) || (len(got) > 0 && got[len(got)-1] != len(want)-1) {
				t.Fatalf("%s, file cut at %d: visited %v, want frames 0 to %d", o.name, n, got, len(want)-1)
			}
		}
		// A visitor's error.
		p := filepath.Join(t.TempDir(), "v.log")
		torn := append(bytes.Clone(full), full[offs[0]:offs[0]+20]...)
		if err := os.WriteFile(p, torn, 0o600); err != nil {
			t.Fatal(err)
		}
		stop := errors.New("stop here")
		_, _, err := o.open(p, func(i int, _ []byte) error {
			if i == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || !strings.Contains(err.Error(), "frame 2 at offset") {
			t.Fatalf("%s: visitor's error: %v, want it wrapped with frame 2", o.name, err)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, torn) {
			t.Fatalf("%s: the file changed after a visitor's error (%d bytes, want %d)", o.name, len(got), len(torn))
		}
		// The lock is released: a plain Open works (and cuts the torn
		// bytes up to the last non-zero one).
		l, cut, err := Open(p)
		if want := int64(len(bytes.TrimRight(torn, "\x00")) - len(full)); err != nil || cut != want {
			t.Fatalf("Open after %s failed: cut %d, %v", o.name, cut, err)
		}
		l.Close()
	}
}
