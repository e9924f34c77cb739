package framelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"golang.org/x/mod/sumdb/tlog"
)

// Batch is the content of one frame: consecutive records and what they
// add to the log's Merkle tree, as the audit log commits them together.
type Batch struct {
	// FirstSeq is the sequence number of Records[0].
	FirstSeq int64
	// Records are the entries' canonical bytes, FirstSeq onwards (at least
	// one).
	Records [][]byte
	// HashStart is the stored-hash index of Hashes[0]; it must equal
	// tlog.StoredHashCount(FirstSeq).
	HashStart int64
	// Hashes are the stored hashes the records add, in tlog.StoredHashes
	// order: tlog.StoredHashCount(FirstSeq+len(Records)) - HashStart of
	// them.
	Hashes []tlog.Hash
	// Head is the signed note of the tree after the batch (may be empty).
	Head []byte
	// HeadHistory marks Head as a checkpoint to keep in the history.
	HeadHistory bool
}

// batchPrefix is the fixed start of a batch payload: first seq u64,
// count u32, flags u32, hash start u64.
const batchPrefix = 24

// hashesAt is the payload offset of a batch's first hash (after the
// prefix and the hash count).
const hashesAt = batchPrefix + 4

const flagHeadHistory = 1

// maxRecord bounds one record's length (the payload bound applies too).
const maxRecord = MaxPayload

// ErrBatch wraps every error of EncodeBatch and DecodeBatch.
var ErrBatch = errors.New("framelog: invalid batch")

// hashCount is the number of stored hashes records [first, first+n) add.
func hashCount(first int64, n int) int64 {
	return tlog.StoredHashCount(first+int64(n)) - tlog.StoredHashCount(first)
}

// check validates b's shape (not its hashes' values).
func (b *Batch) check() error {
	switch {
	case len(b.Records) == 0:
		return fmt.Errorf("%w: no records", ErrBatch)
	case len(b.Records) > math.MaxUint32:
		return fmt.Errorf("%w: %d records", ErrBatch, len(b.Records))
	case b.FirstSeq < 0 || b.FirstSeq > math.MaxInt64-int64(len(b.Records)):
		return fmt.Errorf("%w: first seq %d", ErrBatch, b.FirstSeq)
	case b.HashStart != tlog.StoredHashCount(b.FirstSeq):
		return fmt.Errorf("%w: hash start %d, want %d for first seq %d", ErrBatch, b.HashStart, tlog.StoredHashCount(b.FirstSeq), b.FirstSeq)
	case int64(len(b.Hashes)) != hashCount(b.FirstSeq, len(b.Records)):
		return fmt.Errorf("%w: %d hashes, want %d for records [%d, %d)", ErrBatch, len(b.Hashes), hashCount(b.FirstSeq, len(b.Records)), b.FirstSeq, b.FirstSeq+int64(len(b.Records)))
	}
	return nil
}

// EncodedLen is the length of b's payload.
func (b *Batch) EncodedLen() int {
	n := batchPrefix + 4*len(b.Records) + 4 + 32*len(b.Hashes) + 4 + len(b.Head)
	for _, r := range b.Records {
		n += len(r)
	}
	return n
}

// EncodeBatch appends b's payload to dst:
//
//	first seq u64 | count u32 | flags u32 | hash start u64 |
//	hash count u32 | hash count × 32 bytes |
//	count × (record length u32 | record bytes) |
//	head length u32 | head bytes
//
// flags bit 0 is HeadHistory; the other bits are zero. The hashes come
// before the records so that hash i of a frame is at a fixed offset,
// hashesAt + 32*i, and a proof's hash reads need the frame index only,
// not the records' lengths.
func EncodeBatch(dst []byte, b *Batch) ([]byte, error) {
	if err := b.check(); err != nil {
		return dst, err
	}
	n := b.EncodedLen()
	if n > MaxPayload {
		return dst, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrBatch, n, MaxPayload)
	}
	dst = grow(dst, n)
	var flags uint32
	if b.HeadHistory {
		flags |= flagHeadHistory
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(b.FirstSeq))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b.Records)))
	dst = binary.LittleEndian.AppendUint32(dst, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(b.HashStart))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b.Hashes)))
	for i := range b.Hashes {
		dst = append(dst, b.Hashes[i][:]...)
	}
	for _, r := range b.Records {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r)))
		dst = append(dst, r...)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b.Head)))
	dst = append(dst, b.Head...)
	return dst, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		return nb
	}
	return b
}

// prefix is the fixed part of a batch payload, read at Open.
type prefix struct {
	first     int64
	count     int
	flags     uint32
	hashStart int64
}

func parsePrefix(p []byte) (prefix, error) {
	if len(p) < batchPrefix {
		return prefix{}, fmt.Errorf("%w: payload of %d bytes is shorter than the batch prefix", ErrBatch, len(p))
	}
	x := prefix{
		first:     int64(binary.LittleEndian.Uint64(p)),
		count:     int(binary.LittleEndian.Uint32(p[8:])),
		flags:     binary.LittleEndian.Uint32(p[12:]),
		hashStart: int64(binary.LittleEndian.Uint64(p[16:])),
	}
	switch {
	case x.first < 0 || x.first > math.MaxInt64-int64(x.count):
		return x, fmt.Errorf("%w: first seq %d", ErrBatch, x.first)
	case x.count == 0:
		return x, fmt.Errorf("%w: no records", ErrBatch)
	case x.flags&^flagHeadHistory != 0:
		return x, fmt.Errorf("%w: unknown flags %#x", ErrBatch, x.flags)
	case x.hashStart != tlog.StoredHashCount(x.first):
		return x, fmt.Errorf("%w: hash start %d, want %d for first seq %d", ErrBatch, x.hashStart, tlog.StoredHashCount(x.first), x.first)
	case x.count > (len(p)-batchPrefix)/4:
		return x, fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrBatch, x.count, len(p))
	}
	return x, nil
}

// DecodeBatch parses a payload written by EncodeBatch. It is strict:
// every length must fit, the hash count must be the one the records
// add, unknown flags and trailing bytes are refused. The returned
// Records and Head alias p.
func DecodeBatch(p []byte) (Batch, error) {
	x, err := parsePrefix(p)
	if err != nil {
		return Batch{}, err
	}
	b := Batch{FirstSeq: x.first, HashStart: x.hashStart, HeadHistory: x.flags&flagHeadHistory != 0}
	rest := p[batchPrefix:]
	if len(rest) < 4 {
		return Batch{}, fmt.Errorf("%w: hash count cut off", ErrBatch)
	}
	nh := int64(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if want := hashCount(x.first, x.count); nh != want {
		return Batch{}, fmt.Errorf("%w: %d hashes, want %d", ErrBatch, nh, want)
	}
	if nh*32 > int64(len(rest)) {
		return Batch{}, fmt.Errorf("%w: %d hashes, %d bytes left", ErrBatch, nh, len(rest))
	}
	b.Hashes = make([]tlog.Hash, nh)
	for i := range b.Hashes {
		copy(b.Hashes[i][:], rest[32*i:])
	}
	rest = rest[32*nh:]
	take := func(what string) ([]byte, error) {
		if len(rest) < 4 {
			return nil, fmt.Errorf("%w: %s length cut off", ErrBatch, what)
		}
		n := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: %s of %d bytes, %d left", ErrBatch, what, n, len(rest))
		}
		v := rest[:n:n]
		rest = rest[n:]
		return v, nil
	}
	if x.count > len(rest)/4 {
		return Batch{}, fmt.Errorf("%w: %d records cannot fit in %d bytes", ErrBatch, x.count, len(rest))
	}
	b.Records = make([][]byte, x.count)
	for i := range b.Records {
		if b.Records[i], err = take("record"); err != nil {
			return Batch{}, err
		}
	}
	if b.Head, err = take("head"); err != nil {
		return Batch{}, err
	}
	if len(b.Head) == 0 {
		b.Head = nil
	}
	if len(rest) != 0 {
		return Batch{}, fmt.Errorf("%w: %d trailing bytes", ErrBatch, len(rest))
	}
	return b, nil
}

// HeadHistory reports whether a batch payload's HeadHistory flag is set
// (false for a payload shorter than the batch prefix): a test that costs
// one load, for a visitor that wants only the history heads before it
// calls BatchHead.
func HeadHistory(p []byte) bool {
	return len(p) >= batchPrefix && binary.LittleEndian.Uint32(p[12:])&flagHeadHistory != 0
}

// BatchHead reads a batch payload's head without decoding its records:
// end is the sequence number after its last record, head the signed
// note (nil if none; it aliases p) and history its HeadHistory flag. It
// walks the record lengths and checks that they and the head fill the
// payload exactly, as DecodeBatch does, but allocates nothing.
func BatchHead(p []byte) (end int64, head []byte, history bool, err error) {
	x, err := parsePrefix(p)
	if err != nil {
		return 0, nil, false, err
	}
	rest := p[batchPrefix:]
	if len(rest) < 4 {
		return 0, nil, false, fmt.Errorf("%w: hash count cut off", ErrBatch)
	}
	nh := int64(binary.LittleEndian.Uint32(rest))
	if want := hashCount(x.first, x.count); nh != want || 4+32*nh > int64(len(rest)) {
		return 0, nil, false, fmt.Errorf("%w: %d hashes (want %d) in %d bytes", ErrBatch, nh, want, len(rest))
	}
	at := uint64(batchPrefix + 4 + 32*nh)
	for i := 0; i <= x.count; i++ { // the records, then the head
		if uint64(len(p))-at < 4 {
			return 0, nil, false, fmt.Errorf("%w: length %d of %d cut off", ErrBatch, i, x.count+1)
		}
		n := uint64(binary.LittleEndian.Uint32(p[at:]))
		at += 4
		if n > uint64(len(p))-at {
			return 0, nil, false, fmt.Errorf("%w: item %d of %d bytes, %d left", ErrBatch, i, n, uint64(len(p))-at)
		}
		if i == x.count {
			head = p[at : at+n : at+n]
		}
		at += n
	}
	if at != uint64(len(p)) {
		return 0, nil, false, fmt.Errorf("%w: %d trailing bytes", ErrBatch, uint64(len(p))-at)
	}
	if len(head) == 0 {
		head = nil
	}
	return x.first + int64(x.count), head, x.flags&flagHeadHistory != 0, nil
}
