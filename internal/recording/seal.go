package recording

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// A stored object is the zstd-compressed canonical form, sealed in chunks
// (the STREAM construction, as in age): every chunkSize bytes of plaintext
// are sealed with AES-256-GCM under the recording's data key, with the
// nonce = 88-bit big-endian chunk counter || 0x01 on the last chunk, 0x00
// otherwise, and the object header as additional data. A flipped byte
// fails that chunk's tag; dropped, reordered or appended chunks fail the
// counter or the last-chunk flag; an object moved to another id fails the
// header. The data key is fresh per recording, so counters never repeat
// under one key. Chunking keeps memory flat for recordings of any size.
//
// Header: "WRDNREC" 0x01, chunk size (uint32 BE), id length (uint8), id.
const objectMagic = "WRDNREC\x01"

// chunkSize is the plaintext size of every chunk but the last.
const chunkSize = 64 << 10

func objectHeader(id string) []byte {
	h := make([]byte, 0, len(objectMagic)+4+1+len(id))
	h = append(h, objectMagic...)
	h = binary.BigEndian.AppendUint32(h, chunkSize)
	h = append(h, byte(len(id)))
	return append(h, id...)
}

func newAEAD(dk []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(dk)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func chunkNonce(n *[12]byte, ctr uint64, last bool) {
	*n = [12]byte{}
	binary.BigEndian.PutUint64(n[3:11], ctr)
	if last {
		n[11] = 1
	}
}

// sealWriter seals what is written to it; Close seals the last chunk.
type sealWriter struct {
	w      io.Writer
	aead   cipher.AEAD
	header []byte
	buf    []byte
	out    []byte
	ctr    uint64
	closed bool
}

func newSealWriter(w io.Writer, dk []byte, id string) (*sealWriter, error) {
	aead, err := newAEAD(dk)
	if err != nil {
		return nil, fmt.Errorf("recording: seal: %w", err)
	}
	sw := &sealWriter{w: w, aead: aead, header: objectHeader(id), buf: getChunkBuf(), out: getChunkBuf()}
	if _, err := w.Write(sw.header); err != nil {
		return nil, fmt.Errorf("recording: seal: %w", err)
	}
	return sw, nil
}

func (sw *sealWriter) Write(p []byte) (int, error) {
	if sw.closed {
		return 0, errors.New("recording: write to closed sealer")
	}
	n := 0
	for len(p) > 0 {
		if len(sw.buf) == chunkSize {
			// More data follows, so this full chunk is not the last.
			if err := sw.flush(false); err != nil {
				return n, err
			}
		}
		k := copy(sw.buf[len(sw.buf):chunkSize], p)
		sw.buf = sw.buf[:len(sw.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

func (sw *sealWriter) flush(last bool) error {
	var nonce [12]byte
	chunkNonce(&nonce, sw.ctr, last)
	sw.out = sw.aead.Seal(sw.out[:0], nonce[:], sw.buf, sw.header)
	sw.ctr++
	clear(sw.buf) // plaintext does not outlive its chunk
	sw.buf = sw.buf[:0]
	if _, err := sw.w.Write(sw.out); err != nil {
		return fmt.Errorf("recording: seal: %w", err)
	}
	return nil
}

// chunkBufs recycles chunk-sized buffers (sealing allocates two per
// recording otherwise: 128 KiB of garbage per request).
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize+16); return &b }}

func getChunkBuf() []byte { return (*chunkBufs.Get().(*[]byte))[:0] }

func putChunkBuf(b []byte) {
	b = b[:0]
	chunkBufs.Put(&b)
}

// release returns the writer's buffers to the pool (the plaintext one is
// wiped after every chunk); the writer must not be used afterwards.
func (sw *sealWriter) release() {
	if sw.buf != nil {
		clear(sw.buf)
		putChunkBuf(sw.buf)
		putChunkBuf(sw.out)
		sw.buf, sw.out = nil, nil
	}
}

// Close seals the final chunk (possibly empty).
func (sw *sealWriter) Close() error {
	if sw.closed {
		return nil
	}
	sw.closed = true
	return sw.flush(true)
}

// openReader authenticates and decrypts an object as it is read.
type openReader struct {
	id     string
	src    *bufio.Reader
	aead   cipher.AEAD
	header []byte
	in     []byte
	plain  []byte
	pos    int
	ctr    uint64
	done   bool
	err    error
}

func newOpenReader(r io.Reader, dk []byte, id string) (*openReader, error) {
	aead, err := newAEAD(dk)
	if err != nil {
		return nil, fmt.Errorf("recording: open: %w", err)
	}
	or := &openReader{id: id, src: bufio.NewReaderSize(r, chunkSize+aead.Overhead()+1), aead: aead, header: objectHeader(id)}
	got := make([]byte, len(or.header))
	if _, err := io.ReadFull(or.src, got); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &CorruptError{ID: id, Reason: "object shorter than its header"}
		}
		return nil, fmt.Errorf("recording %s: read object: %w", id, err)
	}
	if string(got) != string(or.header) {
		return nil, &CorruptError{ID: id, Reason: "object header does not match the recording"}
	}
	or.in = make([]byte, chunkSize+aead.Overhead())
	return or, nil
}

func (or *openReader) Read(p []byte) (int, error) {
	for or.pos == len(or.plain) {
		if or.err != nil {
			return 0, or.err
		}
		if or.done {
			return 0, io.EOF
		}
		or.err = or.next()
	}
	n := copy(p, or.plain[or.pos:])
	or.pos += n
	return n, nil
}

func (or *openReader) next() error {
	n, err := io.ReadFull(or.src, or.in)
	last := false
	switch {
	case err == nil:
		if _, perr := or.src.Peek(1); perr == io.EOF {
			last = true
		} else if perr != nil {
			return fmt.Errorf("recording %s: read object: %w", or.id, perr)
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	case errors.Is(err, io.EOF):
		return &CorruptError{ID: or.id, Reason: "object truncated (no final chunk)"}
	default:
		return fmt.Errorf("recording %s: read object: %w", or.id, err)
	}
	if n < or.aead.Overhead() {
		return &CorruptError{ID: or.id, Reason: "object truncated inside a chunk"}
	}
	var nonce [12]byte
	chunkNonce(&nonce, or.ctr, last)
	plain, oerr := or.aead.Open(or.plain[:0], nonce[:], or.in[:n], or.header)
	if oerr != nil {
		return &CorruptError{ID: or.id, Reason: fmt.Sprintf("chunk %d does not authenticate", or.ctr)}
	}
	or.plain, or.pos = plain, 0
	or.ctr++
	or.done = last
	return nil
}
