package framelog

import (
	"fmt"
	"sync/atomic"
	"time"
)

// DefaultChunk is the preallocation the SQLite store asks for: 4 MiB of
// zeros written ahead of the frames (decision 044 measured 1, 4 and 8).
const DefaultChunk = 4 << 20

// zeroPiece bounds one zero write under extMu: an Append waits at most for
// one such memcpy into the page cache.
const zeroPiece = 256 << 10

var zeros [zeroPiece]byte

// markEvery is how often the grow goroutine writes the durable mark when
// Syncs have moved it (a variable for tests).
var markEvery = time.Second

// prealloc is the state of Preallocate's background goroutine.
type prealloc struct {
	chunk   int64
	report  func(error)
	kick    chan struct{} // cap 1: an Append found the zeros ahead low
	markNow chan struct{} // cap 1: a Sync found no mark written yet
	marked  atomic.Bool   // a mark is on disk
	// The goroutine's own: a failure already reported.
	growFailing, markFailing bool
	stop                     chan struct{}
	done                     chan struct{}
	mark                     markFile
}

// Preallocate makes the log keep zeros written ahead of its frames, so
// that a Sync's fdatasync overwrites allocated blocks instead of growing
// the file (no journal commit for the new size; decision 044): when an
// Append leaves fewer than chunk/2 zero bytes ahead, a background
// goroutine writes chunk more (in pieces of 256 KiB, never over a frame)
// and fdatasyncs them. The same goroutine keeps the durable mark
// "<path>.mark" (decision 045): the end of the frames a Sync made
// durable, written about once a second, after each grow and at Close;
// Open treats damage at or past it as a torn tail and below it as
// corruption.
//
// A zero write that fails (a full disk) is passed to report (once until a
// grow succeeds again) and is not a failure of the log: frames go on over the zeros written and then grow
// the file; the next low Append tries again. A mark that cannot be
// written is reported too (an old mark only makes Open stricter). A failed
// fdatasync of the zeros fails the log as a failed Sync does: it may have
// consumed the write-back error of a frame's page. Call it once, before
// appending, from the writer; report may be nil.
func (l *Log) Preallocate(chunk int64, report func(error)) error {
	if err := l.check(); err != nil {
		return err
	}
	if chunk <= 0 || l.pre != nil {
		return fmt.Errorf("framelog: preallocate %s: chunk %d (or called twice)", l.path, chunk)
	}
	if report == nil {
		report = func(error) {}
	}
	p := &prealloc{chunk: chunk, report: report, kick: make(chan struct{}, 1), markNow: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	p.mark.path = MarkPath(l.path)
	p.mark.base = l.base
	p.mark.end = readMark(p.mark.path, l.base)
	p.marked.Store(p.mark.end >= 0)
	l.extMu.Lock()
	l.pre = p
	low := l.fsize-l.end < chunk/2
	l.extMu.Unlock()
	go l.runPrealloc(p)
	if low {
		p.kickGrow()
	}
	return nil
}

// kickGrow asks the goroutine for a grow without waiting.
func (p *prealloc) kickGrow() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (l *Log) runPrealloc(p *prealloc) {
	defer close(p.done)
	t := time.NewTicker(markEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
			if l.grow(p) {
				l.writeMark(p)
			}
		case <-t.C:
			l.writeMark(p)
		case <-p.markNow:
			l.writeMark(p)
		}
	}
}

// grow writes p.chunk zeros after the file's end (to a page boundary) in
// pieces, then fdatasyncs them. It reports whether the log is still good.
func (l *Log) grow(p *prealloc) bool {
	if l.Err() != nil {
		return false
	}
	l.extMu.Lock()
	enough := l.fsize-l.end >= p.chunk/2 // a kick already served
	target := (l.fsize + p.chunk + 4095) &^ 4095
	l.extMu.Unlock()
	if enough {
		return true
	}
	for {
		select {
		case <-p.stop:
			return false // the zeros written so far are a valid end
		default:
		}
		l.extMu.Lock()
		at := l.fsize // >= l.end: frames are written at l.end and raise fsize
		if at >= target {
			l.extMu.Unlock()
			break
		}
		_, err := l.f.WriteAt(zeros[:min(zeroPiece, target-at)], at)
		if err == nil {
			l.fsize = min(target, at+zeroPiece)
		}
		l.extMu.Unlock()
		if err != nil {
			// Reported once until a grow succeeds again (a full disk
			// would otherwise log at every low Append).
			if !p.growFailing {
				p.report(fmt.Errorf("framelog: preallocate %s at offset %d: %w", l.path, at, err))
			}
			p.growFailing = true
			return true // frames go on at the frames' end; retried at the next low Append
		}
	}
	n := l.appended.Load() // frames whose pwrite returned: the fdatasync covers them
	if err := fdatasync(l.f); err != nil {
		l.fail(fmt.Errorf("framelog: sync the preallocated zeros of %s: %w", l.path, err))
		return false
	}
	l.noteSynced(n)
	p.growFailing = false
	return true
}

// syncedMark asks for a first mark right after a Sync when none is on
// disk: until then damage past the frames' start is judged by the
// stricter rule.
func (p *prealloc) syncedMark() {
	if p.marked.Load() {
		return
	}
	select {
	case p.markNow <- struct{}{}:
	default:
	}
}

// noteSynced records that an fdatasync covered the first n frames.
func (l *Log) noteSynced(n int64) {
	for {
		s := l.synced.Load()
		if n <= s || l.synced.CompareAndSwap(s, n) {
			return
		}
	}
}

// stopPrealloc stops the goroutine and writes the last mark.
func (l *Log) stopPrealloc() error {
	p := l.pre
	if p == nil {
		return nil
	}
	close(p.stop)
	<-p.done
	err := l.writeMark(p)
	if cerr := p.mark.close(); err == nil && cerr != nil {
		err = fmt.Errorf("framelog: close the mark of %s: %w", l.path, cerr)
	}
	return err
}

// writeMark writes the end of the synced frames as the durable mark when
// it moved, reporting (and returning) a failure.
func (l *Log) writeMark(p *prealloc) error {
	n := int(l.synced.Load())
	if n == 0 || l.Err() != nil {
		return nil
	}
	l.mu.RLock()
	r := l.idx[n-1]
	l.mu.RUnlock()
	end := r.off + frameHeader + int64(r.plen)
	if end <= p.mark.end {
		return nil
	}
	if err := p.mark.write(end, int64(n)); err != nil {
		err = fmt.Errorf("framelog: durable mark of %s: %w", l.path, err)
		if !p.markFailing {
			p.report(err) // once until a mark is written again
		}
		p.markFailing = true
		return err
	}
	p.markFailing = false
	p.marked.Store(true)
	return nil
}
