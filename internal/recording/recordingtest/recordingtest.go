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
	"strings"
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
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"InvalidNames", testInvalidNames},
		{"ShortReader", testShortReader},
		{"Canceled", testCanceled},
		{"Probe", testProbe},
		{"Concurrent", testConcurrentPuts},
		{"PutBatch", testPutBatch},
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

func put(t *testing.T, s recording.BlobStore, name string, b []byte) string {
	t.Helper()
	loc, err := s.Put(ctx(t), name, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Put(%s, %d bytes): %v", name, len(b), err)
	}
	if loc == "" {
		t.Fatalf("Put(%s): empty locator", name)
	}
	return loc
}

func get(t *testing.T, s recording.BlobStore, loc string) []byte {
	t.Helper()
	rc, err := s.Get(ctx(t), loc)
	if err != nil {
		t.Fatalf("Get(%s): %v", loc, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s): read: %v", loc, err)
	}
	return b
}

func testPutGet(t *testing.T, s recording.BlobStore) {
	locs := map[string][]byte{}
	for _, n := range []int{0, 1, 100, 64<<10 + 17, 3 << 20, 5} {
		want := randBytes(n)
		loc := put(t, s, fmt.Sprintf("2026/01/02/obj-%d.wrec", n), want)
		if _, dup := locs[loc]; dup {
			t.Fatalf("two objects got the locator %s", loc)
		}
		locs[loc] = want
	}
	for loc, want := range locs {
		if got := get(t, s, loc); !bytes.Equal(got, want) {
			t.Errorf("Get(%s): %d bytes differ from the %d put", loc, len(got), len(want))
		}
	}
}

// missingLocator is a locator of the store's form for an object that was
// never stored.
func missingLocator(t *testing.T, s recording.BlobStore) string {
	loc := put(t, s, "2026/01/02/probe-form.wrec", []byte("x"))
	if err := s.Delete(ctx(t), loc); err != nil {
		t.Fatal(err)
	}
	if i := strings.IndexByte(loc, '#'); i > 0 {
		// A pack locator: a pack that does not exist.
		return "1999/01/01/1.pack" + loc[i:]
	}
	return "1999/01/01/never-stored.wrec"
}

func testMissing(t *testing.T, s recording.BlobStore) {
	loc := missingLocator(t, s)
	if _, err := s.Get(ctx(t), loc); !errors.Is(err, recording.ErrNotFound) {
		t.Errorf("Get(%s) of a missing object: %v, want ErrNotFound", loc, err)
	}
}

// deleted reports whether loc's object is gone: ErrNotFound, or only
// zeros where it was.
func deleted(t *testing.T, s recording.BlobStore, loc string) bool {
	rc, err := s.Get(ctx(t), loc)
	if errors.Is(err, recording.ErrNotFound) {
		return true
	}
	if err != nil {
		t.Fatalf("Get after Delete: %v", err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return len(bytes.Trim(b, "\x00")) == 0
}

func testDelete(t *testing.T, s recording.BlobStore) {
	keep := put(t, s, "d/0.wrec", []byte("keep me"))
	loc := put(t, s, "d/1.wrec", []byte("delete me"))
	after := put(t, s, "d/2.wrec", []byte("keep me too"))
	if err := s.Delete(ctx(t), loc); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if !deleted(t, s, loc) {
		t.Error("the object's bytes survived Delete")
	}
	if err := s.Delete(ctx(t), loc); err != nil {
		t.Errorf("second Delete: %v, want nil", err)
	}
	if err := s.Delete(ctx(t), missingLocator(t, s)); err != nil {
		t.Errorf("Delete of a missing object: %v, want nil", err)
	}
	if string(get(t, s, keep)) != "keep me" || string(get(t, s, after)) != "keep me too" {
		t.Error("Delete damaged its neighbours")
	}
}

func testInvalidNames(t *testing.T, s recording.BlobStore) {
	for _, k := range []string{"", "/abs.wrec", "../up.wrec", "a/../b.wrec", "a//b.wrec", "A.wrec", "a b.wrec", "a/./b.wrec", "x\\y.wrec", "a/"} {
		if _, err := s.Put(ctx(t), k, bytes.NewReader([]byte("x")), 1); err == nil {
			t.Errorf("Put(%q) accepted an invalid name", k)
		}
		if _, err := s.Get(ctx(t), k); err == nil || errors.Is(err, recording.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want an invalid-locator error", k, err)
		}
	}
}

func testShortReader(t *testing.T, s recording.BlobStore) {
	before := put(t, s, "short/before.wrec", []byte("before"))
	if _, err := s.Put(ctx(t), "short/x.wrec", bytes.NewReader([]byte("only ten b")), 1000); err == nil {
		t.Fatal("Put with a reader shorter than size succeeded")
	}
	after := put(t, s, "short/after.wrec", []byte("after"))
	if string(get(t, s, before)) != "before" || string(get(t, s, after)) != "after" {
		t.Error("a failed Put damaged the objects around it")
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
	if _, err := s.Put(c, "cancel/x.wrec", &slowReader{n: 8 << 20, after: cancel}, 8<<20); err == nil {
		t.Fatal("Put succeeded after its context was canceled")
	}
	if got := get(t, s, put(t, s, "cancel/y.wrec", []byte("next"))); string(got) != "next" {
		t.Errorf("Put after a canceled one: %q", got)
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
	locs := make([]string, 16)
	for i := range data {
		data[i] = randBytes(10_000 + i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			loc, err := s.Put(ctx(t), fmt.Sprintf("conc/%02d.wrec", i), bytes.NewReader(data[i]), int64(len(data[i])))
			if err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
			locs[i] = loc
		}()
	}
	wg.Wait()
	for i := range data {
		if got := get(t, s, locs[i]); !bytes.Equal(got, data[i]) {
			t.Errorf("object %d differs", i)
		}
	}
}

// testPutBatch runs only for stores that implement BatchPutter.
func testPutBatch(t *testing.T, s recording.BlobStore) {
	bp, ok := s.(recording.BatchPutter)
	if !ok {
		t.Skip("the store does not implement BatchPutter")
	}
	var objs []recording.Object
	var data [][]byte
	for i := range 20 {
		data = append(data, randBytes(i*1000))
		objs = append(objs, recording.Object{Name: fmt.Sprintf("2026/0%d/batch-%02d.wrec", i%3+1, i), Body: bytes.NewReader(data[i]), Size: int64(len(data[i]))})
		if i == 9 {
			// A short body and a bad name in the middle fail alone.
			objs = append(objs, recording.Object{Name: "2026/01/short.wrec", Body: bytes.NewReader([]byte("x")), Size: 10})
			objs = append(objs, recording.Object{Name: "../escape.wrec", Body: bytes.NewReader([]byte("x")), Size: 1})
		}
	}
	res := bp.PutBatch(ctx(t), objs)
	if len(res) != len(objs) {
		t.Fatalf("%d results for %d objects", len(res), len(objs))
	}
	d := 0
	for i, r := range res {
		if objs[i].Name == "2026/01/short.wrec" || objs[i].Name == "../escape.wrec" {
			if r.Err == nil {
				t.Errorf("bad object %s stored", objs[i].Name)
			}
			continue
		}
		if r.Err != nil {
			t.Errorf("object %d: %v", d, r.Err)
		} else if got := get(t, s, r.Locator); !bytes.Equal(got, data[d]) {
			t.Errorf("object %d differs", d)
		}
		d++
	}
}
