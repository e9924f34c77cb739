package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// maxLine bounds one exported event line.
const maxLine = 4 * audit.MaxEntrySize

// StreamError is a verification failure: the line and event it concerns
// and what is wrong. Callers test for it with errors.As.
type StreamError struct {
	// Line is the 1-based line number in the stream (0: at the end).
	Line int
	// UID is the event's metadata.uid, when known.
	UID string
	Msg string
}

func (e *StreamError) Error() string {
	switch {
	case e.Line == 0:
		return "export stream: " + e.Msg
	case e.UID == "":
		return fmt.Sprintf("export stream line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("export stream line %d (%s): %s", e.Line, e.UID, e.Msg)
}

// StreamReport is what VerifyStream found.
type StreamReport struct {
	// Events is the number of entry events read (duplicates included).
	Events int
	// Checkpoints is the number of checkpoint events read.
	Checkpoints int
	// First and Last are the smallest and largest entry sequence numbers.
	First, Last int64
	// Duplicates counts re-sent events (at-least-once delivery after a
	// restart); each was checked against the first copy.
	Duplicates int
	// Bound is the number of distinct entries proven to be in a signed
	// checkpoint's tree.
	Bound int64
	// UnboundTail counts entries after the last checkpoint in the
	// stream: not provable yet (a later export covers them).
	UnboundTail int64
	// ContentUnbound counts events without the embedded entry (their
	// sink drops parameters): their position and leaf are proven, their
	// other fields are not.
	ContentUnbound int
	// Latest is the largest verified checkpoint.
	Latest audit.Checkpoint
	// Elapsed is how long verification took.
	Elapsed time.Duration
}

// exported is the part of an event line the verifier reads.
type exported struct {
	Metadata struct {
		UID     string `json:"uid"`
		Product struct {
			Version string `json:"version"`
		} `json:"product"`
	} `json:"metadata"`
	Unmapped *struct {
		Warden *struct {
			Mapping    int               `json:"mapping"`
			Origin     string            `json:"origin"`
			Kind       string            `json:"kind"`
			Seq        *int64            `json:"seq"`
			LeafHash   *tlog.Hash        `json:"leaf_hash"`
			Entry      json.RawMessage   `json:"entry"`
			Frontier   []tlog.Hash       `json:"frontier"`
			Checkpoint *checkpointFields `json:"checkpoint"`
		} `json:"warden"`
	} `json:"unmapped"`
}

// VerifyStream checks an exported event stream (JSON lines, as the file
// sink writes them; several files of one stream concatenated in order)
// against the log's verifier key, with no access to the log:
//   - every checkpoint event is validly signed by v, and its fields are
//     those of its signed note;
//   - entry events are contiguous in sequence (a re-sent range after a
//     restart is allowed, and checked against the first copy);
//   - every event's canonical entry hashes to its leaf hash and maps to
//     exactly the event's OCSF fields (so no field was altered);
//   - the leaf hashes, continued from a frontier, give each signed
//     checkpoint's tree hash (so every event is included in the signed
//     tree, and none was removed, inserted or reordered).
//
// It returns the first failure as a *StreamError.
func VerifyStream(r io.Reader, v note.Verifier) (StreamReport, error) {
	start := time.Now()
	vs := &streamVerifier{v: v, origin: v.Name(), rep: StreamReport{First: -1, Last: -1}, hi: -1}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		vs.line++
		b := sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if err := vs.event(b); err != nil {
			return vs.rep, err
		}
	}
	if err := sc.Err(); err != nil {
		return vs.rep, &StreamError{Line: vs.line + 1, Msg: err.Error()}
	}
	if vs.rep.Events == 0 && vs.rep.Checkpoints == 0 {
		return vs.rep, &StreamError{Msg: "no events"}
	}
	if vs.chain {
		vs.rep.UnboundTail = vs.fr.n - max(vs.base, vs.rep.Latest.Size)
		vs.rep.Bound = max(vs.rep.Latest.Size-vs.firstAnchor, 0)
	}
	if vs.rep.Events > 0 && vs.rep.Bound == 0 {
		return vs.rep, &StreamError{Msg: "no signed checkpoint in the stream covers any of its events"}
	}
	vs.rep.Elapsed = time.Since(start)
	return vs.rep, nil
}

type streamVerifier struct {
	v      note.Verifier
	origin string
	line   int
	rep    StreamReport

	// chain: a frontier has anchored the stream; fr is the tree up to
	// the next expected entry.
	chain bool
	fr    frontier
	// base is the position of the last verified checkpoint (or of the
	// anchor), baseFr its frontier, and tail the leaves since.
	base   int64
	baseFr frontier
	tail   []tlog.Hash
	// expect holds the leaves a replay must reproduce: the previous
	// copy's unverified leaves from expectFrom.
	expect     []tlog.Hash
	expectFrom int64
	// firstAnchor is the smallest anchored position; hi the largest seq
	// seen (a seq at or below it is a re-sent duplicate).
	firstAnchor int64
	hi          int64
}

func (vs *streamVerifier) fail(uid, format string, args ...any) error {
	return &StreamError{Line: vs.line, UID: uid, Msg: fmt.Sprintf(format, args...)}
}

func (vs *streamVerifier) event(b []byte) error {
	var ev exported
	if err := json.Unmarshal(b, &ev); err != nil {
		return vs.fail("", "not an event: %v", err)
	}
	uid := ev.Metadata.UID
	if ev.Unmapped == nil || ev.Unmapped.Warden == nil {
		return vs.fail(uid, "no unmapped.warden fields: not a Warden export")
	}
	w := ev.Unmapped.Warden
	if w.Mapping != MappingVersion {
		return vs.fail(uid, "mapped by mapping version %d; this verifier knows version %d", w.Mapping, MappingVersion)
	}
	if w.Origin != vs.origin {
		return vs.fail(uid, "the event is from log %q, but the key is for %q", w.Origin, vs.origin)
	}
	m := Mapper{Origin: vs.origin, ProductVersion: ev.Metadata.Product.Version}
	if w.Checkpoint != nil {
		return vs.checkpoint(b, uid, &m, w.Checkpoint, w.Frontier, w.Kind)
	}
	if w.Seq == nil || w.LeafHash == nil {
		return vs.fail(uid, "an entry event without seq and leaf_hash")
	}
	seq, leaf := *w.Seq, *w.LeafHash
	if uid != EntryUID(vs.origin, seq) {
		return vs.fail(uid, "metadata.uid does not name entry %d", seq)
	}
	if w.Entry != nil {
		data := []byte(w.Entry)
		if tlog.RecordHash(data) != leaf {
			return vs.fail(uid, "the embedded entry does not hash to the event's leaf hash: the entry was altered")
		}
		e, err := audit.ParseEntry(seq, data)
		if err != nil {
			return vs.fail(uid, "embedded entry: %v", err)
		}
		want, err := m.Entry(e, data, w.Frontier)
		if err != nil {
			return vs.fail(uid, "re-map the embedded entry: %v", err)
		}
		if err := sameEvent(want.JSON, b); err != nil {
			return vs.fail(uid, "the event's fields do not match its entry (%v): the event was altered", err)
		}
	} else {
		vs.rep.ContentUnbound++
	}
	vs.rep.Events++
	if vs.rep.First < 0 || seq < vs.rep.First {
		vs.rep.First = seq
	}
	vs.rep.Last = max(vs.rep.Last, seq)
	if seq <= vs.hi {
		vs.rep.Duplicates++
	}
	vs.hi = max(vs.hi, seq)
	return vs.entry(uid, seq, leaf, w.Frontier)
}

// entry places one entry's leaf in the tree.
func (vs *streamVerifier) entry(uid string, seq int64, leaf tlog.Hash, fh []tlog.Hash) error {
	if fh == nil && seq == 0 {
		// The tree before entry 0 is empty: its frontier is known, also
		// when entry 0 comes again (a crash before the exporter's first
		// cursor save re-sends from the start).
		fh = []tlog.Hash{}
	}
	if fh != nil {
		if err := vs.anchor(uid, seq, fh); err != nil {
			return err
		}
	}
	if !vs.chain {
		return vs.fail(uid, "entry %d comes before any tree frontier, so it cannot be proven: an export starts at entry 0 or with a frontier (was its beginning removed?)", seq)
	}
	if seq != vs.fr.n {
		if seq > vs.fr.n {
			return vs.fail(uid, "entry %d found where entry %d was expected: entries [%d, %d) are missing", seq, vs.fr.n, vs.fr.n, seq)
		}
		return vs.fail(uid, "entry %d found where entry %d was expected: events were reordered or inserted", seq, vs.fr.n)
	}
	if i := seq - vs.expectFrom; i >= 0 && i < int64(len(vs.expect)) && vs.expect[i] != leaf {
		return vs.fail(uid, "re-sent entry %d differs from its first copy", seq)
	}
	vs.fr.add(leaf)
	vs.tail = append(vs.tail, leaf)
	return nil
}

// anchor handles a frontier carried by the event at position pos.
func (vs *streamVerifier) anchor(uid string, pos int64, fh []tlog.Hash) error {
	f, err := newFrontier(pos, fh)
	if err != nil {
		return vs.fail(uid, "bad frontier: %v", err)
	}
	switch {
	case !vs.chain:
		// The stream is anchored here; the next checkpoint proves it.
		vs.chain, vs.fr, vs.base, vs.baseFr, vs.tail = true, f, pos, f, nil
		vs.fr.hashes = slices.Clone(f.hashes)
		vs.firstAnchor = pos
	case pos == vs.fr.n:
		if !slices.Equal(f.hashes, vs.fr.hashes) {
			return vs.fail(uid, "the frontier at %d does not match the events before it: an earlier event was altered, removed or reordered", pos)
		}
	case pos > vs.fr.n:
		return vs.fail(uid, "position %d found where %d was expected: entries [%d, %d) are missing", pos, vs.fr.n, vs.fr.n, pos)
	default:
		// A replay after a restart: the exporter re-sends from its
		// cursor. Leaves not yet proven must be re-sent identically.
		if pos >= vs.base {
			redo := vs.baseFr
			redo.hashes = slices.Clone(redo.hashes)
			for _, l := range vs.tail[:pos-vs.base] {
				redo.add(l)
			}
			if !slices.Equal(redo.hashes, f.hashes) {
				return vs.fail(uid, "the frontier of the re-sent range at %d does not match the first copy", pos)
			}
			vs.expect, vs.expectFrom = slices.Clone(vs.tail[pos-vs.base:]), pos
			vs.tail = vs.tail[:pos-vs.base]
		} else {
			// Back before the last verified checkpoint: the replay must
			// reach that checkpoint again; the unproven leaves after it
			// must match.
			vs.expect, vs.expectFrom = slices.Clone(vs.tail), vs.base
			vs.base, vs.baseFr, vs.tail = pos, f, nil
			vs.firstAnchor = min(vs.firstAnchor, pos)
		}
		vs.fr = f
		vs.fr.hashes = slices.Clone(f.hashes)
	}
	return nil
}

// checkpoint verifies a checkpoint event and the tree it signs.
func (vs *streamVerifier) checkpoint(b []byte, uid string, m *Mapper, cf *checkpointFields, fh []tlog.Hash, kind string) error {
	c, err := audit.OpenCheckpoint([]byte(cf.Note), vs.v)
	if err != nil {
		return vs.fail(uid, "checkpoint: %v", err)
	}
	if kind != KindCheckpoint || uid != CheckpointUID(vs.origin, c.Size) {
		return vs.fail(uid, "checkpoint event does not name the checkpoint of size %d", c.Size)
	}
	want, err := m.Checkpoint(c, fh)
	if err != nil {
		return vs.fail(uid, "re-map the checkpoint: %v", err)
	}
	if err := sameEvent(want.JSON, b); err != nil {
		return vs.fail(uid, "the event's fields do not match its signed checkpoint (%v): the event was altered", err)
	}
	vs.rep.Checkpoints++
	if fh != nil {
		if err := vs.anchor(uid, c.Size, fh); err != nil {
			return err
		}
	}
	if !vs.chain {
		return nil // no entry yet: nothing for this checkpoint to prove
	}
	if c.Size != vs.fr.n {
		if c.Size > vs.fr.n {
			return vs.fail(uid, "checkpoint of size %d follows entry %d: entries [%d, %d) are missing", c.Size, vs.fr.n-1, vs.fr.n, c.Size)
		}
		return vs.fail(uid, "checkpoint of size %d found after entry %d: events were reordered", c.Size, vs.fr.n-1)
	}
	if vs.fr.root() != c.Hash {
		return vs.fail(uid, "checkpoint of size %d: the signed tree hash does not match the exported events: an event in [%d, %d) was altered, removed, inserted or reordered, or the frontier was forged", c.Size, vs.base, c.Size)
	}
	if c.Size > vs.rep.Latest.Size {
		vs.rep.Latest = c
	}
	vs.base, vs.tail = c.Size, vs.tail[:0]
	vs.baseFr = frontier{n: vs.fr.n, hashes: vs.fr.snapshot()}
	if vs.expectFrom+int64(len(vs.expect)) <= c.Size {
		vs.expect = nil
	}
	return nil
}

// sameEvent reports whether two JSON events are equal (as JSON values).
func sameEvent(want, got []byte) error {
	if bytes.Equal(want, got) {
		return nil
	}
	var a, b map[string]any
	if err := decodeNumbers(want, &a); err != nil {
		return err
	}
	if err := decodeNumbers(got, &b); err != nil {
		return err
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if !reflect.DeepEqual(a[k], b[k]) {
			return fmt.Errorf("%s differs", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[k]; !ok {
			return fmt.Errorf("%s was added", k)
		}
	}
	return errors.New("differs")
}

func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
