package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog"
)

// The log's records, tree hashes and batch heads are in a frame file
// beside the database (internal/store/framelog, decisions 038 and 042):
// one CRC-framed frame per committed batch, appended with one write and
// made durable with one fdatasync, instead of a SQLite transaction. The
// database keeps what is queried or small: the checkpoint history, the
// other side tables, and, in a store written before the frame file, the
// entries and hashes tables as a read-only prefix of the log: records
// [0, base) are in the tables, [base, size) in the frames, where base is
// the frame file's first seq and the frames_base marker's value.

// FramesPath is the frame file of the store at path: "audit.db" has
// "audit.db.frames" beside it (not ".log", which log-rotation globs
// match).
func FramesPath(path string) string { return path + ".frames" }

// errNoMarker: the database has no frames_base row.
var errNoMarker = errors.New("no frames_base marker")

// readMarker returns the frames_base marker, or errNoMarker.
func readMarker(ctx context.Context, q queryer) (int64, error) {
	var base int64
	err := q.QueryRowContext(ctx, "SELECT base FROM frames_base WHERE id = 0").Scan(&base)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errNoMarker
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: read the frames_base marker: %w", err)
	}
	return base, nil
}

// openFrames opens (or, on a store without one, creates) the frame file
// of a writable store whose schema is migrated. A store without the
// frames_base marker gets a frame file whose base is the tables' size
// (0 for a new store), synced, and then the marker, committed and synced:
// from then on the tables are a read-only prefix. A crash between the two
// leaves a frame file with no frames whose base is the tables' size: it
// is adopted. A frame file with any other base, or with frames, and no
// marker is refused: the frame file and the database do not belong
// together.
//
// The frames' history heads are read by the scan that verifies the file
// (frameHeads), for checkHistory (nil: a new frame file, no frames).
func (s *Store) openFrames(ctx context.Context) (*frameHeads, error) {
	fpath := FramesPath(s.path)
	n, err := size(ctx, s.w)
	if err != nil {
		return nil, err
	}
	base, err := readMarker(ctx, s.w)
	switch {
	case err == nil:
		if base != n {
			return nil, fmt.Errorf("sqlite: open %s: the entries table holds %d records but the frame file starts at %d (the tables were written after the frame file was made)", s.path, n, base)
		}
		h := &frameHeads{name: filepath.Base(fpath)}
		fr, cut, err := framelog.OpenVisit(fpath, h.visit)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sqlite: open %s: the store's frame file %s is missing (records from %d on are in it): %w", s.path, fpath, base, err)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", s.path, err)
		}
		logCut(fpath, fr, cut)
		if fr.Base() != base {
			fr.Close()
			return nil, fmt.Errorf("sqlite: open %s: the frame file %s starts at record %d, the store's marker says %d", s.path, fpath, fr.Base(), base)
		}
		if err := preallocate(fr); err != nil {
			fr.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", s.path, err)
		}
		s.fr, s.base = fr, base
		return h, nil
	case !errors.Is(err, errNoMarker):
		return nil, err
	}
	fr, cut, err := framelog.Open(fpath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if fr, err = framelog.Create(fpath, n); err != nil {
			return nil, fmt.Errorf("sqlite: open %s: %w", s.path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("sqlite: open %s: %w", s.path, err)
	default:
		logCut(fpath, fr, cut)
		if fr.Base() != n || fr.Frames() != 0 {
			fr.Close()
			return nil, fmt.Errorf("sqlite: open %s: the frame file %s (first record %d, %d frames) does not continue the store's %d records and the store has no frames_base marker; refusing to adopt it", s.path, fpath, fr.Base(), fr.Frames(), n)
		}
	}
	if err := preallocate(fr); err != nil {
		fr.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	if _, err := s.w.ExecContext(ctx, "INSERT INTO frames_base(id, base) VALUES (0, ?)", n); err != nil {
		fr.Close()
		return nil, fmt.Errorf("sqlite: open %s: write the frames_base marker: %w", s.path, err)
	}
	s.fl.commits++ // synced by Open's Flush
	s.fr, s.base = fr, n
	return nil, nil
}

// logCut logs a torn tail Open cut off the frame file, and where it kept
// the bytes when the tail held more than one torn write (past the durable
// mark, decision 045).
func logCut(fpath string, fr *framelog.Log, cut int64) {
	if cut == 0 {
		return
	}
	if kept := fr.TornFile(); kept != "" {
		slog.Warn("audit: cut a torn tail of the frame file past its durable mark; its bytes are kept", "path", fpath, "bytes", cut, "kept", kept)
		return
	}
	slog.Warn("audit: cut a torn tail of the frame file", "path", fpath, "bytes", cut)
}

// preallocate keeps framelog.DefaultChunk zeros written ahead of the
// frames and the durable mark beside them (decisions 044 and 045): a
// Sync's fdatasync then overwrites allocated blocks instead of growing
// the file. A zero write or a mark that fails is logged, not fatal.
func preallocate(fr *framelog.Log) error {
	return fr.Preallocate(framelog.DefaultChunk, func(err error) {
		slog.Warn("audit: preallocating the frame file or writing its durable mark failed; appends go on", "err", err)
	})
}

// openFramesReadOnly opens the frame file of a store opened read-only, if
// the store has one (a store not yet opened by a binary with frame files
// has only its tables). A torn tail is left in place and reported
// (Torn); a frame file that does not verify is returned as a
// *framelog.CorruptError with the seq it diverges at (see FramesCorrupt).
func (s *Store) openFramesReadOnly(ctx context.Context) error {
	fpath := FramesPath(s.path)
	n, err := size(ctx, s.r)
	if err != nil {
		return err
	}
	var hasMarker int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'frames_base'").Scan(&hasMarker); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	base := int64(-1)
	if hasMarker > 0 {
		if base, err = readMarker(ctx, s.r); errors.Is(err, errNoMarker) {
			base = -1
		} else if err != nil {
			return err
		}
	}
	if base < 0 {
		// Tables only, unless a frame file with frames lies beside it.
		if fr, _, err := framelog.OpenReadOnly(fpath); err == nil {
			frames, fbase := fr.Frames(), fr.Base()
			fr.Close()
			if frames > 0 || fbase != n {
				return fmt.Errorf("sqlite: open %s: the frame file %s (first record %d, %d frames) does not belong to the store (no frames_base marker, %d records)", s.path, fpath, fbase, frames, n)
			}
		}
		s.base = n
		return nil
	}
	if base != n {
		return fmt.Errorf("sqlite: open %s: the entries table holds %d records but the frame file starts at %d", s.path, n, base)
	}
	h := &frameHeads{name: filepath.Base(fpath)}
	fr, torn, err := framelog.OpenReadOnlyVisit(fpath, h.visit)
	if err != nil {
		var ce *framelog.CorruptError
		if errors.As(err, &ce) {
			s.corrupt = &FramesCorruptError{Err: ce, Seq: max(ce.Seq, base)}
			s.base = base
			return nil
		}
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	if fr.Base() != base {
		fr.Close()
		return fmt.Errorf("sqlite: open %s: the frame file %s starts at record %d, the store's marker says %d", s.path, fpath, fr.Base(), base)
	}
	s.fr, s.base, s.torn, s.hist = fr, base, torn, h.hist
	return nil
}

// FramesCorruptError is a frame file that does not verify, found by
// OpenReadOnly: the store reads only the records before Seq (those of
// the frames before the damaged one), and verification reports a
// divergence there.
type FramesCorruptError struct {
	Err *framelog.CorruptError
	// Seq is the first record of the damaged frame (as far as the frames
	// before it say).
	Seq int64
}

func (e *FramesCorruptError) Error() string {
	return fmt.Sprintf("the frame file does not verify from record %d on: %v", e.Seq, e.Err)
}

func (e *FramesCorruptError) Unwrap() error { return e.Err }

// Torn is the length of a torn tail left at the end of the frame file by
// a read-only open (0 if none; a writable Open cuts it).
func (s *Store) Torn() int64 { return s.torn }

// FramesCorrupt returns the frame file's damage found by OpenReadOnly, or
// nil: reads then stop at the damaged frame's first record.
func (s *Store) FramesCorrupt() *FramesCorruptError { return s.corrupt }

// loadHead sets the durable head from the newest frame that has one, or
// from the tables' head (a migrated store with no frame head yet).
func (s *Store) loadHead(ctx context.Context) ([]byte, error) {
	if s.fr != nil {
		for i := s.fr.Frames() - 1; i >= 0; i-- {
			b, err := s.fr.ReadBatch(i)
			if err != nil {
				return nil, fmt.Errorf("sqlite: head: %w", err)
			}
			if len(b.Head) > 0 {
				return bytes.Clone(b.Head), nil
			}
		}
	}
	if s.base == 0 {
		return nil, nil
	}
	return s.tableHead(ctx)
}

// tableHead reads the head kept in the tables (a store written before
// the frame file).
func (s *Store) tableHead(ctx context.Context) ([]byte, error) {
	var note []byte
	err := s.r.QueryRowContext(ctx, "SELECT note FROM head WHERE id = 0").Scan(&note)
	switch {
	case err == nil:
		return note, nil
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	}
	// A store last written by a binary without heads (opened read-only,
	// so not migrated) has no such table.
	var n int
	if qerr := s.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'head'").Scan(&n); qerr == nil && n == 0 {
		return nil, nil
	}
	return nil, fmt.Errorf("sqlite: head: %w", err)
}

// frameHeads collects the history heads (flag HeadHistory) of the
// frame file from the scan that verifies it at open
// (framelog.OpenVisit), so that reading them costs no second pass over
// the file.
type frameHeads struct {
	name string      // the frame file's base name, for Origin
	hist []frameHead // by ascending size
}

// frameHead is a history head as the frame file holds it. It is not
// parsed at open: Open compares bytes, and only a head the checkpoints
// table lacks or holds differently is parsed (checkpoint).
type frameHead struct {
	frame int
	end   int64 // the frame's end: the head's size, if it is sound
	note  []byte
	file  string // the frame file's base name
}

// visit is the framelog.Visitor.
func (h *frameHeads) visit(i int, p []byte) error {
	if !framelog.HeadHistory(p) {
		return nil // most frames: one load, no walk over the records
	}
	end, head, _, err := framelog.BatchHead(p)
	if err != nil {
		return err
	}
	h.hist = append(h.hist, frameHead{frame: i, end: end, note: bytes.Clone(head), file: h.name})
	return nil
}

// checkpoint parses f, its Origin naming the frame. A note that does not
// parse is returned as it is, with the frame's end as its size, so that
// the verification that reads it reports it (its signature cannot
// check); the error says why f cannot be copied into the checkpoints
// table: that, or a size that is not the frame's end.
func (f frameHead) checkpoint() (audit.Checkpoint, error) {
	c, err := headCheckpoint(f.note)
	switch {
	case err != nil:
		c = audit.Checkpoint{Size: f.end, Note: f.note}
		err = fmt.Errorf("the history head of frame %d: %w", f.frame, err)
	case c.Size != f.end:
		err = fmt.Errorf("the history head of frame %d has size %d, the frame ends at %d", f.frame, c.Size, f.end)
	}
	c.Origin = fmt.Sprintf("frame %d of %s", f.frame, f.file)
	return c, err
}

// checkHistory compares the frames' history heads with the checkpoints
// table at a writable Open, byte for byte. A head the table lacks is
// copied into it: they are inserted after each Sync without a sync of
// their own, so a crash may have lost the newest (one that does not
// parse, or whose size is not its frame's end, refuses the store). A
// head that differs from the table's row of its size is kept (s.hist)
// for Checkpoints to return beside the row, so that the verification at
// start-up checks both, as `warden verify` does, and refuses the store
// naming the checkpoint and both copies' sources; it is logged here too.
func (s *Store) checkHistory(ctx context.Context, h *frameHeads) error {
	if h == nil || len(h.hist) == 0 {
		return nil
	}
	rows, err := scanCheckpoints(ctx, s.w, "SELECT size, hash, time_ns, note FROM checkpoints WHERE size >= ? ORDER BY size", s.base)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	notes := make(map[int64][]byte, len(rows))
	for _, c := range rows {
		notes[c.Size] = c.Note
	}
	var missing []audit.Checkpoint
	for _, i := range unheld(rows, h.hist) {
		f := h.hist[i]
		c, err := f.checkpoint()
		if n, ok := notes[c.Size]; ok {
			if bytes.Equal(n, c.Note) {
				continue // held at the size its note says, not its frame's end: Verify finds that
			}
			slog.Error("audit: a history head of the frame file differs from the checkpoints table's row of its size",
				"size", c.Size, "frame", f.frame, "path", s.path)
			s.hist = append(s.hist, f)
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: open %s: %w", s.path, err)
		}
		missing = append(missing, c)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := s.insertCheckpoints(ctx, missing); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	s.fl.commits++ // synced by Open's Flush
	return nil
}

// unheld returns the indexes of the frame heads the table does not hold
// byte for byte at their frame's end, in order.
func unheld(table []audit.Checkpoint, frames []frameHead) []int {
	have := make(map[int64][][]byte, len(table))
	for _, c := range table {
		have[c.Size] = append(have[c.Size], c.Note)
	}
	var out []int
	for i, f := range frames {
		if !slices.ContainsFunc(have[f.end], func(n []byte) bool { return bytes.Equal(n, f.note) }) {
			out = append(out, i)
		}
	}
	return out
}

// mergeHistory returns the table's checkpoints plus every frame head the
// table does not hold byte for byte, parsed (frameHead.checkpoint), by
// ascending size (stable: at equal sizes the table's row first). The
// Origin of each head added, and of a table row beside which one is
// added, names both sources, so that a verification failing on either
// says where each copy came from.
func mergeHistory(table []audit.Checkpoint, frames []frameHead) []audit.Checkpoint {
	extra := unheld(table, frames)
	if len(extra) == 0 {
		return table
	}
	at := make(map[int64]int, len(table))
	for i, c := range table {
		at[c.Size] = i
	}
	out := slices.Clone(table)
	for _, k := range extra {
		c, _ := frames[k].checkpoint() // one that does not parse is for Verify to report
		frame := c.Origin
		i, ok := at[c.Size]
		switch {
		case ok && bytes.Equal(table[i].Note, c.Note):
			continue // held at the size its note says (not its frame's end): Verify checks the row
		case ok:
			c.Origin = "the history head in " + frame + "; the checkpoints table holds another note of that size"
			out[i].Origin = "the checkpoints table's row; the history head in " + frame + " differs"
		default:
			c.Origin = "the history head in " + frame + ", which the checkpoints table lacks"
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b audit.Checkpoint) int { return cmp.Compare(a.Size, b.Size) })
	return out
}

// headCheckpoint parses a signed checkpoint note without verifying its
// signature (Verify does): the text before the blank line.
func headCheckpoint(note []byte) (audit.Checkpoint, error) {
	i := bytes.Index(note, []byte("\n\n"))
	if i < 0 {
		return audit.Checkpoint{}, errors.New("not a signed note")
	}
	_, size, hash, at, err := audit.ParseCheckpoint(note[:i+1])
	if err != nil {
		return audit.Checkpoint{}, err
	}
	return audit.Checkpoint{Size: size, Hash: hash, Time: at, Note: note}, nil
}

// insertCheckpoints adds history heads to the checkpoints table in one
// transaction, committed without a sync (the frames hold them durably);
// one already there is left as it is.
func (s *Store) insertCheckpoints(ctx context.Context, cps []audit.Checkpoint) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("insert checkpoints: %w", err)
	}
	defer tx.Rollback()
	for _, c := range cps {
		if _, err := tx.ExecContext(ctx, "INSERT INTO checkpoints(size, hash, time_ns, note) VALUES (?, ?, ?, ?) ON CONFLICT(size) DO NOTHING",
			c.Size, c.Hash[:], c.Time.UnixNano(), c.Note); err != nil {
			return fmt.Errorf("insert checkpoint %d: %w", c.Size, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("insert checkpoints: commit: %w", err)
	}
	return nil
}

// frameErr maps the frame file's errors to the audit.Store ones.
func frameErr(what string, err error) error {
	switch {
	case errors.Is(err, framelog.ErrNotFound):
		return fmt.Errorf("sqlite: %s: %w (%v)", what, audit.ErrNotFound, err)
	case errors.Is(err, framelog.ErrClosed):
		return fmt.Errorf("sqlite: %s: %w", what, audit.ErrClosed)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// readFrameRecords appends records [from, to), all at or above base, from
// the frames to out.
func (s *Store) readFrameRecords(out []audit.Record, from, to int64) ([]audit.Record, error) {
	if s.fr == nil {
		return nil, fmt.Errorf("sqlite: read records: record %d: %w", from, audit.ErrNotFound)
	}
	i, _, err := s.fr.Find(from)
	if err != nil {
		return nil, frameErr("read records", err)
	}
	for seq := from; seq < to; i++ {
		b, err := s.fr.ReadBatch(i)
		if err != nil {
			return nil, frameErr("read records", err)
		}
		for k := seq - b.FirstSeq; k < int64(len(b.Records)) && seq < to; k++ {
			out = append(out, audit.Record{Seq: seq, Data: b.Records[k]})
			seq++
		}
	}
	return out, nil
}

// readFrameSeqs returns the records at seqs (each at or above base) that
// the frames hold, reading each frame once.
func (s *Store) readFrameSeqs(seqs []int64, data map[int64][]byte) error {
	if s.fr == nil || len(seqs) == 0 {
		return nil
	}
	sorted := append([]int64(nil), seqs...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	var b framelog.Batch
	cur := -1
	for _, x := range sorted {
		i, _, err := s.fr.Find(x)
		if errors.Is(err, framelog.ErrNotFound) {
			continue
		}
		if err != nil {
			return frameErr("search", err)
		}
		if i != cur {
			if b, err = s.fr.ReadBatch(i); err != nil {
				return frameErr("search", err)
			}
			cur = i
		}
		data[x] = b.Records[x-b.FirstSeq]
	}
	return nil
}

// readHashesSplit reads hashes below the frames' first hash index from
// the tables and the others from the frames.
func (s *Store) readHashesSplit(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return []tlog.Hash{}, nil
	}
	hb := tlog.StoredHashCount(s.base)
	low := 0
	for _, x := range indexes {
		if x < hb {
			low++
		}
	}
	if low == 0 {
		if s.fr == nil {
			return nil, fmt.Errorf("sqlite: read hashes: %w", audit.ErrNotFound)
		}
		out, err := s.fr.ReadHashes(indexes)
		if err != nil {
			return nil, frameErr("read hashes", err)
		}
		return out, nil
	}
	if low == len(indexes) {
		return s.readTableHashes(ctx, indexes)
	}
	var lo, hi []int64
	for _, x := range indexes {
		if x < hb {
			lo = append(lo, x)
		} else {
			hi = append(hi, x)
		}
	}
	lh, err := s.readTableHashes(ctx, lo)
	if err != nil {
		return nil, err
	}
	if s.fr == nil {
		return nil, fmt.Errorf("sqlite: read hash %d: %w", hi[0], audit.ErrNotFound)
	}
	hh, err := s.fr.ReadHashes(hi)
	if err != nil {
		return nil, frameErr("read hashes", err)
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < hb {
			out[i], lh = lh[0], lh[1:]
		} else {
			out[i], hh = hh[0], hh[1:]
		}
	}
	return out, nil
}

var _ audit.HeadSourcer = (*Store)(nil)

// HeadSource says where Head reads the store's head, for messages: the
// frame file's last head, or, in a store migrated from the tables with no
// frame head yet, the head table.
func (s *Store) HeadSource() string {
	if s.fr != nil {
		for i := s.fr.Frames() - 1; i >= 0; i-- {
			if b, err := s.fr.ReadBatch(i); err == nil && len(b.Head) > 0 {
				return "frame file's last head"
			}
		}
	}
	return "store's head table"
}
