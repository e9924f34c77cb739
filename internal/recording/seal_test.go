package recording

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

const testID = "0193a4f5c2e1a9f8e7d6c5b4a39210000"

func seal(t *testing.T, dk, plain []byte, id string) []byte {
	t.Helper()
	var buf bytes.Buffer
	sw, err := newSealWriter(&buf, dk, id)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes, so chunk boundaries fall inside writes.
	for p := plain; len(p) > 0; {
		n := min(len(p), 7919)
		if _, err := sw.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func unseal(obj, dk []byte, id string) ([]byte, error) {
	or, err := newOpenReader(bytes.NewReader(obj), dk, id)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(or)
}

func newKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

func TestSealRoundTrip(t *testing.T) {
	dk := newKey()
	for _, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3*chunkSize + 5, 4 * chunkSize} {
		plain := make([]byte, n)
		rand.Read(plain)
		obj := seal(t, dk, plain, testID)
		chunks := n/chunkSize + 1
		if n > 0 && n%chunkSize == 0 {
			chunks = n / chunkSize
		}
		if want := len(objectHeader(testID)) + n + 16*chunks; len(obj) != want {
			t.Errorf("%d bytes: object of %d bytes, want %d", n, len(obj), want)
		}
		got, err := unseal(obj, dk, testID)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%d bytes: round trip: %v", n, err)
		}
	}
}

// TestSealEveryByteFlipped: a flip anywhere in an object (header, tags,
// ciphertext, across three chunks) is reported as corruption.
func TestSealEveryByteFlipped(t *testing.T) {
	dk := newKey()
	plain := make([]byte, 2*chunkSize+100)
	rand.Read(plain)
	obj := seal(t, dk, plain, testID)
	// Every byte of the header and of each chunk's edges, and a stride
	// through the rest (the full object is ~130k positions).
	var positions []int
	for i := range obj {
		if i < 64 || i%997 == 0 || (i+16)%(chunkSize+16) < 40 || i > len(obj)-40 {
			positions = append(positions, i)
		}
	}
	for _, i := range positions {
		m := bytes.Clone(obj)
		m[i] ^= 0x40
		got, err := unseal(m, dk, testID)
		if !IsCorrupt(err) {
			t.Fatalf("flip at %d of %d: err %v (read %d bytes), want CorruptError", i, len(obj), err, len(got))
		}
	}
}

func TestSealTruncatedReorderedExtended(t *testing.T) {
	dk := newKey()
	plain := make([]byte, 3*chunkSize)
	rand.Read(plain)
	obj := seal(t, dk, plain, testID)
	hl := len(objectHeader(testID))
	cl := chunkSize + 16
	cases := map[string][]byte{
		"at a chunk boundary":   obj[:hl+2*cl],
		"inside a chunk":        obj[:hl+cl+100],
		"inside a tag":          obj[:len(obj)-3],
		"header only":           obj[:hl],
		"half a header":         obj[:hl/2],
		"empty":                 {},
		"chunks swapped":        append(append(append(bytes.Clone(obj[:hl]), obj[hl+cl:hl+2*cl]...), obj[hl:hl+cl]...), obj[hl+2*cl:]...),
		"a chunk dropped":       append(bytes.Clone(obj[:hl+cl]), obj[hl+2*cl:]...),
		"last chunk duplicated": append(bytes.Clone(obj), obj[hl+2*cl:]...),
		"junk appended":         append(bytes.Clone(obj), 0),
	}
	for name, m := range cases {
		if _, err := unseal(m, dk, testID); !IsCorrupt(err) {
			t.Errorf("%s: %v, want CorruptError", name, err)
		}
	}
}

func TestSealWrongKeyOrID(t *testing.T) {
	dk := newKey()
	obj := seal(t, dk, []byte("the answer"), testID)
	if _, err := unseal(obj, newKey(), testID); !IsCorrupt(err) {
		t.Errorf("another data key: %v, want CorruptError", err)
	}
	if _, err := unseal(obj, dk, "0193a4f5c2e1a9f8e7d6c5b4a39219999"); !IsCorrupt(err) {
		t.Errorf("another recording id: %v, want CorruptError", err)
	}
	// The same id in a forged header does not help either: the header is
	// authenticated data of every chunk.
	other := seal(t, dk, []byte("the answer"), "0193a4f5c2e1a9f8e7d6c5b4a39219999")
	forged := append(objectHeader(testID), other[len(objectHeader("0193a4f5c2e1a9f8e7d6c5b4a39219999")):]...)
	if _, err := unseal(forged, dk, testID); !IsCorrupt(err) {
		t.Errorf("object of another id under this id's header: %v, want CorruptError", err)
	}
}

// failingReader fails after n bytes, as a dropped S3 connection would.
type failingReader struct {
	r io.Reader
	n int
}

var errNetwork = errors.New("connection reset")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errNetwork
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestSealReadErrorIsNotCorruption(t *testing.T) {
	dk := newKey()
	plain := make([]byte, 2*chunkSize)
	obj := seal(t, dk, plain, testID)
	or, err := newOpenReader(&failingReader{r: bytes.NewReader(obj), n: chunkSize + 500}, dk, testID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(or)
	if !errors.Is(err, errNetwork) || IsCorrupt(err) {
		t.Errorf("an outage while reading: %v; want the network error, not corruption", err)
	}
}
