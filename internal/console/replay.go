package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/recordingcheck"
)

// maxReplay bounds the bodies of a recording the request page loads
// (decrypted in memory); a larger one is verified but not shown, and
// warden replay plays it.
const maxReplay = 4 << 20

// recordingView is a request's recording as the request page shows it:
// the server's verification (the same as the admin API's), and the
// replay as timed text segments. Every Text is the recording's content,
// attacker-controlled: the template escapes it and the player script
// only ever sets textContent.
type recordingView struct {
	Entry        recordingcheck.Entry
	Verification recordingcheck.Verification
	// TerminalSeq is the terminal entry naming the recording (0 with
	// HasTerminal false: none found).
	TerminalSeq int64
	HasTerminal bool
	TreeSize    int64
	// Segments are the replay, each with its offset; Answer is the
	// whole replay as one text (what a browser without JavaScript shows).
	Segments []segmentView
	Answer   string
	// Duration of the whole response; Events is the number of events.
	Duration string
	Events   int
	// Note says why the replay is not shown (erased, too large, corrupt).
	Note string
	// Others is how many further recordings the request id has (a
	// client reusing request ids); the newest is shown.
	Others int
}

// segmentView is one row of the event list and one step of the player.
type segmentView struct {
	Kind string
	// AtMS is the offset in milliseconds, for the player (data-at-ms);
	// Offset is the same for people.
	AtMS   string
	Offset string
	Size   int64
	Text   string
}

// recordingOf returns the newest recording of request id, verified and
// loaded for replay, or nil when the request has none (or recordings
// are not configured).
func (c *Console) recordingOf(ctx context.Context, requestID string) (*recordingView, error) {
	if c.o.Recordings == nil || requestID == "" {
		return nil, nil
	}
	es, err := recordingcheck.Find(ctx, c.o.Recordings, c.o.Audit, requestID)
	if err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, nil
	}
	e := es[len(es)-1]
	rv, err := recordingcheck.Verify(ctx, c.o.Recordings, c.o.Audit, e)
	if err != nil {
		return nil, err
	}
	v := &recordingView{Entry: rv.Recording, Verification: rv.Verification, Others: len(es) - 1}
	if t := rv.Terminal; t != nil {
		v.TerminalSeq, v.HasTerminal, v.TreeSize = t.Seq, true, t.TreeSize
	}
	switch v.Verification.Content {
	case "erased":
		v.Note = "erased"
		return v, nil
	case "ok":
	default:
		v.Note = "The recording cannot be replayed: its content is " + v.Verification.Content + "."
		return v, nil
	}
	rec, _, err := c.o.Recordings.Load(ctx, e.ID, maxReplay)
	switch {
	case errors.Is(err, recording.ErrErased):
		v.Note = "erased" // between the verification and now
		return v, nil
	case recording.IsCorrupt(err):
		v.Note = "The recording cannot be replayed: " + err.Error()
		return v, nil
	case err != nil:
		c.log.Warn("console: recording not replayed", "recording", e.ID, "err", err)
		v.Note = "The recording is too large to replay here (over 4 MiB) or could not be read; warden replay plays it."
		return v, nil
	}
	var answer strings.Builder
	for _, s := range recording.TextSegments(rec) {
		v.Segments = append(v.Segments, segmentView{
			Kind: string(s.Kind), AtMS: strconv.FormatFloat(float64(s.At)/float64(time.Millisecond), 'f', 3, 64),
			Offset: fmtOffset(s.At), Size: s.Size, Text: s.Text,
		})
		answer.WriteString(s.Text)
	}
	v.Answer = answer.String()
	v.Duration = fmtOffset(time.Duration(rec.Meta.DurationNS))
	v.Events = len(rec.Marks)
	return v, nil
}

// fmtOffset prints an offset as "+12.3 ms".
func fmtOffset(d time.Duration) string {
	return "+" + strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// requestEntry sends /ui/request/{id} to the page of the request's
// terminal entry (else its newest entry): a stable link for a request
// id, as the demo prints for alice's recorded stream.
func (c *Console) requestEntry(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	if c.o.Audit == nil {
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "The audit log is not available.")
		return
	}
	id := r.PathValue("id")
	if id == "" || len(id) > 256 {
		c.errorPage(w, r, p, http.StatusBadRequest, "A request id (at most 256 characters) is required.")
		return
	}
	es, err := c.o.Audit.Search(r.Context(), audit.Query{RequestID: id, Desc: true, Limit: 20})
	if err != nil {
		c.log.Error("console: request", "err", err)
		c.errorPage(w, r, p, http.StatusServiceUnavailable, "The search index is unavailable.")
		return
	}
	if len(es) == 0 {
		c.errorPage(w, r, p, http.StatusNotFound, "No entry has this request id.")
		return
	}
	seq := es[0].Seq
	for _, e := range es {
		if audit.IsTerminal(e.Kind) {
			seq = e.Seq
			break
		}
	}
	http.Redirect(w, r, "/ui/entry/"+strconv.FormatInt(seq, 10), http.StatusSeeOther)
}
