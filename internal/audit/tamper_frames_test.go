package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog"
	"github.com/wardenhq/warden/internal/store/framelog/framelogtest"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// Attacks on the frame file that the CRCs catch: a frame damaged without
// fixing its CRC, frames in the wrong order. framelog refuses them as
// corruption naming the frame: the store does not open for writing (not
// even with allow_unverified_start: nothing may be appended after a frame
// that does not verify), and a read-only open reads only the frames
// before the damaged one, so verification reports the log cut there.
func TestTamperCorruptFrames(t *testing.T) {
	tests := []struct {
		name string
		// tamper damages the frame file and returns the frame framelog
		// must name.
		tamper func(t *testing.T, path string, f *framelogtest.File) int
	}{
		{
			name: "a byte of a middle frame's record flipped, CRC not fixed",
			tamper: func(t *testing.T, path string, f *framelogtest.File) int {
				i, err := f.FrameOf(23)
				if err != nil {
					t.Fatal(err)
				}
				// The payload's last bytes are the head; the record is
				// before it. 16 header + 24 prefix + 4 hash count + hashes
				// + 4 length: the record's first byte.
				off := int64(16 + 28 + 32*len(f.Frames[i].Hashes) + 4)
				if err := framelogtest.FlipByte(path, i, off, 0x01); err != nil {
					t.Fatal(err)
				}
				return i
			},
		},
		{
			name: "a stored hash of a middle frame zeroed, CRC not fixed",
			tamper: func(t *testing.T, path string, f *framelogtest.File) int {
				i, _ := f.FrameOf(30)
				if err := framelogtest.FlipByte(path, i, 16+28, 0xff); err != nil {
					t.Fatal(err)
				}
				return i
			},
		},
		{
			name: "a middle frame's length field changed",
			tamper: func(t *testing.T, path string, f *framelogtest.File) int {
				i, _ := f.FrameOf(10)
				if err := framelogtest.FlipByte(path, i, 4, 0x02); err != nil {
					t.Fatal(err)
				}
				return i
			},
		},
		{
			name: "two frames swapped, CRCs valid",
			tamper: func(t *testing.T, path string, f *framelogtest.File) int {
				i, _ := f.FrameOf(20)
				j, _ := f.FrameOf(40)
				if err := f.SwapFrames(i, j); err != nil {
					t.Fatal(err)
				}
				if err := f.Write(path); err != nil {
					t.Fatal(err)
				}
				return i
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := tamperEnv(t)
			path := sqlite.FramesPath(e.cfg.Path)
			f, err := framelogtest.Read(path)
			if err != nil {
				t.Fatal(err)
			}
			firsts := make([]int64, len(f.Frames))
			for i, b := range f.Frames {
				firsts[i] = b.FirstSeq
			}
			frame := tc.tamper(t, path, f)
			first := firsts[frame]

			for _, allow := range []bool{false, true} {
				e.cfg.AllowUnverifiedStart = allow
				err := e.open(t)
				var ce *framelog.CorruptError
				if !errors.As(err, &ce) || ce.Frame != frame {
					if err == nil {
						e.close(t)
					}
					t.Fatalf("Open (allow_unverified_start %v) = %v, want a CorruptError naming frame %d", allow, err, frame)
				}
			}

			// warden verify's path: a read-only open of a damaged frame
			// file serves nothing and says from where it does not verify
			// (warden verify reports that as a divergence: cmd/warden
			// TestVerifyFrameFileAttacks).
			st, err := sqlite.OpenReadOnly(context.Background(), e.cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			fc := st.FramesCorrupt()
			if fc == nil || fc.Err.Frame != frame || fc.Seq != first {
				t.Fatalf("OpenReadOnly: FramesCorrupt() = %v, want frame %d at seq %d", fc, frame, first)
			}
			if _, err := st.ReadRecords(context.Background(), 0, 1); !errors.As(err, &fc) {
				t.Fatalf("a read of a store whose frame file does not verify = %v, want its FramesCorruptError", err)
			}
			if _, err := audit.Verify(context.Background(), st, e.ver, audit.VerifyOptions{SingleWriter: true}); err == nil {
				t.Fatal("Verify passed a store whose frame file does not verify")
			}
		})
	}
}

// A flipped byte in the last frame. The durable mark (decision 045)
// covers it (the store was closed after a Sync), so it is corruption:
// read-only, the frames do not verify from its first entry, and Open
// refuses. With the mark removed it is indistinguishable from a torn
// write: Open cuts it (as after a crash), and the signed head of the cut
// batch, in the head file and the checkpoint file, then says the store
// lost it.
func TestTamperLastFrameFlipped(t *testing.T) {
	for _, markKept := range []bool{true, false} {
		t.Run(fmt.Sprintf("mark kept %v", markKept), func(t *testing.T) {
			e := tamperEnv(t)
			path := sqlite.FramesPath(e.cfg.Path)
			f, err := framelogtest.Read(path)
			if err != nil {
				t.Fatal(err)
			}
			last := len(f.Frames) - 1
			lost := f.Frames[last].FirstSeq
			if err := framelogtest.FlipByte(path, last, 16+30, 0x10); err != nil {
				t.Fatal(err)
			}
			if markKept {
				checkLastFrameCorrupt(t, e, lost)
				return
			}
			if err := os.Remove(framelog.MarkPath(path)); err != nil {
				t.Fatal(err)
			}
			// Read-only first (it leaves the tail in place), then Open (it cuts).
			st, err := sqlite.OpenReadOnly(context.Background(), e.cfg.Path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Torn() == 0 {
				t.Error("OpenReadOnly reports no torn tail")
			}
			ext, _ := audit.ReadHead(context.Background(), st, e.cfg.CheckpointFile)
			_, err = audit.Verify(context.Background(), st, e.ver, audit.VerifyOptions{External: ext, SingleWriter: true})
			st.Close()
			var d *audit.Divergence
			if !errors.As(err, &d) || d.Seq != lost || d.CheckpointSize != 50 {
				t.Fatalf("Verify (read-only) = %v, want the log found cut at %d", err, lost)
			}
			err = e.open(t)
			if !errors.As(err, &d) || d.Seq != lost || d.CheckpointSize != 50 {
				t.Fatalf("Open = %v, want a divergence at %d", err, lost)
			}
			if _, err := verifyOffline(t, e); !errors.As(err, &d) || d.Seq != lost {
				t.Fatalf("Verify after Open cut the tail = %v", err)
			}
		})
	}
}

// checkLastFrameCorrupt: the damaged frame holding lost is under the
// durable mark: Verify (read-only) and Open report corruption from lost,
// and Open leaves the frame file as it is.
func checkLastFrameCorrupt(t *testing.T, e *env, lost int64) {
	t.Helper()
	path := sqlite.FramesPath(e.cfg.Path)
	before, _ := os.ReadFile(path)
	st, err := sqlite.OpenReadOnly(context.Background(), e.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	ext, _ := audit.ReadHead(context.Background(), st, e.cfg.CheckpointFile)
	_, err = audit.Verify(context.Background(), st, e.ver, audit.VerifyOptions{External: ext, SingleWriter: true})
	st.Close()
	var fc *sqlite.FramesCorruptError
	if !errors.As(err, &fc) || fc.Err.Seq != lost {
		t.Fatalf("Verify (read-only) = %v, want the frames corrupt from %d", err, lost)
	}
	if err := e.open(t); !errors.Is(err, framelog.ErrCorrupt) {
		t.Fatalf("Open = %v, want corruption", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("Open changed the frame file")
	}
}

// TestTamperPastMark: a frame damaged past the durable mark (the mark
// lags the acknowledged frames by up to a second) with valid frames after
// it is, to framelog, the out-of-order shape of a power loss: Open copies
// the bytes aside and cuts them. The acknowledged entries it held are
// then missing, and the heads kept apart say so: the head file and the
// checkpoint file name more entries than the store has.
func TestTamperPastMark(t *testing.T) {
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 10 })
	appendN(t, e.log, 20)
	e.close(t)
	path := sqlite.FramesPath(e.cfg.Path)
	oldMark, err := os.ReadFile(framelog.MarkPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.open(t); err != nil {
		t.Fatal(err)
	}
	appendN(t, e.log, 28)
	e.close(t)
	// The mark as it was a while ago: still at or below the durable frames.
	if err := os.WriteFile(framelog.MarkPath(path), oldMark, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := framelogtest.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	k := len(f.Frames) - 3
	lost := f.Frames[k].FirstSeq
	if err := framelogtest.FlipByte(path, k, 16+30, 0x10); err != nil {
		t.Fatal(err)
	}
	err = e.open(t)
	var d *audit.Divergence
	if !errors.As(err, &d) || d.Seq != lost {
		t.Fatalf("Open = %v, want a divergence at %d (the heads name more entries)", err, lost)
	}
	kept, _ := filepath.Glob(path + ".torn-*")
	if len(kept) != 1 {
		t.Fatalf("torn tail kept in %v, want one file", kept)
	}
	if _, err := verifyOffline(t, e); !errors.As(err, &d) || d.Seq != lost {
		t.Fatalf("Verify after Open cut the frames = %v", err)
	}
}

// TestTamperCutInsideFrame cuts records out of the middle of a batch of
// several (the frame re-encoded with the records and hashes it keeps, its
// head dropped): the heads signed after the batch catch it.
func TestTamperCutInsideFrame(t *testing.T) {
	e := newEnv(t, func(c *audit.Config) { c.CheckpointEvery = 10 })
	path := sqlite.FramesPath(e.cfg.Path)
	var f *framelogtest.File
	cut := int64(-1)
	// Concurrent appends, until a batch (not the last) holds several
	// records.
	for round := 0; cut < 0; round++ {
		if round == 20 {
			t.Fatal("20 rounds of concurrent appends made no batch of several records")
		}
		if round > 0 {
			if err := e.open(t); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 8; i++ {
					if _, err := e.log.Append(context.Background(), request(100*w+i)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		e.close(t)
		var err error
		if f, err = framelogtest.Read(path); err != nil {
			t.Fatal(err)
		}
		for _, b := range f.Frames[:len(f.Frames)-1] {
			if len(b.Records) > 1 {
				cut = b.FirstSeq + 1
				break
			}
		}
	}
	size := f.Size()
	if err := f.TruncateAt(cut); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
	var d *audit.Divergence
	if _, err := verifyOffline(t, e); !errors.As(err, &d) || d.Seq != cut || d.CheckpointSize != size {
		t.Fatalf("Verify = %v, want the log found cut at %d (checkpoint %d)", err, cut, size)
	}
	if err := e.open(t); !errors.As(err, &d) || d.Seq != cut {
		t.Fatalf("Open = %v, want a divergence at %d", err, cut)
	}
}

// TestTamperForgedFrameHistoryHead: a history head inside a middle frame
// replaced by one signed with another key, and the checkpoint rows from
// it on deleted so that Open copies the frames' history heads back into
// the table (the table is a copy caught up from the frames). Open
// verifies the copied head and refuses, pointing at it; offline
// verification (read-only, no catch-up) reads the frames' history heads
// itself and refuses it too, before and after a start.
func TestTamperForgedFrameHistoryHead(t *testing.T) {
	e := tamperEnv(t)
	skey, _, _ := note.GenerateKey(rand.Reader, "test-audit")
	s, _ := note.NewSigner(skey)
	editFrames(t, e, func(f *framelogtest.File) error {
		i, err := f.FrameOf(30)
		if err != nil {
			return err
		}
		if b := f.Frames[i]; !b.HeadHistory || b.FirstSeq+int64(len(b.Records)) != 31 {
			t.Fatalf("frame %d (records from %d, %d of them) does not carry checkpoint 31", i, b.FirstSeq, len(b.Records))
		}
		c, err := audit.SignCheckpoint(s, 31, tlog.Hash{}, e.log0time())
		if err != nil {
			return err
		}
		return f.SetHead(i, c.Note, true)
	})
	execDB(t, e, dropTriggers, "DELETE FROM checkpoints WHERE size > 21")
	var d *audit.Divergence
	// Offline verification reads the frames' history heads itself: it
	// does not depend on a start having copied them into the table.
	if _, err := verifyOffline(t, e); !errors.As(err, &d) || d.CheckpointSize != 31 || !strings.Contains(d.Msg, "checkpoint signature invalid") {
		t.Fatalf("Verify before any start = %v, want a divergence at checkpoint 31", err)
	}
	err := e.open(t)
	if !errors.As(err, &d) || d.CheckpointSize != 31 || !strings.Contains(d.Msg, "checkpoint signature invalid") {
		if err == nil {
			e.close(t)
		}
		t.Fatalf("Open = %v, want a divergence at checkpoint 31", err)
	}
	if _, err := verifyOffline(t, e); !errors.As(err, &d) || d.CheckpointSize != 31 {
		t.Fatalf("Verify after Open copied the head into the table = %v, want a divergence at checkpoint 31", err)
	}
}

// TestTamperForgedFrameHistoryHeadTableIntact: a history head in a
// middle frame replaced by one signed with another key, the checkpoints
// table left as it was. The table's copy still verifies, but the frames
// are the evidence: offline verification checks their heads too, and so
// does the verification at a writable Open (decision 047: the store
// returns the frame head beside the table's row), which refuses to start
// naming the checkpoint and both copies. The table keeps its row.
func TestTamperForgedFrameHistoryHeadTableIntact(t *testing.T) {
	e := tamperEnv(t)
	skey, _, _ := note.GenerateKey(rand.Reader, "test-audit")
	s, _ := note.NewSigner(skey)
	editFrames(t, e, func(f *framelogtest.File) error {
		i, err := f.FrameOf(20)
		if err != nil {
			return err
		}
		if b := f.Frames[i]; !b.HeadHistory || b.FirstSeq+int64(len(b.Records)) != 21 {
			t.Fatalf("frame %d (records from %d, %d of them) does not carry checkpoint 21", i, b.FirstSeq, len(b.Records))
		}
		c, err := audit.SignCheckpoint(s, 21, tlog.Hash{}, e.log0time())
		if err != nil {
			return err
		}
		return f.SetHead(i, c.Note, true)
	})
	var d *audit.Divergence
	if _, err := verifyOffline(t, e); !errors.As(err, &d) || d.CheckpointSize != 21 || !strings.Contains(d.Msg, "checkpoint signature invalid") {
		t.Fatalf("Verify = %v, want a divergence at checkpoint 21", err)
	}
	const both = "the history head in frame 20 of audit.db.frames; the checkpoints table holds another note of that size"
	err := e.open(t)
	if !errors.As(err, &d) || d.CheckpointSize != 21 || !strings.Contains(d.Msg, "checkpoint signature invalid") || !strings.Contains(d.Msg, both) {
		if err == nil {
			e.close(t)
		}
		t.Fatalf("Open = %v, want a divergence at checkpoint 21 naming %q", err, both)
	}
	if _, err := verifyOffline(t, e); !errors.As(err, &d) || d.CheckpointSize != 21 || !strings.Contains(d.Msg, both) {
		t.Fatalf("Verify after the refused Open = %v, want the same divergence", err)
	}
}
