package framelog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// chain builds consecutive batches of the given sizes from seq first with
// their real tree hashes (records [0, first) hashed too, so hash indexes
// are right), record i's bytes a deterministic function of i.
type chain struct {
	hs  []tlog.Hash
	seq int64
}

func (c *chain) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = c.hs[x]
		}
		return out, nil
	})
}

func record(seq int64) []byte {
	r := rand.New(rand.NewPCG(uint64(seq), 7))
	b := fmt.Appendf(nil, `{"seq":%d,"pad":"`, seq)
	for range 20 + r.IntN(200) {
		b = append(b, byte('a'+r.IntN(26)))
	}
	return append(b, `"}`...)
}

func (c *chain) next(t testing.TB, n int) *Batch {
	t.Helper()
	b := &Batch{FirstSeq: c.seq, HashStart: tlog.StoredHashCount(c.seq)}
	for range n {
		data := record(c.seq)
		add, err := tlog.StoredHashes(c.seq, data, c.reader())
		if err != nil {
			t.Fatal(err)
		}
		c.hs = append(c.hs, add...)
		b.Records = append(b.Records, data)
		b.Hashes = append(b.Hashes, add...)
		c.seq++
	}
	b.Head = fmt.Appendf(nil, "example.com/log\n%d\nroot\n\n— key sig\n", c.seq)
	b.HeadHistory = c.seq%3 == 0
	return b
}

// newChain starts at seq base (hashing records [0, base) first).
func newChain(t testing.TB, base int64) *chain {
	c := &chain{}
	for c.seq < base {
		c.next(t, 1)
	}
	return c
}

func equalBatch(t *testing.T, got, want *Batch) {
	t.Helper()
	if got.FirstSeq != want.FirstSeq || got.HashStart != want.HashStart || got.HeadHistory != want.HeadHistory ||
		len(got.Records) != len(want.Records) || len(got.Hashes) != len(want.Hashes) || !bytes.Equal(got.Head, want.Head) {
		t.Fatalf("batch differs: got first %d (%d records, %d hashes, history %v), want first %d (%d records, %d hashes, history %v)",
			got.FirstSeq, len(got.Records), len(got.Hashes), got.HeadHistory, want.FirstSeq, len(want.Records), len(want.Hashes), want.HeadHistory)
	}
	for i := range got.Records {
		if !bytes.Equal(got.Records[i], want.Records[i]) {
			t.Fatalf("record %d differs", got.FirstSeq+int64(i))
		}
	}
	for i := range got.Hashes {
		if got.Hashes[i] != want.Hashes[i] {
			t.Fatalf("hash %d differs", got.HashStart+int64(i))
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	c := newChain(t, 0)
	for _, n := range []int{1, 2, 3, 7, 64, 255} {
		b := c.next(t, n)
		p, err := EncodeBatch([]byte("keep"), b)
		if err != nil {
			t.Fatal(err)
		}
		if string(p[:4]) != "keep" || len(p) != 4+b.EncodedLen() {
			t.Fatalf("EncodeBatch did not append %d bytes to dst", b.EncodedLen())
		}
		got, err := DecodeBatch(p[4:])
		if err != nil {
			t.Fatal(err)
		}
		equalBatch(t, &got, b)
	}
	// An empty head decodes as none.
	b := c.next(t, 1)
	b.Head = nil
	p, err := EncodeBatch(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(p)
	if err != nil || got.Head != nil {
		t.Fatalf("empty head: %v, %q", err, got.Head)
	}
}

func TestEncodeBatchRefuses(t *testing.T) {
	c := newChain(t, 5)
	for _, tc := range []struct {
		name string
		edit func(b *Batch)
	}{
		{"no records", func(b *Batch) { b.Records = nil; b.Hashes = nil }},
		{"hash start", func(b *Batch) { b.HashStart++ }},
		{"one hash short", func(b *Batch) { b.Hashes = b.Hashes[1:] }},
		{"one hash more", func(b *Batch) { b.Hashes = append(b.Hashes, tlog.Hash{}) }},
		{"negative seq", func(b *Batch) { b.FirstSeq = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := *c.next(t, 3)
			tc.edit(&b)
			if _, err := EncodeBatch(nil, &b); !errors.Is(err, ErrBatch) {
				t.Fatalf("EncodeBatch: %v, want ErrBatch", err)
			}
		})
	}
}

func TestDecodeBatchRefuses(t *testing.T) {
	c := newChain(t, 9)
	b := c.next(t, 4)
	p, err := EncodeBatch(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	// Every truncation, and one byte more, is refused.
	for n := range len(p) {
		if _, err := DecodeBatch(p[:n]); !errors.Is(err, ErrBatch) {
			t.Fatalf("payload cut to %d of %d bytes: %v, want ErrBatch", n, len(p), err)
		}
	}
	if _, err := DecodeBatch(append(p[:len(p):len(p)], 0)); !errors.Is(err, ErrBatch) {
		t.Fatalf("trailing byte: %v", err)
	}
	set := func(off int, v uint32) []byte {
		q := bytes.Clone(p)
		binary.LittleEndian.PutUint32(q[off:], v)
		return q
	}
	firstRecord := hashesAt + 32*len(b.Hashes)
	for name, q := range map[string][]byte{
		"count zero":       set(8, 0),
		"count one more":   set(8, 5),
		"count huge":       set(8, 1<<31),
		"unknown flag":     set(12, 2),
		"hash start":       set(16, 3),
		"seq negative":     set(4, 1<<31),
		"record too long":  set(firstRecord, uint32(len(p))),
		"hash count":       set(batchPrefix, uint32(len(b.Hashes)+1)),
		"hash count huge":  set(batchPrefix, 1<<30),
		"head too long":    set(len(p)-len(b.Head)-4, uint32(len(b.Head)+1)),
		"head one short":   set(len(p)-len(b.Head)-4, uint32(len(b.Head)-1)),
		"first record len": set(firstRecord, uint32(len(b.Records[0])-1)),
	} {
		if _, err := DecodeBatch(q); !errors.Is(err, ErrBatch) {
			t.Errorf("%s: %v, want ErrBatch", name, err)
		}
	}
}

// addBatchSeeds adds the payloads of three chained batches (1, 2 and 5
// records) to f's corpus.
func addBatchSeeds(f *testing.F) {
	c := newChain(f, 0)
	for _, n := range []int{1, 2, 5} {
		p, err := EncodeBatch(nil, c.next(f, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
}

// FuzzDecodeBatch: nothing panics, and whatever decodes re-encodes to the
// same bytes (the format is strict: one encoding per batch).
func FuzzDecodeBatch(f *testing.F) {
	addBatchSeeds(f)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := DecodeBatch(p)
		if err != nil {
			if !errors.Is(err, ErrBatch) {
				t.Fatalf("error %v does not wrap ErrBatch", err)
			}
			return
		}
		q, err := EncodeBatch(nil, &b)
		if err != nil {
			t.Fatalf("decoded batch does not encode: %v", err)
		}
		if !bytes.Equal(p, q) {
			t.Fatalf("re-encoding differs:\n%x\n%x", p, q)
		}
	})
}

// TestBatchHead: BatchHead agrees with DecodeBatch on every payload
// DecodeBatch takes (with and without a head), and refuses every
// truncation, a trailing byte and each mangled length DecodeBatch
// refuses.
func TestBatchHead(t *testing.T) {
	c := newChain(t, 5)
	for _, n := range []int{1, 2, 3, 7} {
		b := c.next(t, n)
		for _, head := range [][]byte{b.Head, nil} {
			b.Head = head
			p, err := EncodeBatch(nil, b)
			if err != nil {
				t.Fatal(err)
			}
			end, h, hist, err := BatchHead(p)
			if err != nil || end != b.FirstSeq+int64(n) || !bytes.Equal(h, head) || (h == nil) != (head == nil) || hist != b.HeadHistory || HeadHistory(p) != b.HeadHistory {
				t.Fatalf("BatchHead of %d records (head %q) = %d, %q, %v, %v; want %d, the head, %v",
					n, head, end, h, hist, err, b.FirstSeq+int64(n), b.HeadHistory)
			}
			for k := range len(p) {
				if _, _, _, err := BatchHead(p[:k]); !errors.Is(err, ErrBatch) {
					t.Fatalf("payload cut to %d of %d bytes: %v, want ErrBatch", k, len(p), err)
				}
			}
			if _, _, _, err := BatchHead(append(p[:len(p):len(p)], 0)); !errors.Is(err, ErrBatch) {
				t.Fatalf("trailing byte: %v, want ErrBatch", err)
			}
			firstRecord := hashesAt + 32*len(b.Hashes)
			headLen := len(p) - len(head) - 4
			for _, m := range []struct {
				off int
				v   uint32
			}{
				{batchPrefix, uint32(len(b.Hashes) + 1)},
				{firstRecord, uint32(len(p))},
				{firstRecord, uint32(len(b.Records[0]) + 1)},
				{firstRecord, uint32(len(b.Records[0]) - 1)},
				{headLen, uint32(len(head) + 1)},
				{headLen, 1 << 30},
			} {
				off, v := m.off, m.v
				q := bytes.Clone(p)
				binary.LittleEndian.PutUint32(q[off:], v)
				_, derr := DecodeBatch(q)
				if _, _, _, err := BatchHead(q); (err == nil) != (derr == nil) || (err != nil && !errors.Is(err, ErrBatch)) {
					t.Errorf("%d records, u32 %d at offset %d: BatchHead %v, DecodeBatch %v", n, v, off, err, derr)
				}
			}
		}
	}
}

// FuzzBatchHead: BatchHead takes exactly the payloads DecodeBatch takes
// and returns the same head.
func FuzzBatchHead(f *testing.F) {
	addBatchSeeds(f)
	f.Fuzz(func(t *testing.T, p []byte) {
		b, derr := DecodeBatch(p)
		end, head, hist, err := BatchHead(p)
		if (err == nil) != (derr == nil) {
			t.Fatalf("BatchHead %v, DecodeBatch %v", err, derr)
		}
		if err == nil && (end != b.FirstSeq+int64(len(b.Records)) || !bytes.Equal(head, b.Head) || hist != b.HeadHistory || HeadHistory(p) != hist) {
			t.Fatalf("BatchHead = %d %q %v, DecodeBatch = %d %q %v", end, head, hist, b.FirstSeq+int64(len(b.Records)), b.Head, b.HeadHistory)
		}
	})
}
