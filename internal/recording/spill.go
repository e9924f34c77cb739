package recording

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// budget is the memory all captures of a recorder may hold before they
// spill to disk, so that many concurrent streams stay bounded too.
type budget struct {
	max  int64
	used atomic.Int64
}

func (b *budget) take(n int) bool {
	if b == nil {
		return true
	}
	if b.used.Add(int64(n)) > b.max {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

// budgetGrain is how much a buffer takes from the budget at once when
// the budget has room: the budget is shared by every capture, and one
// atomic add per SSE event or timing mark (tens of bytes) made its cache
// line bounce between cores. A buffer holds at most one grain it has not
// used; near the budget's end it takes exactly what it needs.
const budgetGrain = 4 << 10

// reserve takes n bytes for b's memory from the budget, from its credit
// first.
func (b *spillBuffer) reserve(n int) bool {
	need := n - (b.held - b.memN)
	if need <= 0 {
		return true
	}
	if need < budgetGrain && b.budget.take(budgetGrain) {
		b.held += budgetGrain
		return true
	}
	if b.budget.take(need) {
		b.held += need
		return true
	}
	return false
}

func (b *budget) release(n int) {
	if b != nil && n > 0 {
		b.used.Add(-int64(n))
	}
}

// spillBuffer holds bytes in memory up to a threshold, then in a temporary
// file. The file is unlinked as soon as it is created, so it disappears
// with the process, and (when encrypt is set) its content is encrypted
// with AES-256-CTR under a key that only lives in this buffer, so no
// plaintext of a recording ever reaches the disk. Not safe for concurrent
// use.
type spillBuffer struct {
	dir       string
	threshold int
	budget    *budget
	encrypt   bool

	mem  [][]byte // memChunk-sized chunks: growing never copies
	memN int      // bytes in mem
	held int      // bytes taken from the budget: memN and a credit for more
	f    *os.File
	name string // set when unlinking at creation failed
	wbuf []byte // file write buffer, encrypted in place when flushed
	key  []byte
	iv   []byte
	ctr  cipher.Stream
	n    int64
	err  error
}

// spillWriteBuf is the size of a spill file's write buffer.
const spillWriteBuf = 32 << 10

// Write appends p. After a failure every later Write returns the same
// error (and the buffer must be discarded).
func (b *spillBuffer) Write(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.f == nil {
		if b.memN+len(p) <= b.threshold && b.reserve(len(p)) {
			b.appendMem(p)
			b.n += int64(len(p))
			return len(p), nil
		}
		if err := b.spill(); err != nil {
			b.err = err
			return 0, err
		}
	}
	if err := b.writeFile(p); err != nil {
		b.err = err
		return 0, err
	}
	b.n += int64(len(p))
	return len(p), nil
}

func (b *spillBuffer) spill() error {
	f, err := os.CreateTemp(b.dir, ".warden-rec-*")
	if err != nil {
		return fmt.Errorf("recording: spill: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		b.name = f.Name()
	}
	b.f = f
	b.wbuf = make([]byte, 0, spillWriteBuf)
	if b.encrypt {
		b.key = make([]byte, 32)
		b.iv = make([]byte, aes.BlockSize)
		rand.Read(b.key)
		rand.Read(b.iv)
		blk, err := aes.NewCipher(b.key)
		if err != nil {
			return fmt.Errorf("recording: spill: %w", err)
		}
		b.ctr = cipher.NewCTR(blk, b.iv)
	}
	mem := b.mem
	b.budget.release(b.held)
	b.mem, b.memN, b.held = nil, 0, 0
	for _, c := range mem {
		if err := b.writeFile(c); err != nil {
			return err
		}
		putMemChunk(c)
	}
	return nil
}

// memChunk is the size of the in-memory chunks; a buffer whose first
// write fits in memChunkSmall starts with a chunk of that size. Every
// recording has three buffers (timing marks, response body, the built
// object) and most of them hold a few hundred bytes to a few KB: 16 KiB
// each was ~48 KiB per recording in flight, allocated anew whenever a GC
// had emptied the pool (~2.6% of the gateway's allocated bytes at 64
// connections; decision 032).
const (
	memChunk      = 16 << 10
	memChunkSmall = 4 << 10
)

var (
	memChunks      = sync.Pool{New: func() any { b := make([]byte, 0, memChunk); return &b }}
	memChunksSmall = sync.Pool{New: func() any { b := make([]byte, 0, memChunkSmall); return &b }}
)

func putMemChunk(c []byte) {
	clear(c)
	c = c[:0]
	switch cap(c) {
	case memChunk:
		memChunks.Put(&c)
	case memChunkSmall:
		memChunksSmall.Put(&c)
	}
}

func (b *spillBuffer) appendMem(p []byte) {
	for len(p) > 0 {
		switch {
		case len(b.mem) == 0 && len(p) <= memChunkSmall:
			b.mem = append(b.mem, (*memChunksSmall.Get().(*[]byte))[:0])
		case len(b.mem) == 0 || len(b.mem[len(b.mem)-1]) == cap(b.mem[len(b.mem)-1]):
			b.mem = append(b.mem, (*memChunks.Get().(*[]byte))[:0])
		}
		last := &b.mem[len(b.mem)-1]
		k := copy((*last)[len(*last):cap(*last)], p)
		*last = (*last)[:len(*last)+k]
		p = p[k:]
		b.memN += k
	}
}

func (b *spillBuffer) writeFile(p []byte) error {
	for len(p) > 0 {
		k := copy(b.wbuf[len(b.wbuf):cap(b.wbuf)], p)
		b.wbuf = b.wbuf[:len(b.wbuf)+k]
		p = p[k:]
		if len(b.wbuf) == cap(b.wbuf) {
			if err := b.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush encrypts the write buffer in place and writes it to the file.
func (b *spillBuffer) flush() error {
	if len(b.wbuf) == 0 {
		return nil
	}
	if b.ctr != nil {
		b.ctr.XORKeyStream(b.wbuf, b.wbuf)
	}
	_, err := b.f.Write(b.wbuf)
	b.wbuf = b.wbuf[:0]
	if err != nil {
		return fmt.Errorf("recording: spill: %w", err)
	}
	return nil
}

// Len is the number of bytes written.
func (b *spillBuffer) Len() int64 { return b.n }

// Spilled reports whether the content is on disk.
func (b *spillBuffer) Spilled() bool { return b.f != nil }

// Body returns a reader of everything written so far. Writes must not
// follow.
func (b *spillBuffer) Body() (Body, error) {
	if b.err != nil {
		return Body{}, b.err
	}
	if b.f == nil {
		rs := make([]io.Reader, len(b.mem))
		for i, c := range b.mem {
			rs[i] = bytes.NewReader(c)
		}
		return Body{R: io.MultiReader(rs...), Size: int64(b.memN)}, nil
	}
	if err := b.flush(); err != nil {
		b.err = err
		return Body{}, b.err
	}
	var r io.Reader = io.NewSectionReader(b.f, 0, b.n)
	if b.key != nil {
		blk, err := aes.NewCipher(b.key)
		if err != nil {
			return Body{}, err
		}
		r = cipher.StreamReader{S: cipher.NewCTR(blk, b.iv), R: r}
	}
	return Body{R: r, Size: b.n}, nil
}

// Close releases the memory and the file.
func (b *spillBuffer) Close() {
	b.budget.release(b.held)
	for _, c := range b.mem {
		putMemChunk(c)
	}
	b.mem, b.memN, b.held = nil, 0, 0
	if b.f != nil {
		b.f.Close()
		if b.name != "" {
			os.Remove(b.name)
		}
		b.f = nil
	}
	clear(b.key)
	clear(b.wbuf)
	b.wbuf = nil
	if b.err == nil {
		b.err = errClosed
	}
}

var errClosed = fmt.Errorf("recording: buffer closed")
