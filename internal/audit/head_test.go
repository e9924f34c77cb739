package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestHeadFile: heads alternate between the two slots; a torn or zeroed
// slot falls back to the other one; the checkpoint file wins when it is
// newer; a reopened head file overwrites the older slot first.
func TestHeadFile(t *testing.T) {
	dir := t.TempDir()
	cpFile := filepath.Join(dir, "audit.checkpoint")
	note := func(n int) []byte { return []byte(fmt.Sprintf("o\n%d\nhash\ntime t\n\n— o sig%d\n", n, n)) }
	if b, err := ReadExternal(cpFile); err != nil || b != nil {
		t.Fatalf("nothing kept: %q, %v", b, err)
	}
	h, err := openHeadFile(HeadPath(cpFile))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 5; n++ {
		if err := h.write(note(n), true); err != nil {
			t.Fatal(err)
		}
		if b, _ := ReadExternal(cpFile); string(b) != string(note(n)) {
			t.Fatalf("after head %d: %q", n, b)
		}
	}
	h.close()
	// Slot 0 holds 5, slot 1 holds 4. Tear slot 0: 4 is the head.
	b, _ := os.ReadFile(HeadPath(cpFile))
	torn := append([]byte(nil), b...)
	torn[headHeader+3] ^= 0xff
	os.WriteFile(HeadPath(cpFile), torn, 0o644)
	if got, _ := ReadExternal(cpFile); string(got) != string(note(4)) {
		t.Fatalf("torn newest slot: got %q, want head 4", got)
	}
	// A newer checkpoint file wins; an older one does not.
	// The source says which (Verify's messages name it).
	os.WriteFile(cpFile, note(9), 0o644)
	if got, src, _ := readExternal(cpFile); string(got) != string(note(9)) || src != SourceCheckpointFile {
		t.Fatalf("got %q from %q, want the checkpoint file's 9", got, src)
	}
	os.WriteFile(cpFile, note(2), 0o644)
	if got, src, _ := readExternal(cpFile); string(got) != string(note(4)) || src != SourceHeadFile {
		t.Fatalf("got %q from %q, want the head file's 4", got, src)
	}
	// Reopened: the older slot (1, head 4) is written first; 5 is kept.
	os.WriteFile(HeadPath(cpFile), b, 0o644)
	h, err = openHeadFile(HeadPath(cpFile))
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if err := h.write(note(6), true); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(HeadPath(cpFile))
	if string(slotNote(after, 0)) != string(note(5)) || string(slotNote(after, 1)) != string(note(6)) {
		t.Fatalf("reopened head file overwrote the newer slot: %q / %q", slotNote(after, 0), slotNote(after, 1))
	}
	if err := h.write(make([]byte, headSlotSize), true); err == nil {
		t.Fatal("an oversized note was accepted")
	}
}
