package framelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
)

// The durable mark (decision 045) is a sidecar file "<frames>.mark" of two
// slots overwritten in turn, each in its own 512-byte sector so that a torn
// write damages only the slot being written:
//
//	"WFM1" | base u64 | end u64 | frames u64 | CRC-32C of bytes [0, 28) u32
//
// end is the offset just past the last of the first `frames` frames, all of
// which an fdatasync had made durable before the slot was written: the mark
// never covers a frame a power loss could take back. The valid slot whose
// base is the frame file's with the larger end is the mark. A missing,
// torn or foreign mark is no mark: Open then applies the stricter rule.
const (
	markMagic = "WFM1"
	markSlot  = 512
	markLen   = 32
)

// MarkPath is the durable mark's file beside the frame file at path.
func MarkPath(path string) string { return path + ".mark" }

// markFile writes the mark's slots.
type markFile struct {
	path string
	base int64
	end  int64 // the mark on disk (-1: none)
	f    *os.File
	slot int64
}

// ReadMark returns the durable mark in the mark file at path (MarkPath)
// for the frame file whose first record is base: the offset up to which
// its frames were durable when the mark was written, or -1 if there is no
// usable mark (missing, torn in both slots, of another base).
func ReadMark(path string, base int64) int64 { return readMark(path, base) }

func readMark(path string, base int64) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	end := int64(-1)
	for i := 0; i < 2; i++ {
		if e, ok := markSlotEnd(b, i, base); ok && e > end {
			end = e
		}
	}
	return end
}

// markSlotEnd decodes slot i of b.
func markSlotEnd(b []byte, i int, base int64) (int64, bool) {
	off := i * markSlot
	if len(b) < off+markLen {
		return 0, false
	}
	s := b[off : off+markLen]
	if string(s[:4]) != markMagic || binary.LittleEndian.Uint32(s[28:]) != crc32.Checksum(s[:28], castagnoli) ||
		int64(binary.LittleEndian.Uint64(s[4:])) != base {
		return 0, false
	}
	end := int64(binary.LittleEndian.Uint64(s[12:]))
	if end < fileHeader {
		return 0, false
	}
	return end, true
}

// write makes (end, frames) the mark: it overwrites the older slot and
// fdatasyncs. The file is created (and its directory synced) on the first
// write.
func (m *markFile) write(end, frames int64) error {
	if m.f == nil {
		_, statErr := os.Stat(m.path)
		f, err := os.OpenFile(m.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		if errors.Is(statErr, fs.ErrNotExist) {
			if err := syncDir(m.path); err != nil {
				f.Close()
				return err
			}
		}
		m.f = f
		// Write over the older slot first, keeping the newer one.
		b := make([]byte, 2*markSlot)
		n, _ := f.ReadAt(b, 0)
		e0, ok0 := markSlotEnd(b[:n], 0, m.base)
		e1, ok1 := markSlotEnd(b[:n], 1, m.base)
		if ok0 && (!ok1 || e0 > e1) {
			m.slot = 1
		}
	}
	var s [markLen]byte
	copy(s[:], markMagic)
	binary.LittleEndian.PutUint64(s[4:], uint64(m.base))
	binary.LittleEndian.PutUint64(s[12:], uint64(end))
	binary.LittleEndian.PutUint64(s[20:], uint64(frames))
	binary.LittleEndian.PutUint32(s[28:], crc32.Checksum(s[:28], castagnoli))
	if _, err := m.f.WriteAt(s[:], m.slot*markSlot); err != nil {
		return err
	}
	if err := fdatasync(m.f); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	m.slot ^= 1
	m.end = end
	return nil
}

func (m *markFile) close() error {
	if m.f == nil {
		return nil
	}
	return m.f.Close()
}

// zero writes n zero bytes at off.
func zero(f *os.File, off, n int64) error {
	for n > 0 {
		k := min(n, zeroPiece)
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// writeSynced creates name (which must not exist) holding b, synced, and
// syncs its directory.
func writeSynced(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(name)
	}
	return err
}
