package framelog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// createPre creates a log at a new path and preallocates it by chunk.
func createPre(t *testing.T, chunk int64) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Create(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Preallocate(chunk, func(err error) { t.Error(err) }); err != nil {
		t.Fatal(err)
	}
	return l, path
}

// buildPre is build with Preallocate(chunk): each batch appended and
// synced, then closed (which writes the durable mark at the last frame).
func buildPre(t *testing.T, chunk int64, sizes ...int) (string, []*Batch, []int64) {
	t.Helper()
	l, path := createPre(t, chunk)
	bs, offs := appendSizes(t, l, newChain(t, 0), true, sizes...)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, bs, offs
}

// setMark replaces the durable mark of the log at path: end < 0 removes it.
func setMark(t *testing.T, path string, ends ...int64) {
	t.Helper()
	os.Remove(MarkPath(path))
	m := markFile{path: MarkPath(path), end: -1}
	for _, e := range ends {
		if err := m.write(e, 0); err != nil {
			t.Fatal(err)
		}
	}
	m.close()
}

func nonZeroEnd(b []byte) int64 { return int64(len(bytes.TrimRight(b, "\x00"))) }

// TestPreallocReopen: the file is preallocated (zeros after the frames,
// more than a chunk/2 of them), the mark is the last frame's end, and a
// reopen keeps both: no cut, the same frames, appends go on over the zeros.
func TestPreallocReopen(t *testing.T) {
	const chunk = 64 << 10
	path, bs, offs := buildPre(t, chunk, 3, 1, 4, 2)
	full, _ := os.ReadFile(path)
	end := offs[len(offs)-1]
	if int64(len(full)) < end+chunk/2 || nonZeroEnd(full) != end {
		t.Fatalf("file of %d bytes, non-zero up to %d; frames end at %d", len(full), nonZeroEnd(full), end)
	}
	if m := readMark(MarkPath(path), 0); m != end {
		t.Fatalf("mark %d, want %d", m, end)
	}
	l, cut, err := Open(path)
	if err != nil || cut != 0 {
		t.Fatalf("Open: cut %d, %v", cut, err)
	}
	checkFrames(t, l, bs)
	if l.End() != end {
		t.Fatalf("End %d, want %d", l.End(), end)
	}
	if err := l.Preallocate(chunk, func(err error) { t.Error(err) }); err != nil {
		t.Fatal(err)
	}
	c := newChain(t, 0)
	for _, b := range bs {
		c.next(t, len(b.Records)) // the same records: the same hashes
	}
	more := c.next(t, 5)
	if err := l.AppendBatch(more); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l, cut, err = Open(path)
	if err != nil || cut != 0 {
		t.Fatalf("second Open: cut %d, %v", cut, err)
	}
	defer l.Close()
	checkFrames(t, l, append(bs, more))
}

// TestPreallocTornEveryLength: the last frame, written over the zeros, is
// cut short at every length (its tail still zeros) and, separately, has
// a hole of zeros in its middle: with no mark and with the mark before
// it, Open zeroes exactly the non-zero torn bytes, keeps the file's size,
// keeps the earlier frames, and re-appending restores the file.
func TestPreallocTornEveryLength(t *testing.T) {
	path, bs, offs := buildPre(t, 16<<10, 2, 3, 2)
	full, _ := os.ReadFile(path)
	last, end := offs[len(offs)-2], offs[len(offs)-1]
	for _, marked := range []bool{false, true} {
		for n := last + 1; n < end; n++ {
			for _, hole := range []bool{false, true} {
				data := bytes.Clone(full)
				if hole {
					clear(data[last+(n-last)/2 : n]) // a hole, then the frame's end
				} else {
					clear(data[n:end])
				}
				p := filepath.Join(t.TempDir(), "torn.log")
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
				if marked {
					setMark(t, p, last)
				}
				want := max(nonZeroEnd(data)-last, 0)
				if hole && data[end-1] != 0 {
					want = end - last
				}
				l, cut, err := Open(p)
				if err != nil || cut != want {
					t.Fatalf("marked %v, hole %v, at %d: Open: cut %d, %v; want %d", marked, hole, n, cut, err, want)
				}
				checkFrames(t, l, bs[:len(bs)-1])
				if l.TornFile() != "" {
					t.Fatalf("a single torn frame was copied aside to %s", l.TornFile())
				}
				got, _ := os.ReadFile(p)
				if len(got) != len(full) || nonZeroEnd(got) != last {
					t.Fatalf("at %d: after Open %d bytes, non-zero to %d; want %d, %d", n, len(got), nonZeroEnd(got), len(full), last)
				}
				reappendRestores(t, l, bs[len(bs)-1], p, full)
			}
		}
	}
}

// TestMarkOutOfOrder is the power-loss shape a preallocated file can
// have and a growing one cannot: of one Sync's frames 2, 3 and 4, frame 2
// was lost (zeros) while 3 and 4 landed. Past the durable mark it is a
// torn tail, copied aside and cut; below it, or with no usable mark, it
// is corruption and the file is left alone.
func TestMarkOutOfOrder(t *testing.T) {
	path, bs, offs := buildPre(t, 64<<10, 2, 2, 3, 1, 2)
	full, _ := os.ReadFile(path)
	shape := bytes.Clone(full)
	clear(shape[offs[2]:offs[3]]) // frame 2 lost, 3 and 4 landed
	torn := shape[offs[2]:offs[5]]
	for name, tc := range map[string]struct {
		mark    func(p string)
		corrupt bool
	}{
		"mark at the lost frame": {mark: func(p string) { setMark(t, p, offs[2]) }},
		"mark before it":         {mark: func(p string) { setMark(t, p, offs[1]) }},
		"newer slot torn, older at the lost frame": {mark: func(p string) {
			setMark(t, p, offs[2], offs[4])
			flipFile(t, MarkPath(p), markSlot+14) // slot 1 holds offs[4]
		}},
		"mark past the lost frame": {mark: func(p string) { setMark(t, p, offs[3]) }, corrupt: true},
		"no mark":                  {mark: func(p string) { setMark(t, p); os.Remove(MarkPath(p)) }, corrupt: true},
		"mark garbage": {mark: func(p string) {
			os.WriteFile(MarkPath(p), bytes.Repeat([]byte("WFM1garbage"), 100), 0o600)
		}, corrupt: true},
		"mark of another base": {mark: func(p string) {
			m := markFile{path: MarkPath(p), base: 7, end: -1}
			os.Remove(MarkPath(p))
			if err := m.write(offs[2], 2); err != nil {
				t.Fatal(err)
			}
			m.close()
		}, corrupt: true},
		"mark empty": {mark: func(p string) { os.WriteFile(MarkPath(p), nil, 0o600) }, corrupt: true},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(p, shape, 0o600); err != nil {
				t.Fatal(err)
			}
			tc.mark(p)
			ro, n, err := OpenReadOnly(p)
			if tc.corrupt {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Offset != offs[2] || ce.Frame != 2 {
					t.Fatalf("OpenReadOnly: %v, want corruption at frame 2", err)
				}
				if _, _, err := Open(p); !errors.As(err, &ce) {
					t.Fatalf("Open: %v, want corruption", err)
				}
				if got, _ := os.ReadFile(p); !bytes.Equal(got, shape) {
					t.Fatal("Open changed a corrupt file")
				}
				return
			}
			if err != nil || n != int64(len(torn)) {
				t.Fatalf("OpenReadOnly: torn %d, %v; want %d", n, err, len(torn))
			}
			checkFrames(t, ro, bs[:2])
			ro.Close()
			l, cut, err := Open(p)
			if err != nil || cut != int64(len(torn)) {
				t.Fatalf("Open: cut %d, %v; want %d", cut, err, len(torn))
			}
			defer l.Close()
			checkFrames(t, l, bs[:2])
			kept, err := os.ReadFile(l.TornFile())
			if err != nil || !bytes.Equal(kept, torn) {
				t.Fatalf("the torn tail kept in %q: %d bytes, %v; want the %d cut", l.TornFile(), len(kept), err, len(torn))
			}
			if got, _ := os.ReadFile(p); len(got) != len(shape) || nonZeroEnd(got) != offs[2] {
				t.Fatalf("after Open: %d bytes, non-zero to %d", len(got), nonZeroEnd(got))
			}
		})
	}
}

func flipFile(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPreallocZeroRegionDamage: non-zero bytes in the zero region after
// the frames. Garbage with no frame header is a torn tail (zeroed, the
// frames kept); a valid frame header there (a stale frame) with no mark
// is corruption, and past the mark a torn tail copied aside.
func TestPreallocZeroRegionDamage(t *testing.T) {
	path, bs, offs := buildPre(t, 64<<10, 2, 2)
	full, _ := os.ReadFile(path)
	end := offs[len(offs)-1]
	garbage := bytes.Clone(full)
	copy(garbage[end+5000:], "\x17not a frame")
	stale := bytes.Clone(full)
	copy(stale[end+3000:], full[offs[1]:offs[2]])
	for name, tc := range map[string]struct {
		data    []byte
		mark    bool
		corrupt bool
		aside   bool
	}{
		"garbage, no mark":     {data: garbage},
		"garbage, mark":        {data: garbage, mark: true},
		"stale frame, no mark": {data: stale, corrupt: true},
		"stale frame, mark":    {data: stale, mark: true, aside: true},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "audit.log")
			os.WriteFile(p, tc.data, 0o600)
			if tc.mark {
				setMark(t, p, end)
			}
			l, cut, err := Open(p)
			if tc.corrupt {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Open: %v, want corruption", err)
				}
				return
			}
			if err != nil || cut != nonZeroEnd(tc.data)-end || (l.TornFile() != "") != tc.aside {
				t.Fatalf("Open: cut %d, %v, kept in %q", cut, err, l.TornFile())
			}
			defer l.Close()
			checkFrames(t, l, bs)
			if got, _ := os.ReadFile(p); !bytes.Equal(got, full) {
				t.Fatal("the zero region was not restored")
			}
		})
	}
}

// TestPreallocGrowsRacingAppends: with a small chunk the grows run all the
// time under appends, Syncs and reads (run with -race): every frame reads
// back, the file ends in zeros, and a reopen finds the same frames.
func TestPreallocGrowsRacingAppends(t *testing.T) {
	l, path := createPre(t, 8<<10)
	c := newChain(t, 0)
	var bs []*Batch
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := l.Frames(); n > 0 {
				if _, err := l.ReadBatch(n - 1); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for i := range 300 {
		b := c.next(t, 1+i%5)
		if err := l.AppendBatch(b); err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
		if i%3 == 0 {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	end := l.End()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(path)
	if nonZeroEnd(full) != end || int64(len(full)) <= end {
		t.Fatalf("file of %d bytes, non-zero to %d, frames end at %d", len(full), nonZeroEnd(full), end)
	}
	l, cut, err := Open(path)
	if err != nil || cut != 0 {
		t.Fatalf("Open: cut %d, %v", cut, err)
	}
	defer l.Close()
	checkFrames(t, l, bs)
}

// TestPreallocReadOnlyRace: read-only opens (warden backup, verify on a
// live store) while the writer appends over the zeros never find
// corruption, and every frame they see reads back.
func TestPreallocReadOnlyRace(t *testing.T) {
	l, path := createPre(t, 1<<20)
	defer l.Close()
	c := newChain(t, 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 400 {
			if err := l.AppendBatch(c.next(t, 1+i%7)); err != nil {
				t.Error(err)
				return
			}
			if i%4 == 0 {
				if err := l.Sync(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for opens := 0; ; opens++ {
		select {
		case <-done:
			if opens == 0 {
				t.Fatal("no read-only open ran during the appends")
			}
			return
		default:
		}
		ro, _, err := OpenReadOnly(path)
		if err != nil {
			t.Fatalf("OpenReadOnly during appends: %v", err)
		}
		for i := range ro.Frames() {
			if _, err := ro.ReadBatch(i); err != nil {
				t.Fatal(err)
			}
		}
		ro.Close()
	}
}
