package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A segment is a self-contained, offline-verifiable slice [From, To) of
// the log, for auditors and for archiving (docs/audit.md). It is JSON
// lines:
//
//	{"format":"warden-audit-segment/1","from":F,"to":T,"frontier":["<base64>",...]}
//	{"checkpoint":"<signed note>"}          one per checkpoint with F <= size <= T
//	{"seq":F,"entry":<canonical entry>}     one per entry, in order
//
// The frontier holds the roots of the complete subtrees of the tree of
// size F (none for F = 0); with the checkpoint of size F it lets the
// verifier continue the tree without the earlier entries. To is always
// the size of a checkpoint, so every entry is covered by a signature.

// SegmentFormat is the format name in a segment header.
const SegmentFormat = "warden-audit-segment/1"

type segmentHeader struct {
	Format   string      `json:"format"`
	From     int64       `json:"from"`
	To       int64       `json:"to"`
	Frontier []tlog.Hash `json:"frontier"`
}

// Export writes the segment [from, to) of st to w. from must be 0 or the
// size of a checkpoint; to must be the size of a checkpoint (0 means the
// latest checkpoint).
func Export(ctx context.Context, st Store, w io.Writer, from, to int64) error {
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if len(cps) == 0 {
		return fmt.Errorf("audit: export: no checkpoint yet: %w", ErrNotFound)
	}
	if to == 0 {
		to = cps[len(cps)-1].Size
	}
	has := func(n int64) bool {
		for _, c := range cps {
			if c.Size == n {
				return true
			}
		}
		return false
	}
	if from < 0 || from > to || (from != 0 && !has(from)) || !has(to) {
		return fmt.Errorf("audit: export [%d, %d): both ends must be checkpoint sizes (or from = 0)", from, to)
	}
	tr, err := loadTree(ctx, st, from)
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	hdr, _ := json.Marshal(segmentHeader{Format: SegmentFormat, From: from, To: to, Frontier: append([]tlog.Hash{}, tr.frontier...)})
	bw.Write(hdr)
	bw.WriteByte('\n')
	for _, c := range cps {
		if c.Size < from || c.Size > to {
			continue
		}
		line, _ := json.Marshal(struct {
			Checkpoint string `json:"checkpoint"`
		}{string(c.Note)})
		bw.Write(line)
		bw.WriteByte('\n')
	}
	for lo := from; lo < to; lo += verifyChunk {
		recs, err := st.ReadRecords(ctx, lo, min(lo+verifyChunk, to))
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		for _, r := range recs {
			bw.WriteString(`{"seq":`)
			bw.WriteString(strconv.FormatInt(r.Seq, 10))
			bw.WriteString(`,"entry":`)
			bw.Write(r.Data)
			bw.WriteString("}\n")
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

// VerifySegment verifies a segment read from r against the verifier key:
// every checkpoint signature, the frontier against the first checkpoint,
// every entry's position and the tree hash at every checkpoint. It
// returns the first divergence as a *Divergence. Within a segment there
// are no stored hashes, so a changed entry is located to the range
// between two checkpoints.
func VerifySegment(ctx context.Context, r io.Reader, v note.Verifier) (Report, error) {
	start := time.Now()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxEntrySize+4096)
	line := 0
	next := func() ([]byte, bool, error) {
		if !sc.Scan() {
			return nil, false, sc.Err()
		}
		line++
		return sc.Bytes(), true, nil
	}
	b, ok, err := next()
	if err != nil || !ok {
		return Report{}, diverge(-1, -1, "segment: missing header line (%v)", err)
	}
	var hdr segmentHeader
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hdr); err != nil || hdr.Format != SegmentFormat {
		return Report{}, diverge(-1, -1, "segment: bad header (format %q, %v)", hdr.Format, err)
	}
	if hdr.From < 0 || hdr.To < hdr.From || len(hdr.Frontier) != bits.OnesCount64(uint64(hdr.From)) {
		return Report{}, diverge(-1, -1, "segment: bad header: from %d, to %d, %d frontier hashes", hdr.From, hdr.To, len(hdr.Frontier))
	}
	var cps []Checkpoint
	var pending []byte // first entry line, read while looking for checkpoints
	for {
		b, ok, err := next()
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify segment: line %d: %w", line+1, err)
		}
		if !ok {
			break
		}
		if !bytes.HasPrefix(b, []byte(`{"checkpoint":`)) {
			pending = b
			break
		}
		var cl struct {
			Checkpoint string `json:"checkpoint"`
		}
		if err := json.Unmarshal(b, &cl); err != nil {
			return Report{}, diverge(-1, -1, "segment line %d: bad checkpoint line: %v", line, err)
		}
		c, err := OpenCheckpoint([]byte(cl.Checkpoint), v)
		if err != nil {
			return Report{}, diverge(-1, -1, "segment line %d: checkpoint %d: %v", line, len(cps)+1, err)
		}
		if len(cps) > 0 && c.Size <= cps[len(cps)-1].Size {
			return Report{}, diverge(-1, c.Size, "segment line %d: checkpoint of size %d is out of order", line, c.Size)
		}
		if c.Size < hdr.From || c.Size > hdr.To {
			return Report{}, diverge(-1, c.Size, "segment line %d: checkpoint of size %d is outside the segment [%d, %d]", line, c.Size, hdr.From, hdr.To)
		}
		cps = append(cps, c)
	}
	if len(cps) == 0 || cps[len(cps)-1].Size != hdr.To {
		return Report{}, diverge(hdr.To, hdr.To, "segment: no signed checkpoint of size %d covers its end: the segment was cut or its checkpoint removed", hdr.To)
	}
	tr := tree{n: hdr.From, frontier: hdr.Frontier}
	k := 0
	if hdr.From > 0 {
		if cps[0].Size != hdr.From {
			return Report{}, diverge(hdr.From, hdr.From, "segment: no signed checkpoint of size %d anchors its start", hdr.From)
		}
		if tr.root() != cps[0].Hash {
			return Report{}, diverge(hdr.From, hdr.From, "segment: the frontier hashes in the header do not match the checkpoint of size %d", hdr.From)
		}
		k = 1
	}
	rep := Report{From: hdr.From, Checkpoints: len(cps), Latest: cps[len(cps)-1]}
	prev := hdr.From
	b = pending
	for b != nil {
		if tr.n%verifyChunk == 0 {
			if err := ctx.Err(); err != nil {
				return Report{}, err
			}
		}
		seq, entry, ok := splitEntryLine(b)
		if !ok {
			var el struct {
				Seq   *int64          `json:"seq"`
				Entry json.RawMessage `json:"entry"`
			}
			if err := json.Unmarshal(b, &el); err != nil || el.Seq == nil || len(el.Entry) == 0 {
				return Report{}, diverge(tr.n, -1, "segment line %d: bad entry line (%v)", line, err)
			}
			seq, entry = *el.Seq, el.Entry
		}
		if seq != tr.n {
			return Report{}, diverge(tr.n, -1, "segment line %d: entry %d found where entry %d was expected: entries were deleted, inserted or reordered", line, seq, tr.n)
		}
		if tr.n >= hdr.To {
			return Report{}, diverge(tr.n, -1, "segment line %d: entry %d is beyond the segment end %d", line, tr.n, hdr.To)
		}
		tr.add(entry)
		if k < len(cps) && cps[k].Size == tr.n {
			if tr.root() != cps[k].Hash {
				return Report{}, diverge(-1, cps[k].Size, "checkpoint of size %d: signed tree hash does not match the entries: an entry in [%d, %d) was changed, inserted, removed or reordered", cps[k].Size, prev, cps[k].Size)
			}
			prev = cps[k].Size
			k++
		}
		b, ok, err = next()
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify segment: line %d: %w", line+1, err)
		}
		if !ok {
			b = nil
		}
	}
	if tr.n < hdr.To {
		return Report{}, diverge(tr.n, hdr.To, "segment ends after entry %d but its header says it runs to %d: it was truncated", tr.n-1, hdr.To)
	}
	rep.Size = tr.n
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// splitEntryLine reads an entry line in the exact form Export writes,
// {"seq":N,"entry":<bytes>}, without a JSON decoder (the decoder was most
// of a segment's verification time). Any other form reports false and is
// decoded as JSON. The entry bytes need no syntax check here: they are
// hashed, and only bytes the signed tree holds can match it.
func splitEntryLine(b []byte) (int64, []byte, bool) {
	const pre, mid = `{"seq":`, `,"entry":`
	if !bytes.HasPrefix(b, []byte(pre)) || len(b) < len(pre)+len(mid)+3 || b[len(b)-1] != '}' {
		return 0, nil, false
	}
	rest := b[len(pre) : len(b)-1]
	i := bytes.IndexByte(rest, ',')
	if i <= 0 || !bytes.HasPrefix(rest[i:], []byte(mid)) {
		return 0, nil, false
	}
	seq, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != string(rest[:i]) {
		return 0, nil, false
	}
	entry := rest[i+len(mid):]
	if len(entry) < 2 || entry[0] != '{' {
		return 0, nil, false
	}
	return seq, entry, true
}
