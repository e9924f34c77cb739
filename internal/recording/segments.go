package recording

import (
	"strings"
	"time"
)

// SegmentKind says which part of a replay a Segment is.
type SegmentKind string

const (
	// SegmentRequest is the recording's header and the request (offset 0).
	SegmentRequest SegmentKind = "request"
	// SegmentResponse is the status line the client received.
	SegmentResponse SegmentKind = "response"
	// SegmentEvent is one SSE event or chunk of the answer.
	SegmentEvent SegmentKind = "event"
	// SegmentEnd is the closing line (duration, bytes, events).
	SegmentEnd SegmentKind = "end"
)

// Segment is one piece of a text replay with the offset at which the
// client had it.
type Segment struct {
	Kind SegmentKind
	// At is the offset from the request start.
	At time.Duration
	// Text is what the text player prints for this piece: for an event
	// of a chat stream the delta's text, for other events their data.
	// It is the recording's content: attacker-controlled, to be shown as
	// text only.
	Text string
	// Size is the number of bytes of an event the client received (also
	// when the body was not recorded and Text is empty).
	Size int64
}

// TextSegments returns rec's text replay — exactly what a Player with
// FormatText writes — cut at each point where the player waits, with
// the offset of each piece, so that another player (the console's, in a
// browser) can re-stream it with the original timing. Concatenated,
// the Texts are the whole replay.
func TextSegments(rec *Recording) []Segment {
	var b strings.Builder
	evs := rec.Events()
	segs := []Segment{{Kind: SegmentRequest}}
	flush := func() {
		segs[len(segs)-1].Text = b.String()
		b.Reset()
	}
	wait := func(at int64) error {
		flush()
		s := Segment{At: time.Duration(at)}
		switch n := len(segs) - 1; {
		case n == 0:
			s.Kind = SegmentResponse
		case n <= len(evs):
			s.Kind, s.Size = SegmentEvent, evs[n-1].Size
		default:
			s.Kind = SegmentEnd
		}
		segs = append(segs, s)
		return nil
	}
	// A strings.Builder never fails, so neither does the walk.
	_ = walk(rec, &textEmitter{w: &b, rec: rec}, wait)
	flush()
	return segs
}
