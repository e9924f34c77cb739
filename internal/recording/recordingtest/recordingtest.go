// Package recordingtest is the conformance suite of the recording
// package's storage interfaces: every recording.BlobStore passes
// RunBlobStore and every recording.Catalog passes RunCatalog.
//
//	func TestBlobConformance(t *testing.T) {
//		recordingtest.RunBlobStore(t, func(t *testing.T) recording.BlobStore { return newStore(t) })
//	}
//
// open must return a new, empty store and register its cleanup with t.
package recordingtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/recording"
)

// RunBlobStore runs the BlobStore contract.
func RunBlobStore(t *testing.T, open func(t *testing.T) recording.BlobStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s recording.BlobStore)
	}{
		{"PutGet", testPutGet},
		{"Replace", testReplace},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"List", testList},
		{"InvalidKeys", testInvalidKeys},
		{"ShortReader", testShortReader},
		{"Canceled", testCanceled},
		{"Probe", testProbe},
		{"Concurrent", testConcurrentPuts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func put(t *testing.T, s recording.BlobStore, key string, b []byte) {
	t.Helper()
	if err := s.Put(ctx(t), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put(%s, %d bytes): %v", key, len(b), err)
	}
}

func get(t *testing.T, s recording.BlobStore, key string) []byte {
	t.Helper()
	rc, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s): read: %v", key, err)
	}
	return b
}

func testPutGet(t *testing.T, s recording.BlobStore) {
	for _, n := range []int{0, 1, 100, 64<<10 + 17, 3 << 20} {
		key := fmt.Sprintf("2026/01/02/obj-%d.wrec", n)
		want := randBytes(n)
		put(t, s, key, want)
		if got := get(t, s, key); !bytes.Equal(got, want) {
			t.Errorf("Get(%s): %d bytes differ from the %d put", key, len(got), n)
		}
	}
}

func testReplace(t *testing.T, s recording.BlobStore) {
	put(t, s, "a/x.wrec", []byte("first version"))
	put(t, s, "a/x.wrec", []byte("second"))
	if got := string(get(t, s, "a/x.wrec")); got != "second" {
		t.Errorf("after replacing: %q", got)
	}
}

func testMissing(t *testing.T, s recording.BlobStore) {
	_, err := s.Get(ctx(t), "no/such/object.wrec")
	if !errors.Is(err, recording.ErrNotFound) {
		t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, s recording.BlobStore) {
	put(t, s, "d/1.wrec", []byte("x"))
	if err := s.Delete(ctx(t), "d/1.wrec"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx(t), "d/1.wrec"); !errors.Is(err, recording.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx(t), "d/1.wrec"); err != nil {
		t.Errorf("second Delete: %v, want nil", err)
	}
	if err := s.Delete(ctx(t), "never/there.wrec"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
}

func testList(t *testing.T, s recording.BlobStore) {
	keys := []string{"2026/01/02/b.wrec", "2026/01/02/a.wrec", "2026/01/03/c.wrec", "2026/01/02.x/d.wrec", "2027/e.wrec"}
	for i, k := range keys {
		put(t, s, k, make([]byte, i+1))
	}
	var got []string
	sizes := map[string]int64{}
	err := s.List(ctx(t), "2026/01/", func(k string, n int64) error {
		got = append(got, k)
		sizes[k] = n
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	want := []string{"2026/01/02.x/d.wrec", "2026/01/02/a.wrec", "2026/01/02/b.wrec", "2026/01/03/c.wrec"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List(2026/01/) = %v, want %v (lexical order)", got, want)
	}
	if sizes["2026/01/03/c.wrec"] != 3 {
		t.Errorf("size of c = %d, want 3", sizes["2026/01/03/c.wrec"])
	}
	stop := errors.New("stop")
	n := 0
	err = s.List(ctx(t), "", func(string, int64) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("List stopped by fn: err %v after %d calls, want stop after 1", err, n)
	}
	n = 0
	if err := s.List(ctx(t), "", func(string, int64) error { n++; return nil }); err != nil || n != len(keys) {
		t.Errorf("List(\"\") = %d objects, %v; want %d (probe objects are not listed)", n, err, len(keys))
	}
}

func testInvalidKeys(t *testing.T, s recording.BlobStore) {
	for _, k := range []string{"", "/abs.wrec", "../up.wrec", "a/../b.wrec", "a//b.wrec", "A.wrec", "a b.wrec", "a/./b.wrec", "x\\y.wrec", "a/"} {
		if err := s.Put(ctx(t), k, bytes.NewReader([]byte("x")), 1); err == nil {
			t.Errorf("Put(%q) accepted an invalid key", k)
		}
		if _, err := s.Get(ctx(t), k); err == nil || errors.Is(err, recording.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want an invalid-key error", k, err)
		}
	}
}

func testShortReader(t *testing.T, s recording.BlobStore) {
	err := s.Put(ctx(t), "short/x.wrec", bytes.NewReader([]byte("only ten b")), 1000)
	if err == nil {
		t.Fatal("Put with a reader shorter than size succeeded")
	}
	if _, err := s.Get(ctx(t), "short/x.wrec"); !errors.Is(err, recording.ErrNotFound) {
		t.Errorf("a failed Put left an object behind: %v", err)
	}
}

// slowReader delivers data slowly, so a cancellation lands mid-Put.
type slowReader struct {
	n     int
	after func()
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if r.after != nil {
		r.after()
		r.after = nil
	}
	time.Sleep(time.Millisecond)
	k := min(len(p), r.n, 4096)
	r.n -= k
	return k, nil
}

func testCanceled(t *testing.T, s recording.BlobStore) {
	c, cancel := context.WithCancel(ctx(t))
	err := s.Put(c, "cancel/x.wrec", &slowReader{n: 8 << 20, after: cancel}, 8<<20)
	if err == nil {
		t.Fatal("Put succeeded after its context was canceled")
	}
	if _, err := s.Get(ctx(t), "cancel/x.wrec"); !errors.Is(err, recording.ErrNotFound) {
		t.Errorf("a canceled Put left an object behind: %v", err)
	}
}

func testProbe(t *testing.T, s recording.BlobStore) {
	if err := s.Probe(ctx(t)); err != nil {
		t.Fatalf("Probe on a healthy store: %v", err)
	}
}

func testConcurrentPuts(t *testing.T, s recording.BlobStore) {
	var wg sync.WaitGroup
	data := make([][]byte, 16)
	for i := range data {
		data[i] = randBytes(10_000 + i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Put(ctx(t), fmt.Sprintf("conc/%02d.wrec", i), bytes.NewReader(data[i]), int64(len(data[i]))); err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	for i := range data {
		if got := get(t, s, fmt.Sprintf("conc/%02d.wrec", i)); !bytes.Equal(got, data[i]) {
			t.Errorf("object %d differs", i)
		}
	}
}
