package report

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// Recordings in a bundle (evidence export --with-recordings).
//
// Each recording named by a terminal entry of the period is bundled as
// its decrypted canonical form, the bytes whose SHA-256 is the digest the
// signed terminal entry carries (details.recording.digest). An auditor
// checks it with sha256sum and no Warden key; the sealed object would
// need the recordings' KEK to check anything. An erased recording has no
// content left: it is listed with its erasure entry instead.
const (
	fileRecordingIndex = "recordings/index.json"
	recordingDir       = "recordings/"
	recordingExt       = ".wrec"
)

// ErasedRecording is the error a RecordingSource returns for a recording
// whose key was destroyed: who erased it, when and why.
type ErasedRecording struct {
	At     time.Time
	By     string
	Reason string
}

func (e *ErasedRecording) Error() string {
	return fmt.Sprintf("recording erased at %s by %s: %s", e.At.UTC().Format(time.RFC3339), e.By, e.Reason)
}

// RecordingSource reads recordings for a bundle.
type RecordingSource interface {
	// Canonical returns recording id's canonical form (decrypted and
	// authenticated; its SHA-256 is the recording's digest). For an
	// erased recording it returns an error wrapping *ErasedRecording;
	// any other error fails the bundle.
	Canonical(ctx context.Context, id string) ([]byte, error)
}

// BundledRecording is one row of recordings/index.json.
type BundledRecording struct {
	// Seq, RequestID: the terminal entry that names the recording.
	Seq       int64  `json:"seq"`
	RequestID string `json:"request_id"`
	// ID and Digest are the recording id and digest the entry carries.
	ID     string `json:"recording_id"`
	Digest string `json:"digest"`
	// File is the canonical form's path in the bundle; empty when erased.
	File string `json:"file,omitempty"`
	// Erased is set when the recording's content was destroyed.
	Erased *BundledErasure `json:"erased,omitempty"`
}

// BundledErasure says when and by whom a bundled recording was erased.
type BundledErasure struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	// EntrySeq is the recording.erased entry's sequence number when it is
	// among the bundle's entries (then verified), -1 when it was written
	// after the segment (the catalogue's word, not proved by this bundle).
	EntrySeq int64 `json:"entry_seq"`
}

// recordingRef is a stored recording a terminal entry names.
type recordingRef struct {
	seq                   int64
	requestID, id, digest string
}

// recordingRefs collects, from a segment's entries, the recordings the
// period's terminal entries name and the erasure entries of the segment.
type recordingRefs struct {
	p      Period
	refs   []recordingRef
	erased map[string]erasureRef // recording id -> recording.erased entry
}

type erasureRef struct {
	seq    int64
	digest string
}

func newRecordingRefs(p Period) *recordingRefs {
	return &recordingRefs{p: p, erased: map[string]erasureRef{}}
}

// add looks at one entry of the segment.
func (rr *recordingRefs) add(e *audit.Entry) {
	switch e.Kind {
	case audit.KindRecordingErased:
		if id := detail(e, "recording_id"); id != "" {
			rr.erased[id] = erasureRef{seq: e.Seq, digest: detail(e, "digest")}
		}
	case audit.KindRequestCompleted:
		if !rr.p.Contains(e.Time) {
			return
		}
		if id, d := recordingOf(e); id != "" && d != "" {
			rr.refs = append(rr.refs, recordingRef{seq: e.Seq, requestID: e.RequestID, id: id, digest: d})
		}
	}
}

// recordingOf returns the id and digest of the stored recording the
// entry's details.recording names (written by the gateway), or "".
func recordingOf(e *audit.Entry) (id, digest string) {
	m, ok := e.Details["recording"].(map[string]any)
	if !ok {
		return "", ""
	}
	id, _ = m["id"].(string)
	digest, _ = m["digest"].(string)
	return id, digest
}

// safeRecordingID keeps ids usable as file names (ids are hex; anything
// else is refused rather than cleaned).
func safeRecordingID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// bundleRecordings reads every recording rr names from src into files
// and returns the index.
func bundleRecordings(ctx context.Context, src RecordingSource, rr *recordingRefs, files map[string][]byte) ([]BundledRecording, error) {
	out := []BundledRecording{}
	for _, r := range rr.refs {
		if !safeRecordingID(r.id) {
			return nil, fmt.Errorf("report: bundle: request %s: recording id %q is not a valid id", r.requestID, r.id)
		}
		row := BundledRecording{Seq: r.seq, RequestID: r.requestID, ID: r.id, Digest: r.digest}
		b, err := src.Canonical(ctx, r.id)
		var er *ErasedRecording
		switch {
		case errors.As(err, &er):
			row.Erased = &BundledErasure{At: er.At.UTC(), By: er.By, Reason: er.Reason, EntrySeq: -1}
			if x, ok := rr.erased[r.id]; ok {
				row.Erased.EntrySeq = x.seq
			}
		case err != nil:
			return nil, fmt.Errorf("report: bundle: recording %s of request %s: %w", r.id, r.requestID, err)
		default:
			if got := sha256Digest(b); got != r.digest {
				return nil, fmt.Errorf("report: bundle: recording %s of request %s has digest %s, its terminal entry %d committed to %s: no bundle is made from a recording that does not verify", r.id, r.requestID, got, r.seq, r.digest)
			}
			row.File = recordingDir + r.id + recordingExt
			files[row.File] = b
		}
		out = append(out, row)
	}
	return out, nil
}

// checkRecordings verifies the bundle's recordings against the terminal
// entries (rr, from the authenticated entries): every recording a
// terminal entry of the period names is listed, as a file whose SHA-256
// is the entry's digest or as erased (with its erasure entry when the
// segment holds it); nothing else is listed.
func checkRecordings(files map[string][]byte, rr *recordingRefs) (int, error) {
	var idx []BundledRecording
	if err := strictJSON(files[fileRecordingIndex], &idx); err != nil {
		return 0, bad("%s: %v", fileRecordingIndex, err)
	}
	listed := map[int64]BundledRecording{}
	for _, row := range idx {
		if _, dup := listed[row.Seq]; dup {
			return 0, bad("%s lists the recording of entry %d twice", fileRecordingIndex, row.Seq)
		}
		listed[row.Seq] = row
	}
	used := map[string]bool{}
	n := 0
	for _, r := range rr.refs {
		row, ok := listed[r.seq]
		if !ok {
			return 0, bad("request %s: recording %s (terminal entry %d) is missing from %s", r.requestID, r.id, r.seq, fileRecordingIndex)
		}
		delete(listed, r.seq)
		if row.RequestID != r.requestID || row.ID != r.id || row.Digest != r.digest {
			return 0, bad("request %s: %s names recording %s (%s), the signed terminal entry %d names %s (%s): a recording was swapped", r.requestID, fileRecordingIndex, row.ID, row.Digest, r.seq, r.id, r.digest)
		}
		if row.Erased != nil {
			if row.File != "" {
				return 0, bad("request %s: recording %s is listed both as erased and as %s", r.requestID, r.id, row.File)
			}
			x, inSegment := rr.erased[r.id]
			switch {
			case inSegment && row.Erased.EntrySeq != x.seq:
				return 0, bad("request %s: recording %s was erased by entry %d, %s says %d", r.requestID, r.id, x.seq, fileRecordingIndex, row.Erased.EntrySeq)
			case inSegment && x.digest != r.digest:
				return 0, bad("request %s: the erasure entry %d of recording %s names digest %s, the terminal entry %s", r.requestID, x.seq, r.id, x.digest, r.digest)
			case !inSegment && row.Erased.EntrySeq != -1:
				return 0, bad("request %s: recording %s: %s names erasure entry %d, which is not a recording.erased entry of this recording in the bundle", r.requestID, r.id, fileRecordingIndex, row.Erased.EntrySeq)
			}
			n++
			continue
		}
		want := recordingDir + r.id + recordingExt
		if row.File != want {
			return 0, bad("request %s: recording %s: file %q, want %q", r.requestID, r.id, row.File, want)
		}
		b, ok := files[want]
		if !ok {
			return 0, bad("request %s: recording %s: %s is missing from the bundle", r.requestID, r.id, want)
		}
		if got := sha256Digest(b); got != r.digest {
			return 0, bad("request %s: recording %s: %s has digest %s, the signed terminal entry %d committed to %s", r.requestID, r.id, want, got, r.seq, r.digest)
		}
		used[want] = true
		n++
	}
	for seq, row := range listed {
		return 0, bad("%s lists a recording for entry %d (request %s), which is not a terminal entry of the period naming it", fileRecordingIndex, seq, row.RequestID)
	}
	for p := range files {
		if strings.HasPrefix(p, recordingDir) && strings.HasSuffix(p, recordingExt) && !used[p] {
			return 0, bad("%s is in the bundle but no terminal entry of the period names it", p)
		}
	}
	return n, nil
}
