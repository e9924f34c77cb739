package framelogtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/store/framelog"
)

// The parts of the format (framelog's package doc) a rewriter writes.
const (
	fileHeader  = 32
	frameHeader = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// File is a frame file read into memory. Frames are its batches in file
// order; an operation that changes how many records come before a frame
// renumbers the frames after it (first seq and hash start), so the file
// Write produces chains as framelog expects, unless SwapFrames reordered
// them.
type File struct {
	// Base is the file header's base: the seq of the first record.
	Base int64
	// Frames are the decoded batches; a test may edit them directly.
	Frames []framelog.Batch
	// Torn is the length of the torn tail Read found and left out.
	Torn int64
	// Prefix reads the stored hashes below tlog.StoredHashCount(Base) (a
	// migrated store's hashes table), for the operations that compute
	// hashes (Rehash, InsertRecord) on a file whose Base is not 0.
	Prefix tlog.HashReader
}

// Read decodes every durable frame of the closed log at path (opened
// read-only: a torn tail is left out of the File and its length put in
// Torn). A file framelog does not verify is an error.
func Read(path string) (*File, error) {
	l, torn, err := framelog.OpenReadOnly(path)
	if err != nil {
		return nil, fmt.Errorf("framelogtest: read %s: %w", path, err)
	}
	defer l.Close()
	f := &File{Base: l.Base(), Torn: torn, Frames: make([]framelog.Batch, l.Frames())}
	for i := range f.Frames {
		b, err := l.ReadBatch(i)
		if err != nil {
			return nil, fmt.Errorf("framelogtest: read %s: %w", path, err)
		}
		for k, r := range b.Records {
			b.Records[k] = bytes.Clone(r)
		}
		b.Head = bytes.Clone(b.Head)
		f.Frames[i] = b
	}
	return f, nil
}

// Encode returns the file's bytes: the file header and every frame with
// correct CRCs, frames in the order of f.Frames. It checks each batch's
// shape (framelog.EncodeBatch) but not the chain between frames.
func (f *File) Encode() ([]byte, error) {
	var h [fileHeader]byte
	copy(h[:], "WARDENFL")
	binary.LittleEndian.PutUint32(h[8:], 1)
	binary.LittleEndian.PutUint64(h[16:], uint64(f.Base))
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	out := h[:]
	for i := range f.Frames {
		at := len(out)
		out = append(out, make([]byte, frameHeader)...)
		var err error
		if out, err = framelog.EncodeBatch(out, &f.Frames[i]); err != nil {
			return nil, fmt.Errorf("framelogtest: frame %d: %w", i, err)
		}
		fh, payload := out[at:at+frameHeader], out[at+frameHeader:]
		copy(fh, "WFR1")
		binary.LittleEndian.PutUint32(fh[4:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(fh[8:], crc32.Checksum(payload, castagnoli))
		binary.LittleEndian.PutUint32(fh[12:], crc32.Checksum(fh[:12], castagnoli))
	}
	return out, nil
}

// Write replaces the file at path with f's encoding. The log must not be
// open.
func (f *File) Write(path string) error {
	b, err := f.Encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("framelogtest: write: %w", err)
	}
	return nil
}

// Size is the seq after the last record.
func (f *File) Size() int64 {
	if len(f.Frames) == 0 {
		return f.Base
	}
	last := f.Frames[len(f.Frames)-1]
	return last.FirstSeq + int64(len(last.Records))
}

// FrameOf returns the number of the frame holding record seq.
func (f *File) FrameOf(seq int64) (int, error) {
	for i, b := range f.Frames {
		if seq >= b.FirstSeq && seq < b.FirstSeq+int64(len(b.Records)) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("framelogtest: no record %d in [%d, %d)", seq, f.Base, f.Size())
}

// Record returns record seq's bytes (the File's own slice: editing it
// edits the record).
func (f *File) Record(seq int64) ([]byte, error) {
	i, err := f.FrameOf(seq)
	if err != nil {
		return nil, err
	}
	return f.Frames[i].Records[seq-f.Frames[i].FirstSeq], nil
}

// SetRecord replaces record seq's bytes, leaving every stored hash as it
// was.
func (f *File) SetRecord(seq int64, data []byte) error {
	i, err := f.FrameOf(seq)
	if err != nil {
		return err
	}
	f.Frames[i].Records[seq-f.Frames[i].FirstSeq] = data
	return nil
}

// SwapRecords exchanges the bytes of records a and b (hashes unchanged).
func (f *File) SwapRecords(a, b int64) error {
	ra, err := f.Record(a)
	if err != nil {
		return err
	}
	rb, err := f.Record(b)
	if err != nil {
		return err
	}
	f.SetRecord(a, rb)
	f.SetRecord(b, ra)
	return nil
}

// TruncateAt deletes records seq onwards: the frames after the one
// holding seq go, and that frame keeps its records before seq and the
// hashes they add; its head, signed for records no longer there, goes
// too (SetHead can put one back). seq == Size() changes nothing.
func (f *File) TruncateAt(seq int64) error {
	if seq < f.Base || seq > f.Size() {
		return fmt.Errorf("framelogtest: truncate at %d outside [%d, %d]", seq, f.Base, f.Size())
	}
	for i := range f.Frames {
		b := &f.Frames[i]
		if b.FirstSeq >= seq {
			f.Frames = f.Frames[:i]
			return nil
		}
		if keep := seq - b.FirstSeq; keep < int64(len(b.Records)) {
			b.Records = b.Records[:keep]
			b.Hashes = b.Hashes[:tlog.StoredHashCount(seq)-b.HashStart]
			b.Head, b.HeadHistory = nil, false
			f.Frames = f.Frames[:i+1]
			return nil
		}
	}
	return nil
}

// DropFrames deletes the last k frames (records, hashes and heads): a cut
// at a frame boundary.
func (f *File) DropFrames(k int) error {
	if k < 0 || k > len(f.Frames) {
		return fmt.Errorf("framelogtest: drop %d of %d frames", k, len(f.Frames))
	}
	f.Frames = f.Frames[:len(f.Frames)-k]
	return nil
}

// DeleteRecord removes record seq and renumbers the later ones down by
// one, as deleting a row and shifting the rest would. The stored hashes
// stay where they were by index (the last record's go), so they no
// longer match the records from seq on. A frame left with no record goes,
// with its head.
func (f *File) DeleteRecord(seq int64) error {
	i, err := f.FrameOf(seq)
	if err != nil {
		return err
	}
	hashes := f.flatHashes()
	b := &f.Frames[i]
	b.Records = slices.Delete(b.Records, int(seq-b.FirstSeq), int(seq-b.FirstSeq)+1)
	if len(b.Records) == 0 {
		f.Frames = slices.Delete(f.Frames, i, i+1)
	}
	return f.renumber(hashes)
}

// InsertRecord puts data at seq and renumbers the records from seq on up
// by one; seq == Size() appends to the last frame. The stored hashes stay
// where they were by index and the ones the extra record needs at the end
// are computed from the records (as Warden's own code would), so the
// shifted records do not match theirs.
func (f *File) InsertRecord(seq int64, data []byte) error {
	if len(f.Frames) == 0 {
		return errors.New("framelogtest: insert into a file with no frames")
	}
	i, at := len(f.Frames)-1, len(f.Frames[len(f.Frames)-1].Records)
	if seq != f.Size() {
		var err error
		if i, err = f.FrameOf(seq); err != nil {
			return err
		}
		at = int(seq - f.Frames[i].FirstSeq)
	}
	hashes := f.flatHashes()
	f.Frames[i].Records = slices.Insert(f.Frames[i].Records, at, data)
	return f.renumber(hashes)
}

// SetHash overwrites the stored hash at index idx.
func (f *File) SetHash(idx int64, h tlog.Hash) error {
	for i := range f.Frames {
		b := &f.Frames[i]
		if idx >= b.HashStart && idx < b.HashStart+int64(len(b.Hashes)) {
			b.Hashes[idx-b.HashStart] = h
			return nil
		}
	}
	return fmt.Errorf("framelogtest: no stored hash %d", idx)
}

// Hash returns the stored hash at index idx.
func (f *File) Hash(idx int64) (tlog.Hash, error) {
	for _, b := range f.Frames {
		if idx >= b.HashStart && idx < b.HashStart+int64(len(b.Hashes)) {
			return b.Hashes[idx-b.HashStart], nil
		}
	}
	return tlog.Hash{}, fmt.Errorf("framelogtest: no stored hash %d", idx)
}

// Rehash recomputes the stored hashes of records [from, to) from the
// records as they are now, reading the hashes before them as stored: an
// attacker who knows the algorithm but not the signing key. Rehash(Base,
// Size()) makes every hash consistent with the edited records; a smaller
// range makes one frame consistent with its own records (its interior
// hashes over earlier records included) while later frames keep theirs.
func (f *File) Rehash(from, to int64) error {
	if from < f.Base || to < from || to > f.Size() {
		return fmt.Errorf("framelogtest: rehash [%d, %d) outside [%d, %d]", from, to, f.Base, f.Size())
	}
	lo := tlog.StoredHashCount(f.Base)
	old := f.flatHashes()
	hashes := slices.Clone(old[:tlog.StoredHashCount(from)-lo])
	if err := f.extend(&hashes, from, to); err != nil {
		return err
	}
	hashes = append(hashes, old[tlog.StoredHashCount(to)-lo:]...)
	return f.renumber(hashes)
}

// SetHead replaces frame i's head note and its history flag.
func (f *File) SetHead(i int, head []byte, history bool) error {
	if i < 0 || i >= len(f.Frames) {
		return fmt.Errorf("framelogtest: no frame %d of %d", i, len(f.Frames))
	}
	f.Frames[i].Head, f.Frames[i].HeadHistory = head, history
	return nil
}

// SwapFrames exchanges frames i and j as they are (each keeps its first
// seq and hashes): every CRC stays valid, the chain does not.
func (f *File) SwapFrames(i, j int) error {
	if i < 0 || j < 0 || i >= len(f.Frames) || j >= len(f.Frames) {
		return fmt.Errorf("framelogtest: swap frames %d and %d of %d", i, j, len(f.Frames))
	}
	f.Frames[i], f.Frames[j] = f.Frames[j], f.Frames[i]
	return nil
}

// flatHashes is every stored hash in index order from
// tlog.StoredHashCount(Base).
func (f *File) flatHashes() []tlog.Hash {
	var hs []tlog.Hash
	for _, b := range f.Frames {
		hs = append(hs, b.Hashes...)
	}
	return hs
}

// recordAt is record seq counted by position from Base (the frames'
// first seqs may be stale while a File is being renumbered).
func (f *File) recordAt(seq int64) []byte {
	n := f.Base
	for _, b := range f.Frames {
		if seq < n+int64(len(b.Records)) {
			return b.Records[seq-n]
		}
		n += int64(len(b.Records))
	}
	return nil
}

// extend appends to hashes (which ends at record from's first stored
// hash) the stored hashes of records [from, to), computed from the
// records by position.
func (f *File) extend(hashes *[]tlog.Hash, from, to int64) error {
	lo := tlog.StoredHashCount(f.Base)
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for k, x := range idx {
			switch {
			case x >= lo && x-lo < int64(len(*hashes)):
				out[k] = (*hashes)[x-lo]
			case x < lo && f.Prefix != nil:
				h, err := f.Prefix.ReadHashes([]int64{x})
				if err != nil {
					return nil, err
				}
				out[k] = h[0]
			default:
				return nil, fmt.Errorf("framelogtest: hash %d unknown (base %d, no Prefix)", x, f.Base)
			}
		}
		return out, nil
	})
	for n := from; n < to; n++ {
		hs, err := tlog.StoredHashes(n, f.recordAt(n), r)
		if err != nil {
			return fmt.Errorf("framelogtest: hashes of record %d: %w", n, err)
		}
		*hashes = append(*hashes, hs...)
	}
	return nil
}

// renumber gives the frames consecutive first seqs from Base and hands
// out hashes by index: hashes[k] is stored hash StoredHashCount(Base)+k.
// Missing hashes at the end are computed from the records; extra ones
// are dropped.
func (f *File) renumber(hashes []tlog.Hash) error {
	lo := tlog.StoredHashCount(f.Base)
	var total int64
	for _, b := range f.Frames {
		total += int64(len(b.Records))
	}
	end := f.Base + total
	if need := tlog.StoredHashCount(end) - lo; int64(len(hashes)) < need {
		m := f.Base
		for m < end && tlog.StoredHashCount(m)-lo < int64(len(hashes)) {
			m++
		}
		if tlog.StoredHashCount(m)-lo != int64(len(hashes)) {
			return fmt.Errorf("framelogtest: %d hashes end inside record %d's", len(hashes), m-1)
		}
		if err := f.extend(&hashes, m, end); err != nil {
			return err
		}
	}
	seq := f.Base
	for i := range f.Frames {
		b := &f.Frames[i]
		b.FirstSeq, b.HashStart = seq, tlog.StoredHashCount(seq)
		seq += int64(len(b.Records))
		b.Hashes = slices.Clone(hashes[b.HashStart-lo : tlog.StoredHashCount(seq)-lo])
	}
	return nil
}

// FrameOffset returns the file offset of frame i's header, walking the
// frame headers of the file at path (whose lengths it trusts).
func FrameOffset(path string, i int) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("framelogtest: %w", err)
	}
	off := int64(fileHeader)
	for k := 0; ; k++ {
		if off+frameHeader > int64(len(b)) {
			return 0, fmt.Errorf("framelogtest: %s has %d frames, not %d", path, k, i+1)
		}
		if k == i {
			return off, nil
		}
		off += frameHeader + int64(binary.LittleEndian.Uint32(b[off+4:]))
	}
}

// FlipByte XORs mask into the byte at offset off of frame i (counted from
// its header: off >= 16 is in the payload) of the file at path, without
// fixing any CRC.
func FlipByte(path string, i int, off int64, mask byte) error {
	at, err := FrameOffset(path, i)
	if err != nil {
		return err
	}
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("framelogtest: %w", err)
	}
	defer fh.Close()
	var c [1]byte
	if _, err := fh.ReadAt(c[:], at+off); err != nil {
		return fmt.Errorf("framelogtest: flip byte %d of frame %d: %w", off, i, err)
	}
	c[0] ^= mask
	if _, err := fh.WriteAt(c[:], at+off); err != nil {
		return fmt.Errorf("framelogtest: flip byte %d of frame %d: %w", off, i, err)
	}
	return nil
}
