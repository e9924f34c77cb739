// Package recordingcheck checks a session recording against the audit
// log: the recording's content is read back and authenticated, its
// digest is compared with the one the request's terminal entry carries,
// and that entry's inclusion proof is checked against the log's newest
// signed checkpoint. The admin API (GET /v1/recordings/{request_id}) and
// the console's replay player show its result; it sits between the
// recording and audit packages, which do not import each other.
package recordingcheck

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/recording"
)

// Entry is a recording's catalogue entry in replies (never its
// key).
type Entry struct {
	ID        string    `json:"id"`
	RequestID string    `json:"request_id"`
	Principal string    `json:"principal,omitempty"`
	Route     string    `json:"route,omitempty"`
	Level     string    `json:"level"`
	StartedAt time.Time `json:"started_at"`
	Size      int64     `json:"size"`
	Digest    string    `json:"digest"`
	Erased    *Erasure  `json:"erased,omitempty"`
}

// Erasure says who erased a recording, when and why.
type Erasure struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// Terminal is the request's terminal audit entry with its inclusion
// proof against the latest checkpoint (absent while Pending).
type Terminal struct {
	Seq        int64            `json:"seq"`
	Entry      []byte           `json:"entry"`
	TreeSize   int64            `json:"tree_size,omitempty"`
	Checkpoint string           `json:"checkpoint,omitempty"`
	Proof      tlog.RecordProof `json:"proof,omitempty"`
	Pending    bool             `json:"pending,omitempty"`
	hash       tlog.Hash        // the checkpoint's tree hash
}

// Verification is what the server checked.
type Verification struct {
	// OK: content intact, its digest is the one the terminal entry
	// carries, and that entry is proven included in the signed log.
	OK bool `json:"ok"`
	// Content is ok, erased, corrupt or unavailable.
	Content string `json:"content"`
	// LogDigest is the digest in the terminal entry.
	LogDigest        string `json:"log_digest,omitempty"`
	DigestMatchesLog bool   `json:"digest_matches_log"`
	// Inclusion is ok, pending (no checkpoint covers the entry yet),
	// failed, or missing (no terminal entry names the recording).
	Inclusion string   `json:"inclusion"`
	Problems  []string `json:"problems,omitempty"`
}

// View is the answer of GET /v1/recordings/{request_id}.
type View struct {
	RequestID    string       `json:"request_id"`
	Recording    Entry        `json:"recording"`
	Terminal     *Terminal    `json:"terminal,omitempty"`
	Verification Verification `json:"verification"`
}

// EntryOf is e as replies show it (never its key).
func EntryOf(e recording.Entry) Entry {
	out := Entry{
		ID: e.ID, RequestID: e.RequestID, Principal: e.Principal, Route: e.Route, Level: string(e.Level),
		StartedAt: e.StartedAt, Size: e.Size, Digest: e.Digest.String(),
	}
	if er := e.Erasure; er != nil {
		out.Erased = &Erasure{At: er.At, By: er.By, Reason: er.Reason}
	}
	return out
}

// Verify checks recording e: its content
// read back and authenticated, its digest compared with the one the
// request's terminal audit entry carries, and that entry's inclusion
// proof checked against the log's newest checkpoint (l may be nil: the
// inclusion is then "missing"). Problems found are in the view; an
// error means the audit log could not be read (wrapping audit.ErrClosed
// and the like).
func Verify(ctx context.Context, rec *recording.Recorder, l *audit.Log, e recording.Entry) (View, error) {
	out := View{RequestID: e.RequestID, Recording: EntryOf(e)}
	v := &out.Verification
	var expected recording.Digest
	if l == nil {
		v.Inclusion = "missing"
		v.Problems = append(v.Problems, "the audit log is not configured")
	} else {
		t, d, err := terminal(ctx, l, e)
		if err != nil {
			return View{}, err
		}
		out.Terminal = t
		switch {
		case t == nil:
			v.Inclusion = "missing"
			v.Problems = append(v.Problems, "no terminal audit entry names this recording")
		case t.Pending:
			v.Inclusion = "pending"
		default:
			v.Inclusion = "ok"
			cp := audit.Checkpoint{Size: t.TreeSize, Hash: t.hash}
			if err := audit.CheckEntryProof(t.Proof, cp, t.Seq, t.Entry); err != nil {
				v.Inclusion = "failed"
				v.Problems = append(v.Problems, err.Error())
			}
		}
		if !d.IsZero() {
			expected = d
			v.LogDigest = d.String()
		}
	}
	_, verr := rec.Verify(ctx, e.ID, recording.Digest{})
	switch {
	case verr == nil:
		v.Content = "ok"
	case errors.Is(verr, recording.ErrErased):
		v.Content = "erased"
	case recording.IsCorrupt(verr):
		v.Content = "corrupt"
		v.Problems = append(v.Problems, verr.Error())
	default:
		v.Content = "unavailable"
		v.Problems = append(v.Problems, "the recording store could not be read")
	}
	v.DigestMatchesLog = !expected.IsZero() && expected == e.Digest
	if !expected.IsZero() && !v.DigestMatchesLog {
		v.Problems = append(v.Problems, "the catalogue's digest "+e.Digest.String()+" differs from the audit log's "+expected.String())
	}
	v.OK = v.Content == "ok" && v.DigestMatchesLog && v.Inclusion == "ok"
	return out, nil
}

// terminal finds the terminal entry that names recording e and proves it
// against the latest checkpoint. It returns the digest the entry carries.
func terminal(ctx context.Context, l *audit.Log, e recording.Entry) (*Terminal, recording.Digest, error) {
	es, err := l.Search(ctx, audit.Query{RequestID: e.RequestID, Kind: audit.KindRequestCompleted, Limit: 100})
	if err != nil {
		return nil, recording.Digest{}, err
	}
	for _, te := range es {
		id, digest := RecordingOf(te)
		if id != e.ID {
			continue
		}
		_, data, err := l.Entry(ctx, te.Seq)
		if err != nil {
			return nil, recording.Digest{}, err
		}
		t := &Terminal{Seq: te.Seq, Entry: data}
		cp := l.Latest()
		if te.Seq < cp.Size {
			p, err := l.ProveEntry(ctx, te.Seq, cp.Size)
			if err != nil {
				return nil, recording.Digest{}, err
			}
			t.TreeSize, t.Checkpoint, t.Proof, t.hash = cp.Size, string(cp.Note), p, cp.Hash
		} else {
			t.Pending = true
		}
		d, _ := recording.ParseDigest(digest)
		return t, d, nil
	}
	return nil, recording.Digest{}, nil
}

// Find returns the recordings of request id, oldest first. The catalogue
// has no request-id index (docs/decisions/023-recording-lookup-and-group-commit.md),
// so Find asks the audit log: every request.completed entry of the request
// names its recording (details.recording.id), which the catalogue returns
// by id. An admission without a completed entry (the gateway stopped
// between storing the recording and appending the entry, or the request
// is still running) may still have a recording that no entry names: Find
// looks for it among the recordings reserved within a minute of the
// admission (a range of the catalogue's time-ordered ids). Without an
// audit log (nil) it scans the catalogue (Recorder.Find).
func Find(ctx context.Context, rec *recording.Recorder, l *audit.Log, requestID string) ([]recording.Entry, error) {
	if l == nil {
		return rec.Find(ctx, requestID)
	}
	if requestID == "" {
		return nil, errors.New("recordingcheck: Find without a request id")
	}
	done, err := l.Search(ctx, audit.Query{RequestID: requestID, Kind: audit.KindRequestCompleted, Limit: findLimit})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []recording.Entry
	for _, te := range done {
		id, _ := RecordingOf(te)
		if id == "" || seen[id] {
			continue
		}
		e, err := rec.Get(ctx, id)
		if errors.Is(err, recording.ErrNotFound) {
			continue // recording: failed names an id that was never stored
		}
		if err != nil {
			return nil, err
		}
		seen[id] = true
		out = append(out, e)
	}
	admitted, err := l.Search(ctx, audit.Query{RequestID: requestID, Kind: audit.KindRequestAdmitted, Limit: findLimit})
	if err != nil {
		return nil, err
	}
	if len(admitted) > len(done) {
		for _, a := range admitted {
			es, err := rec.FindNear(ctx, requestID, a.Time, admissionWindow)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				if !seen[e.ID] {
					seen[e.ID] = true
					out = append(out, e)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b recording.Entry) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// findLimit bounds the entries of one request id Find reads.
const findLimit = 100

// admissionWindow is how far from its admission entry's time Find looks
// for a recording no completed entry names: Reserve runs just before the
// admission entry is appended, which the audit store's timeout bounds.
const admissionWindow = time.Minute

// RecordingOf returns the recording id and digest a terminal entry's
// details carry (details.recording, written by the gateway), or "".
func RecordingOf(e *audit.Entry) (id, digest string) {
	m, ok := e.Details["recording"].(map[string]any)
	if !ok {
		return "", ""
	}
	id, _ = m["id"].(string)
	digest, _ = m["digest"].(string)
	return id, digest
}
