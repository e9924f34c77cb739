package framelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

const (
	fileMagic   = "WARDENFL"
	fileVersion = 1
	fileHeader  = 32
	frameMagic  = "WFR1"
	frameHeader = 16
	// MaxPayload bounds a frame's payload (1 GiB): a header claiming more
	// is corruption, not a frame to read.
	MaxPayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroHeader is the room a frame's header takes before its payload.
var zeroHeader [frameHeader]byte

// Errors, for errors.Is.
var (
	// ErrCorrupt: the file does not verify (see CorruptError).
	ErrCorrupt = errors.New("framelog: corrupt")
	// ErrFailed: an earlier write or Sync failed; reopen the log.
	ErrFailed = errors.New("framelog: an earlier write or sync failed; the log must be reopened")
	// ErrNotFound: no such frame or record among the durable ones.
	ErrNotFound = errors.New("framelog: not found")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("framelog: closed")
	// ErrReadOnly: the log was opened read-only.
	ErrReadOnly = errors.New("framelog: read-only")
	// ErrChain: an appended batch does not start where the log ends.
	ErrChain = errors.New("framelog: batch does not chain")
)

// CorruptError says where a file stops verifying. It never holds payload
// bytes.
type CorruptError struct {
	Path   string
	Offset int64 // of the frame (or the file header: 0)
	Frame  int   // frame number, 0-based; -1 for the file header
	// Seq is the record the damaged frame should start at (where the
	// verified frames before it end); 0 for the file header.
	Seq    int64
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Frame < 0 {
		return fmt.Sprintf("framelog: %s: corrupt file header: %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("framelog: %s: corrupt frame %d at offset %d: %s", e.Path, e.Frame, e.Offset, e.Reason)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// frameRef is the in-memory index entry of one frame (24 bytes).
type frameRef struct {
	off   int64 // of the frame header
	first int64 // first seq
	count uint32
	plen  uint32
}

// Log is an open frame file. Append is for one writer at a time; Sync,
// the reads and Close are safe concurrently with it and each other.
type Log struct {
	path     string
	f        *os.File
	readOnly bool
	base     int64

	mu  sync.RWMutex // guards idx (grown by Append, read by readers)
	idx []frameRef

	// The writer's state (Append is serialised by the caller).
	end  int64  // offset of the next frame
	next int64  // first seq of the next frame
	buf  []byte // the next frame, reused

	// extMu orders the frames' writes (end, fsize) with the zero pieces
	// a preallocating grow writes after them (prealloc.go).
	extMu    sync.Mutex
	fsize    int64 // the file's size as written by this Log
	tornFile string
	pre      *prealloc // nil unless Preallocate was called

	appended atomic.Int64 // frames written (pwrite returned)
	syncMu   sync.Mutex   // one Sync at a time
	durable  atomic.Int64 // frames durable and visible to reads
	synced   atomic.Int64 // frames an fdatasync of this Log covered (the mark's bound)
	failed   atomic.Pointer[error]
	closed   atomic.Bool
}

// Create makes a new log at path (which must not exist) whose first
// record will be base. The header is written and synced under a
// temporary name and then linked to path, and the directory synced, so
// path never names a file without a whole header: a crash leaves either
// no log (and perhaps a stray "<name>.create-*" file) or an empty one.
func Create(path string, base int64) (*Log, error) {
	if base < 0 {
		return nil, fmt.Errorf("framelog: create %s: negative base %d", path, base)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".create-*")
	if err != nil {
		return nil, fmt.Errorf("framelog: create: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the link, only the temporary name goes
	var h [fileHeader]byte
	copy(h[:], fileMagic)
	binary.LittleEndian.PutUint32(h[8:], fileVersion)
	binary.LittleEndian.PutUint64(h[16:], uint64(base))
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	if err = f.Chmod(0o600); err == nil {
		_, err = f.WriteAt(h[:], 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = lockFile(f)
	}
	if err == nil {
		err = os.Link(tmp, path) // fails if path exists
	}
	if err == nil {
		if err = os.Remove(tmp); err == nil {
			err = syncDir(path)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("framelog: create %s: %w", path, err)
	}
	return &Log{path: path, f: f, base: base, next: base, end: fileHeader, fsize: fileHeader}, nil
}

// Open opens the log at path for appending: it verifies every frame,
// builds the index, and cuts a torn tail (returning how many bytes were
// cut; the caller logs it). Corruption is a *CorruptError (errors.Is
// ErrCorrupt), and nothing is changed.
func Open(path string) (l *Log, cut int64, err error) { return open(path, false, nil) }

// Visitor is called by OpenVisit and OpenReadOnlyVisit with each frame
// that verified during Open's scan (CRCs, batch prefix, chain), in
// order: its number and payload (see EncodeBatch; BatchHead reads its
// head). The payload is only valid during the call. An error fails the
// open.
type Visitor func(frame int, payload []byte) error

// OpenVisit is Open, handing every verified frame to visit from the scan
// Open does anyway: a caller that needs something of every frame (the
// sqlite store: each frame's head) reads the file once, not twice.
func OpenVisit(path string, visit Visitor) (l *Log, cut int64, err error) {
	return open(path, false, visit)
}

// OpenReadOnlyVisit is OpenReadOnly with a Visitor (see OpenVisit); a
// torn tail left in place is not visited.
func OpenReadOnlyVisit(path string, visit Visitor) (l *Log, torn int64, err error) {
	return open(path, true, visit)
}

// OpenReadOnly opens the log at path for reading, verifying it as Open
// does but never writing: a torn tail is left in place, not indexed, and
// its length returned.
func OpenReadOnly(path string) (l *Log, torn int64, err error) { return open(path, true, nil) }

func open(path string, readOnly bool, visit Visitor) (*Log, int64, error) {
	flag := os.O_RDWR
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("framelog: open: %w", err)
	}
	l := &Log{path: path, f: f, readOnly: readOnly}
	fail := func(err error) (*Log, int64, error) {
		f.Close()
		return nil, 0, err
	}
	if !readOnly {
		if err := lockFile(f); err != nil {
			return fail(fmt.Errorf("framelog: open %s: %w", path, err))
		}
	}
	sc, err := l.scan(visit)
	if err != nil {
		return fail(err)
	}
	l.fsize = sc.size
	if sc.tail > 0 && !readOnly {
		if err := l.cutTail(sc); err != nil {
			return fail(err)
		}
	}
	l.appended.Store(int64(len(l.idx)))
	l.durable.Store(int64(len(l.idx)))
	return l, sc.tail, nil
}

// scanned is what scan found: the file's size, where its non-zero bytes
// end, and a torn tail [end, end+tail) (tail = 0: none). aside: the torn
// tail holds more than one torn write (valid frames follow the first bad
// one) and is kept in a file before it is cut.
type scanned struct {
	size, nonZero, tail int64
	mark                int64 // the durable mark, -1 if none
	aside               bool
}

// scan reads the file header and every frame, filling idx, end and next.
// Zeros after the last valid frame up to EOF are the preallocated end. The
// first frame that does not verify, at offset k, ends the frames: below
// the durable mark (mark.go) it is corruption; at or above it, the bytes
// from k to the last non-zero byte are a torn tail; without a mark they
// are a torn tail only if nothing valid follows them. visit, if not nil,
// gets each verified frame (never one of a torn tail).
func (l *Log) scan(visit Visitor) (sc scanned, err error) {
	fi, err := l.f.Stat()
	if err != nil {
		return sc, fmt.Errorf("framelog: open %s: %w", l.path, err)
	}
	size := fi.Size()
	sc.size = size
	var h [fileHeader]byte
	if size < fileHeader {
		return sc, &CorruptError{Path: l.path, Frame: -1, Reason: fmt.Sprintf("file of %d bytes is shorter than the header", size)}
	}
	if _, err := l.f.ReadAt(h[:], 0); err != nil {
		return sc, fmt.Errorf("framelog: open %s: %w", l.path, err)
	}
	switch {
	case string(h[:8]) != fileMagic:
		return sc, &CorruptError{Path: l.path, Frame: -1, Reason: "not a frame log (bad magic)"}
	case binary.LittleEndian.Uint32(h[28:]) != crc32.Checksum(h[:28], castagnoli):
		return sc, &CorruptError{Path: l.path, Frame: -1, Reason: "header checksum mismatch"}
	case binary.LittleEndian.Uint32(h[8:]) != fileVersion:
		return sc, &CorruptError{Path: l.path, Frame: -1, Reason: fmt.Sprintf("unknown version %d", binary.LittleEndian.Uint32(h[8:]))}
	case binary.LittleEndian.Uint32(h[12:]) != 0 || binary.LittleEndian.Uint32(h[24:]) != 0 || int64(binary.LittleEndian.Uint64(h[16:])) < 0:
		return sc, &CorruptError{Path: l.path, Frame: -1, Reason: "unknown flags or bad base"}
	}
	l.base = int64(binary.LittleEndian.Uint64(h[16:]))
	l.next = l.base
	if sc.nonZero, err = l.lastNonZero(size); err != nil {
		return sc, err
	}
	sc.mark = readMark(MarkPath(l.path), l.base)
	off := int64(fileHeader)
	l.end = off // and after each verified frame
	var payload []byte
	retried := int64(-1) // a read-only scan reads a bad frame twice (open)
	for off < sc.nonZero {
		frame := len(l.idx)
		// bad decides the first frame that does not verify: torn says
		// whether, without a mark, it is a torn tail. retry: read it again.
		retry := false
		bad := func(torn bool, format string, args ...any) (scanned, error) {
			if l.readOnly && !torn && retried != off {
				// A writer may be appending: over preallocated zeros the
				// scan can read frame k before its write lands and then
				// see frame k+1. Frames are written in order, so frame
				// k's write has returned by now: read it once more.
				retried, retry = off, true
				return sc, nil
			}
			reason := fmt.Sprintf(format, args...)
			switch {
			case sc.mark >= 0 && off < sc.mark:
				reason += fmt.Sprintf(" (below the durable mark at offset %d)", sc.mark)
			case sc.mark >= 0 || torn:
				sc.tail, sc.aside = sc.nonZero-off, !torn
				return sc, nil
			}
			return sc, &CorruptError{Path: l.path, Offset: off, Frame: frame, Seq: l.next, Reason: reason}
		}
		if size-off < frameHeader {
			// A header cut short can only be the tail.
			if r, err := bad(true, "frame header cut short"); !retry {
				return r, err
			}
			continue
		}
		var fh [frameHeader]byte
		if _, err := l.f.ReadAt(fh[:], off); err != nil {
			return sc, fmt.Errorf("framelog: open %s: read at %d: %w", l.path, off, err)
		}
		if !validHeader(fh[:]) {
			// The frame's length cannot be trusted: it is a torn tail only
			// if no valid frame header follows.
			at, err := l.findHeader(off+1, min(size, sc.nonZero+frameHeader))
			if err != nil {
				return sc, err
			}
			if r, err := bad(at < 0, "bad frame header, and a valid frame header follows at offset %d", at); !retry {
				return r, err
			}
			continue
		}
		plen := int64(binary.LittleEndian.Uint32(fh[4:])) // <= MaxPayload (validHeader)
		end := off + frameHeader + plen
		if end > size {
			if r, err := bad(true, "incomplete frame at the end"); !retry {
				return r, err
			}
			continue
		}
		if int64(cap(payload)) < plen {
			payload = make([]byte, plen)
		}
		payload = payload[:plen]
		if _, err := l.f.ReadAt(payload, off+frameHeader); err != nil {
			return sc, fmt.Errorf("framelog: open %s: read at %d: %w", l.path, off, err)
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(fh[8:]) {
			// The last frame before the zeros, torn inside, or corruption.
			if r, err := bad(end >= sc.nonZero, "payload checksum mismatch (%d non-zero bytes follow the frame)", sc.nonZero-end); !retry {
				return r, err
			}
			continue
		}
		x, err := parsePrefix(payload)
		if err != nil {
			if r, err := bad(false, "%v", err); !retry {
				return r, err
			}
			continue
		}
		if x.first != l.next {
			if r, err := bad(false, "first seq %d, want %d (frames must chain)", x.first, l.next); !retry {
				return r, err
			}
			continue
		}
		if visit != nil {
			if err := visit(frame, payload); err != nil {
				return sc, fmt.Errorf("framelog: open %s: frame %d at offset %d: %w", l.path, frame, off, err)
			}
		}
		l.idx = append(l.idx, frameRef{off: off, first: x.first, count: uint32(x.count), plen: uint32(plen)})
		l.next = x.first + int64(x.count)
		off = end
		l.end = off
	}
	return sc, nil
}

// lastNonZero returns the offset just past the file's last non-zero byte
// (reading back from EOF: only the preallocated zeros are read).
func (l *Log) lastNonZero(size int64) (int64, error) {
	buf := make([]byte, min(size, 1<<20))
	for hi := size; hi > 0; {
		lo := max(hi-int64(len(buf)), 0)
		b := buf[:hi-lo]
		if _, err := l.f.ReadAt(b, lo); err != nil {
			return 0, fmt.Errorf("framelog: open %s: read at %d: %w", l.path, lo, err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				return lo + int64(i) + 1, nil
			}
		}
		hi = lo
	}
	return 0, nil
}

// cutTail removes the torn tail scan found: the bytes [end, nonZero) are
// zeroed (truncated when they run to EOF) and the file synced. When the
// tail holds more than one torn write (sc.aside) its bytes are first
// copied, synced, to "<path>.torn-<unix time>" (TornFile), so that
// nothing past the durable mark is destroyed.
func (l *Log) cutTail(sc scanned) error {
	at := l.end
	if sc.aside {
		b := make([]byte, sc.tail)
		if _, err := l.f.ReadAt(b, at); err != nil {
			return fmt.Errorf("framelog: %s: read the torn tail at offset %d: %w", l.path, at, err)
		}
		name := fmt.Sprintf("%s.torn-%d", l.path, time.Now().Unix())
		if err := writeSynced(name, b); err != nil {
			return fmt.Errorf("framelog: %s: keep the torn tail of %d bytes at offset %d: %w", l.path, sc.tail, at, err)
		}
		l.tornFile = name
	}
	var err error
	if sc.nonZero == sc.size {
		err = l.f.Truncate(at)
		l.fsize = at
	} else {
		err = zero(l.f, at, sc.tail)
	}
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		return fmt.Errorf("framelog: %s: cut torn tail of %d bytes at offset %d: %w", l.path, sc.tail, at, err)
	}
	return nil
}

// TornFile is the file Open copied a torn tail holding more than one
// torn write to before cutting it ("" if none): the caller logs it.
func (l *Log) TornFile() string { return l.tornFile }

func validHeader(h []byte) bool {
	return string(h[:4]) == frameMagic &&
		binary.LittleEndian.Uint32(h[12:]) == crc32.Checksum(h[:12], castagnoli) &&
		binary.LittleEndian.Uint32(h[4:]) <= MaxPayload
}

// findHeader returns the offset of the first valid frame header in
// [from, size), or -1.
func (l *Log) findHeader(from, size int64) (int64, error) {
	const chunk = 1 << 20
	buf := make([]byte, chunk+frameHeader-1)
	for at := from; at+frameHeader <= size; at += chunk {
		n := min(int64(len(buf)), size-at)
		b := buf[:n]
		if _, err := l.f.ReadAt(b, at); err != nil {
			return 0, fmt.Errorf("framelog: open %s: read at %d: %w", l.path, at, err)
		}
		for i := 0; i+frameHeader <= len(b) && i < chunk; i++ {
			if b[i] == frameMagic[0] && validHeader(b[i:i+frameHeader]) {
				return at + int64(i), nil
			}
		}
	}
	return -1, nil
}

func (l *Log) check() error {
	if l.closed.Load() {
		return ErrClosed
	}
	if p := l.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	if l.readOnly {
		return ErrReadOnly
	}
	return nil
}

func (l *Log) fail(err error) error {
	l.failed.CompareAndSwap(nil, &err)
	return err
}

// Err is the error that failed the log (a write or Sync), or nil: after
// it every Append and Sync fails until the log is reopened.
func (l *Log) Err() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Base is the sequence number of the log's first record.
func (l *Log) Base() int64 { return l.base }

// AppendBatch encodes b and appends it as one frame (see Append).
func (l *Log) AppendBatch(b *Batch) error {
	if err := l.check(); err != nil {
		return err
	}
	if b.FirstSeq != l.next {
		return fmt.Errorf("%w: first seq %d, the log ends at %d", ErrChain, b.FirstSeq, l.next)
	}
	buf, err := EncodeBatch(append(l.buf[:0], zeroHeader[:]...), b)
	if err != nil {
		return err
	}
	l.buf = buf
	return l.write(b.FirstSeq, len(b.Records))
}

// Append appends payload (a batch frame's payload, see EncodeBatch) as
// one frame, with one write at the end of the file and no fsync. The
// frame is not visible to reads until a Sync that starts after Append
// returns has succeeded. A batch that does not start where the log ends
// is refused (ErrChain) without writing; after a failed write every
// later call fails (ErrFailed), except after a write refused for lack
// of space (ENOSPC, EDQUOT) whose partial bytes could be cut off again:
// then the log is as before the call and the error is returned.
func (l *Log) Append(payload []byte) error {
	if err := l.check(); err != nil {
		return err
	}
	if len(payload) > MaxPayload {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrBatch, len(payload), MaxPayload)
	}
	x, err := parsePrefix(payload)
	if err != nil {
		return err
	}
	if x.first != l.next {
		return fmt.Errorf("%w: first seq %d, the log ends at %d", ErrChain, x.first, l.next)
	}
	l.buf = append(append(l.buf[:0], zeroHeader[:]...), payload...)
	return l.write(x.first, x.count)
}

// noSpace reports a write refused for lack of space (ENOSPC, EDQUOT).
func noSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// write finishes the frame in l.buf (header space, then payload) and
// writes it.
func (l *Log) write(first int64, count int) error {
	fr := l.buf
	p := fr[frameHeader:]
	copy(fr, frameMagic)
	binary.LittleEndian.PutUint32(fr[4:], uint32(len(p)))
	binary.LittleEndian.PutUint32(fr[8:], crc32.Checksum(p, castagnoli))
	binary.LittleEndian.PutUint32(fr[12:], crc32.Checksum(fr[:12], castagnoli))
	l.extMu.Lock()
	_, err := l.f.WriteAt(fr, l.end)
	if err == nil {
		l.end += int64(len(fr))
		l.fsize = max(l.fsize, l.end)
	}
	low := l.pre != nil && l.fsize-l.end < l.pre.chunk/2
	l.extMu.Unlock()
	if err != nil {
		err = fmt.Errorf("framelog: append to %s at offset %d: %w", l.path, l.end, err)
		if noSpace(err) {
			// A full disk or quota: the frame's bytes that were written
			// are cut off again, and the log is as it was before the
			// call (the disk filling up must not need a restart, as a
			// SQLite transaction that fails with SQLITE_FULL does not).
			// If the cut fails, the log fails closed.
			l.extMu.Lock()
			terr := l.f.Truncate(l.end)
			if terr == nil {
				l.fsize = l.end
			}
			l.extMu.Unlock()
			if terr != nil {
				return l.fail(fmt.Errorf("%w; cutting the partial frame off failed: %v", err, terr))
			}
			return err
		}
		return l.fail(err)
	}
	l.mu.Lock()
	l.idx = append(l.idx, frameRef{off: l.end - int64(len(fr)), first: first, count: uint32(count), plen: uint32(len(p))})
	l.mu.Unlock()
	l.next = first + int64(count)
	l.appended.Add(1)
	if cap(l.buf) > 4<<20 {
		l.buf = nil // do not keep a huge frame's buffer
	}
	if low {
		l.pre.kickGrow()
	}
	return nil
}

// Sync fdatasyncs the file, then makes every frame appended before the
// call visible to reads. After an error every later Append and Sync
// fails (ErrFailed).
func (l *Log) Sync() error {
	if err := l.check(); err != nil {
		return err
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.check(); err != nil {
		return err
	}
	n := l.appended.Load()
	if n == l.durable.Load() {
		return nil
	}
	if err := fdatasync(l.f); err != nil {
		return l.fail(fmt.Errorf("framelog: sync %s: %w", l.path, err))
	}
	l.durable.Store(n)
	l.noteSynced(n)
	if l.pre != nil {
		l.pre.syncedMark()
	}
	return nil
}

// Frames is the number of durable frames (all verified ones on a
// read-only log).
func (l *Log) Frames() int { return int(l.durable.Load()) }

// Size is the sequence number after the last durable record (Base when
// there is none).
func (l *Log) Size() int64 {
	n := int(l.durable.Load())
	if n == 0 {
		return l.base
	}
	l.mu.RLock()
	r := l.idx[n-1]
	l.mu.RUnlock()
	return r.first + int64(r.count)
}

// End is the file offset just past the last durable frame: a copy of
// the file's first End bytes is a valid log (warden backup copies that
// much).
func (l *Log) End() int64 {
	n := int(l.durable.Load())
	if n == 0 {
		return fileHeader
	}
	l.mu.RLock()
	r := l.idx[n-1]
	l.mu.RUnlock()
	return r.off + frameHeader + int64(r.plen)
}

// Find returns the number of the durable frame holding record seq, and
// that frame's first seq.
func (l *Log) Find(seq int64) (frame int, first int64, err error) {
	n := int(l.durable.Load())
	l.mu.RLock()
	idx := l.idx[:n]
	l.mu.RUnlock()
	i := sort.Search(n, func(i int) bool { return idx[i].first > seq }) - 1
	if i < 0 || seq >= idx[i].first+int64(idx[i].count) {
		return 0, 0, fmt.Errorf("%w: record %d (durable: [%d, %d))", ErrNotFound, seq, l.base, l.Size())
	}
	return i, idx[i].first, nil
}

// ReadHashes returns the stored tree hashes at indexes, with the
// tlog.HashReader contract (a slice as long as indexes, or an error),
// from the durable frames: each hash is one 32-byte read at an offset the
// index gives (the hashes lead the payload), without reading the frame's
// records. A hash read this way is not CRC-checked (its frame was, at
// Open); a wrong one fails the proof it is used in against a signed
// checkpoint. An index outside the durable frames wraps ErrNotFound.
func (l *Log) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	n := int(l.durable.Load())
	l.mu.RLock()
	idx := l.idx[:n]
	l.mu.RUnlock()
	lo := tlog.StoredHashCount(l.base)
	hi := lo
	if n > 0 {
		hi = tlog.StoredHashCount(idx[n-1].first + int64(idx[n-1].count))
	}
	out := make([]tlog.Hash, len(indexes))
	for k, h := range indexes {
		if h < lo || h >= hi {
			return nil, fmt.Errorf("%w: hash %d (durable: [%d, %d))", ErrNotFound, h, lo, hi)
		}
		i := sort.Search(n, func(i int) bool { return tlog.StoredHashCount(idx[i].first) > h }) - 1
		off := idx[i].off + frameHeader + hashesAt + 32*(h-tlog.StoredHashCount(idx[i].first))
		if _, err := l.f.ReadAt(out[k][:], off); err != nil {
			if l.closed.Load() {
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("framelog: read hash %d of %s at offset %d: %w", h, l.path, off, err)
		}
	}
	return out, nil
}

// ReadFrame returns a copy of durable frame i's payload, its CRC checked
// again (the file may have changed since Open).
func (l *Log) ReadFrame(i int) ([]byte, error) {
	fr, err := l.readFrame(i, nil)
	if err != nil {
		return nil, err
	}
	return fr[frameHeader:], nil
}

// readFrame reads durable frame i, header and payload, into buf (grown
// if short) and checks it.
func (l *Log) readFrame(i int, buf []byte) ([]byte, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	if i < 0 || int64(i) >= l.durable.Load() {
		return nil, fmt.Errorf("%w: frame %d (%d durable)", ErrNotFound, i, l.durable.Load())
	}
	l.mu.RLock()
	r := l.idx[i]
	l.mu.RUnlock()
	n := frameHeader + int(r.plen)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := l.f.ReadAt(buf, r.off); err != nil {
		if l.closed.Load() {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("framelog: read frame %d of %s at offset %d: %w", i, l.path, r.off, err)
	}
	if !validHeader(buf[:frameHeader]) || binary.LittleEndian.Uint32(buf[4:]) != r.plen ||
		crc32.Checksum(buf[frameHeader:], castagnoli) != binary.LittleEndian.Uint32(buf[8:]) {
		return nil, &CorruptError{Path: l.path, Offset: r.off, Frame: i, Reason: "changed since it was verified"}
	}
	return buf, nil
}

// ReadBatch reads and decodes durable frame i.
func (l *Log) ReadBatch(i int) (Batch, error) {
	p, err := l.ReadFrame(i)
	if err != nil {
		return Batch{}, err
	}
	b, err := DecodeBatch(p)
	if err != nil {
		return Batch{}, fmt.Errorf("framelog: frame %d of %s: %w", i, l.path, err)
	}
	return b, nil
}

// Scan calls fn with each durable frame's number and payload from frame
// from on, in order, until fn returns an error (returned) or the frames
// durable when Scan started are done. The payload is only valid during
// the call.
func (l *Log) Scan(from int, fn func(i int, payload []byte) error) error {
	n := int(l.durable.Load())
	var buf []byte
	for i := max(from, 0); i < n; i++ {
		fr, err := l.readFrame(i, buf)
		if err != nil {
			return err
		}
		if err := fn(i, fr[frameHeader:]); err != nil {
			return err
		}
		buf = fr
	}
	return nil
}

// Close closes the file. Appends, Syncs and reads after it fail
// (ErrClosed).
func (l *Log) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.syncMu.Lock() // let a running Sync finish
	defer l.syncMu.Unlock()
	merr := l.stopPrealloc() // stops the grows and writes the last mark
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("framelog: close %s: %w", l.path, err)
	}
	return merr
}
