package recording

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fsPut(t *testing.T, s *FSStore, b []byte) string {
	t.Helper()
	loc, err := s.Put(context.Background(), "x/y.wrec", bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func fsGet(s *FSStore, loc string) ([]byte, error) {
	rc, err := s.Get(context.Background(), loc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func packs(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".pack") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestFSStorePacks: objects share pack files; a new day (or a new
// process) starts a new pack; old packs stay readable.
func TestFSStorePacks(t *testing.T) {
	root := t.TempDir()
	s, _ := NewFSStore(root)
	day := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return day }
	var locs []string
	for i := range 10 {
		locs = append(locs, fsPut(t, s, []byte{byte(i), 1, 2, 3}))
	}
	if n := len(packs(t, root)); n != 1 {
		t.Errorf("10 objects in %d packs, want 1", n)
	}
	day = day.Add(24 * time.Hour)
	locs = append(locs, fsPut(t, s, []byte("next day")))
	s.Close()
	s2, _ := NewFSStore(root) // a restart
	locs = append(locs, fsPut(t, s2, []byte("after restart")))
	defer s2.Close()
	if n := len(packs(t, root)); n != 3 {
		t.Errorf("%d packs, want 3 (day change, restart)", n)
	}
	for i, loc := range locs[:10] {
		if b, err := fsGet(s2, loc); err != nil || b[0] != byte(i) {
			t.Errorf("object %d: %v %v", i, b, err)
		}
	}
	if !strings.HasPrefix(locs[10], "2026/01/02/") {
		t.Errorf("locator %s: not in the day's directory", locs[10])
	}
}

func TestFSStoreLocators(t *testing.T) {
	s, _ := NewFSStore(t.TempDir())
	defer s.Close()
	for _, bad := range []string{"", "x", "a.pack", "a.pack#1", "a.pack#1+", "a.pack#+1", "a.pack#01+1", "a.pack#1+-1",
		"../a.pack#0+1", "/a.pack#0+1", "a.wrec#0+1", "a.pack#0+1#2", "A.pack#0+1"} {
		if _, err := s.Get(context.Background(), bad); err == nil {
			t.Errorf("Get(%q) accepted", bad)
		}
		if err := s.Delete(context.Background(), bad); err == nil {
			t.Errorf("Delete(%q) accepted", bad)
		}
	}
}

// TestFSStoreTruncatedPack: a pack cut short (disk trouble, a bad
// restore) reads as an unexpected EOF, never as a shorter object.
func TestFSStoreTruncatedPack(t *testing.T) {
	s, _ := NewFSStore(t.TempDir())
	defer s.Close()
	loc := fsPut(t, s, bytes.Repeat([]byte("a"), 1000))
	p, off, _, _ := s.Locate(loc)
	os.Truncate(p, off+500)
	if b, err := fsGet(s, loc); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated object: %d bytes, %v; want io.ErrUnexpectedEOF", len(b), err)
	}
}

func TestFSStoreExpire(t *testing.T) {
	root := t.TempDir()
	s, _ := NewFSStore(root)
	day := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return day }
	old := fsPut(t, s, []byte("old"))
	day = day.Add(24 * time.Hour)
	cur := fsPut(t, s, []byte("current"))
	defer s.Close()
	oldPack, _, _, _ := s.Locate(old)
	curPack, _, _, _ := s.Locate(cur)
	past := time.Now().Add(-48 * time.Hour)
	os.Chtimes(oldPack, past, past)
	os.Chtimes(curPack, past, past) // the current pack is never removed
	n, err := s.Expire(context.Background(), time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Expire removed %d, %v; want 1", n, err)
	}
	if _, err := fsGet(s, old); err == nil {
		t.Error("the expired pack is still readable")
	}
	if b, err := fsGet(s, cur); err != nil || string(b) != "current" {
		t.Errorf("the current pack: %q, %v", b, err)
	}
}

// TestFSStoreFailedWriteIsCutOff: bytes of a failed object do not stay in
// the pack between the objects around them.
func TestFSStoreFailedWriteIsCutOff(t *testing.T) {
	s, _ := NewFSStore(t.TempDir())
	defer s.Close()
	a := fsPut(t, s, []byte("aaaa"))
	if _, err := s.Put(context.Background(), "x/bad.wrec", io.LimitReader(bytes.NewReader(bytes.Repeat([]byte("z"), 100)), 50), 100); err == nil {
		t.Fatal("short Put succeeded")
	}
	b := fsPut(t, s, []byte("bbbb"))
	p, offB, _, _ := s.Locate(b)
	if offB != 4 {
		t.Errorf("the next object starts at %d, want 4 (the failed bytes cut off)", offB)
	}
	raw, _ := os.ReadFile(p)
	if string(raw) != "aaaabbbb" {
		t.Errorf("pack holds %q", raw)
	}
	_ = a
}
