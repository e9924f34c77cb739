package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

func TestExportCursors(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "export.db")
	s, err := OpenExportCursors(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Cursor("a"), s.Cursor("b")
	if n, err := a.Load(ctx); err != nil || n != 0 {
		t.Fatalf("fresh cursor %d, %v", n, err)
	}
	for _, n := range []int64{5, 17, 1 << 40} {
		if err := a.Save(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Save(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx, -1); err == nil {
		t.Fatal("a negative position was saved")
	}
	s.Close()
	// Durable across a reopen.
	s, err = OpenExportCursors(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pos, err := s.Positions(ctx)
	if err != nil || len(pos) != 2 || pos["a"] != 1<<40 || pos["b"] != 3 {
		t.Fatalf("positions %v, %v", pos, err)
	}
	s.Close()
	if _, err := s.Cursor("a").Load(ctx); err == nil {
		t.Fatal("load after close succeeded")
	}
}
