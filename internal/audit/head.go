package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"strconv"
)

// The head file keeps the tree head signed after every batch, so that no
// acknowledged entry sits in an unsigned tail. Replacing a file per batch
// (temp file, fsync, rename, directory fsync) costs three journal commits;
// the head file is two fixed slots overwritten in turn, one fdatasync per
// batch and no metadata change. A torn write damages only the slot being
// written: the other still holds the previous head. Each slot is
//
//	"WHD1" | length (uint32 BE) | CRC-32C of the note (uint32 BE) | note | zero padding
//
// and the valid slot with the larger tree size is the head.
const (
	headMagic    = "WHD1"
	headSlotSize = 4096
	headHeader   = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// HeadPath is the head file kept beside the checkpoint file.
func HeadPath(checkpointFile string) string { return checkpointFile + ".head" }

// headFile writes heads into alternating slots.
type headFile struct {
	f    *os.File
	next int64  // slot to write next
	buf  []byte // one slot, reused: a head is written per batch
}

func openHeadFile(path string) (*headFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("audit: head file: %w", err)
	}
	h := &headFile{f: f}
	// Write over the older slot first, keeping the newer one.
	if b, err := os.ReadFile(path); err == nil {
		if s0, s1 := slotSize(b, 0), slotSize(b, 1); s0 > s1 {
			h.next = 1
		}
	}
	return h, nil
}

// write makes note the head: it overwrites the older slot, and syncs if
// sync is set (not when the store keeps the head durably: keptHead).
func (h *headFile) write(note []byte, sync bool) error {
	if len(note) > headSlotSize-headHeader {
		return fmt.Errorf("audit: head file: note of %d bytes does not fit a slot", len(note))
	}
	if h.buf == nil {
		h.buf = make([]byte, headSlotSize)
	}
	buf := h.buf
	copy(buf, headMagic)
	binary.BigEndian.PutUint32(buf[4:], uint32(len(note)))
	binary.BigEndian.PutUint32(buf[8:], crc32.Checksum(note, castagnoli))
	clear(buf[headHeader+copy(buf[headHeader:], note):]) // zero padding
	if _, err := h.f.WriteAt(buf, h.next*headSlotSize); err != nil {
		return fmt.Errorf("audit: head file: %w", err)
	}
	if !sync {
		h.next ^= 1
		return nil
	}
	if err := fdatasync(h.f); err != nil {
		return fmt.Errorf("audit: head file: sync: %w", err)
	}
	h.next ^= 1
	return nil
}

func (h *headFile) close() error { return h.f.Close() }

// slotNote returns the note in slot i of b, or nil if the slot is not
// valid (never written, torn).
func slotNote(b []byte, i int) []byte {
	off := i * headSlotSize
	if len(b) < off+headHeader || string(b[off:off+4]) != headMagic {
		return nil
	}
	n := int(binary.BigEndian.Uint32(b[off+4:]))
	if n > headSlotSize-headHeader || len(b) < off+headHeader+n {
		return nil
	}
	note := b[off+headHeader : off+headHeader+n]
	if crc32.Checksum(note, castagnoli) != binary.BigEndian.Uint32(b[off+8:]) {
		return nil
	}
	return note
}

// slotSize is the tree size a slot's note claims (-1 if none). The
// signature is checked by whoever uses the note.
func slotSize(b []byte, i int) int64 {
	return noteSize(slotNote(b, i))
}

// noteSize reads the tree size line of a checkpoint note (-1 if none).
func noteSize(note []byte) int64 {
	_, rest, ok := bytes.Cut(note, []byte("\n"))
	if !ok {
		return -1
	}
	line, _, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(string(line), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// ReadExternal returns the newest signed checkpoint kept outside the
// store: the head file's (signed after every batch) or the checkpoint
// file's, whichever claims the larger tree; nil if neither exists. The
// signature is not checked here: Verify checks it (a forged head is a
// divergence, not something to skip).
func ReadExternal(checkpointFile string) ([]byte, error) {
	b, _, err := readExternal(checkpointFile)
	return b, err
}

// Where ReadHeadFrom found the head it returns, for messages
// (VerifyOptions.ExternalSource); a HeadKeeper may name its own
// (HeadSourcer).
const (
	SourceCheckpointFile = "checkpoint file"
	SourceHeadFile       = "head file"
	SourceStore          = "store's head"
)

// HeadSourcer is implemented by a HeadKeeper that can say where its
// Head is kept (the SQLite store: its frame file's last head), for
// messages naming the head's source.
type HeadSourcer interface {
	HeadSource() string
}

// readExternal is ReadExternal, also saying which file the note is from.
func readExternal(checkpointFile string) ([]byte, string, error) {
	cp, err := os.ReadFile(checkpointFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	b, err := os.ReadFile(HeadPath(checkpointFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	best, src := cp, SourceCheckpointFile
	for i := range 2 {
		if note := slotNote(b, i); note != nil && noteSize(note) > noteSize(best) {
			best, src = note, SourceHeadFile
		}
	}
	if len(best) == 0 {
		return nil, "", nil
	}
	return bytes.Clone(best), src, nil
}

// ReadHead returns the newest signed tree head kept for st: the head its
// batches committed with them (HeadKeeper, the durable copy), or
// ReadExternal's (checkpointFile may be empty), whichever claims the
// larger tree; nil if there is none. Verification passes it as
// VerifyOptions.External.
func ReadHead(ctx context.Context, st Store, checkpointFile string) ([]byte, error) {
	b, _, err := ReadHeadFrom(ctx, st, checkpointFile)
	return b, err
}

// ReadHeadFrom is ReadHead, also saying where the head was found
// (SourceCheckpointFile, SourceHeadFile, the store's HeadSource or
// SourceStore; "" with no head), for VerifyOptions.ExternalSource.
func ReadHeadFrom(ctx context.Context, st Store, checkpointFile string) (head []byte, source string, err error) {
	var best []byte
	var src string
	if checkpointFile != "" {
		if best, src, err = readExternal(checkpointFile); err != nil {
			return nil, "", err
		}
	}
	if hk, ok := st.(HeadKeeper); ok {
		b, err := hk.Head(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("audit: read head: %w", err)
		}
		if b != nil && noteSize(b) > noteSize(best) {
			best, src = bytes.Clone(b), SourceStore
			if hs, ok := st.(HeadSourcer); ok {
				src = hs.HeadSource()
			}
		}
	}
	return best, src, nil
}
