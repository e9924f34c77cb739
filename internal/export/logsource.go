package export

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

// LogReader is the part of the audit store the exporter reads: records by
// sequence range, stored tree hashes and checkpoints (audit.Store has the
// contract; both stores implement it).
type LogReader interface {
	Size(ctx context.Context) (int64, error)
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	ReadRecords(ctx context.Context, from, to int64) ([]audit.Record, error)
	Checkpoints(ctx context.Context) ([]audit.Checkpoint, error)
	LatestCheckpoint(ctx context.Context) (audit.Checkpoint, error)
}

// LogSourceOptions configure a LogSource.
type LogSourceOptions struct {
	// Latest returns the size of the newest checkpoint in the store's
	// history cheaply. Nil: the source asks the store every Poll. (Not
	// audit.Log.Latest: that is the signed head of the newest batch,
	// which the history may not hold.)
	Latest func() int64
	// Poll is how often the source looks for a new checkpoint when it has
	// nothing to yield. Default 100ms.
	Poll time.Duration
	// Cosignatures returns the witness-cosigned notes held for the
	// checkpoint of a tree size (each the log's note plus one witness's
	// cosignature line); nil: checkpoints are exported with the log's
	// signature only.
	Cosignatures func(ctx context.Context, size int64) ([][]byte, error)
	// Chunk is how many records one store read returns. Default 500.
	Chunk int
	// WaitSigned, when set, blocks until the store may hold a checkpoint
	// larger than size (or ctx ends), so export follows without polling
	// delay. The source still re-checks every Poll.
	WaitSigned func(ctx context.Context, size int64) error
}

// LogSource is the Source over the real audit log: it reads committed
// records from the store by sequence and yields each signed checkpoint
// between the entries it signs.
//
// It reads the store itself rather than through audit.Follow because it
// needs what Follow does not give: the checkpoints in place, each
// entry's canonical bytes (the leaf), and one read and decode of each
// entry shared by every sink. It waits for the store's next checkpoint
// by polling (or WaitSigned); audit.Log.WaitCheckpoint does not fit, as
// it follows the signed head of every batch, which the store's history
// does not hold.
//
// It yields only signed entries: entry n once a checkpoint of size > n
// exists. That is what keeps positions in order (a checkpoint of size N
// is always yielded before entry N, because it exists before the
// source goes past N) and makes every exported event provable from the
// export alone; the price is export latency of up to
// audit.checkpoint_interval (the log signs at least that often while it
// grows, and on every clean stop).
type LogSource struct {
	st     LogReader
	opts   LogSourceOptions
	cache  *ring[readEntry] // shared by every Follow: one per sink
	readMu sync.Mutex       // one store read at a time (see read)

	// The last checkpoint listing, shared by every Follow: the sinks see
	// a new checkpoint at about the same time, and the store lists all
	// of them (Store.Checkpoints has no range).
	cpMu     sync.Mutex
	cpList   []audit.Checkpoint
	cpListed int64 // the newest size when cpList was read
}

var _ Source = (*LogSource)(nil)

// NewLogSource returns a Source reading st.
func NewLogSource(st LogReader, opts LogSourceOptions) *LogSource {
	if opts.Poll <= 0 {
		opts.Poll = 100 * time.Millisecond
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 500
	}
	return &LogSource{st: st, opts: opts, cache: newRing[readEntry](cacheSlots)}
}

// ReadHashes reads stored tree hashes.
func (s *LogSource) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	return s.st.ReadHashes(ctx, indexes)
}

// Size is the number of committed entries (signed or not).
func (s *LogSource) Size(ctx context.Context) (int64, error) { return s.st.Size(ctx) }

// signedSize returns the newest checkpoint's size (-1: none yet).
func (s *LogSource) signedSize(ctx context.Context) (int64, error) {
	if s.opts.Latest != nil {
		if n := s.opts.Latest(); n > 0 {
			return n, nil
		}
	}
	c, err := s.st.LatestCheckpoint(ctx)
	if errors.Is(err, audit.ErrNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	return c.Size, nil
}

// Follow yields entries and checkpoints from position from (see Source).
func (s *LogSource) Follow(ctx context.Context, from int64) iter.Seq2[Item, error] {
	return func(yield func(Item, error) bool) {
		next := from  // the next entry to yield
		cpMin := from // the smallest checkpoint size still to yield
		listed := int64(-1)
		fail := func(err error) {
			if ctx.Err() == nil {
				yield(Item{}, err)
			}
		}
		for {
			latest, err := s.signedSize(ctx)
			if err != nil {
				fail(fmt.Errorf("export: newest checkpoint: %w", err))
				return
			}
			if latest >= cpMin && latest != listed {
				cps, err := s.checkpoints(ctx, latest)
				if err != nil {
					fail(fmt.Errorf("export: list checkpoints: %w", err))
					return
				}
				for _, cp := range cps {
					if cp.Size < cpMin {
						continue
					}
					for next < cp.Size {
						if c, ok := s.cache.get(next); ok {
							// A fed entry is yielded as appended: the
							// exporter maps it without settling it
							// (Item.fed), which Recorded's copy of every
							// map would otherwise cost for each entry.
							if !yield(Item{Entry: c.e, Data: c.data, fed: c.fed, src: s}, nil) {
								return
							}
							next++
							continue
						}
						end := min(next+int64(s.opts.Chunk), cp.Size)
						got, err := s.read(ctx, next, end)
						if err != nil {
							fail(err)
							return
						}
						for _, c := range got {
							if !yield(Item{Entry: c.e, Data: c.data}, nil) {
								return
							}
						}
						next = end
					}
					if s.opts.Cosignatures != nil {
						notes, err := s.opts.Cosignatures(ctx, cp.Size)
						if err != nil {
							fail(fmt.Errorf("export: cosignatures of checkpoint %d: %w", cp.Size, err))
							return
						}
						cp.Note = MergeNoteSignatures(cp.Note, notes...)
					}
					if !yield(Item{Checkpoint: &cp}, nil) {
						return
					}
					cpMin = cp.Size + 1
				}
				listed = latest
				continue // a checkpoint may have been signed meanwhile
			}
			if !s.wait(ctx, max(latest, 0)) {
				return
			}
		}
	}
}

// checkpoints lists the store's checkpoints by ascending size, at least
// up to latest; the list is shared (read-only) by every Follow.
func (s *LogSource) checkpoints(ctx context.Context, latest int64) ([]audit.Checkpoint, error) {
	s.cpMu.Lock()
	defer s.cpMu.Unlock()
	if s.cpList != nil && s.cpListed == latest {
		return s.cpList, nil
	}
	cps, err := s.st.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cps, func(a, b audit.Checkpoint) int { return cmp.Compare(a.Size, b.Size) })
	s.cpList, s.cpListed = cps, latest
	return cps, nil
}

// wait waits for a checkpoint larger than size, at most Poll; it
// reports false when ctx ended.
func (s *LogSource) wait(ctx context.Context, size int64) bool {
	if s.opts.WaitSigned == nil {
		return sleep(ctx, s.opts.Poll)
	}
	wctx, cancel := context.WithTimeout(ctx, s.opts.Poll)
	defer cancel()
	_ = s.opts.WaitSigned(wctx, size) // a timeout just means: look again
	return ctx.Err() == nil
}

// read reads, decodes and caches entries [from, to). One read at a time:
// a sink that asks for a range another sink is reading waits and then
// finds it in the cache.
func (s *LogSource) read(ctx context.Context, from, to int64) ([]readEntry, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	out := make([]readEntry, 0, to-from)
	for ; from < to; from++ {
		c, ok := s.cache.get(from)
		if !ok {
			break
		}
		c, err := s.settle(from, c)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if from == to {
		return out, nil
	}
	recs, err := s.st.ReadRecords(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("export: read entries [%d, %d): %w", from, to, err)
	}
	if int64(len(recs)) != to-from {
		return nil, fmt.Errorf("export: read entries [%d, %d): the store returned %d", from, to, len(recs))
	}
	for _, r := range recs {
		// The stored bytes are the leaf (hashed and embedded as they are);
		// their canonical form is verification's concern (VerifyStream
		// re-parses strictly), so skip the costly re-encoding check here.
		e, err := audit.DecodeEntry(r.Seq, r.Data)
		if err != nil {
			return nil, fmt.Errorf("export: entry %d: %w", r.Seq, err)
		}
		c := readEntry{e: e, data: r.Data}
		s.cache.put(r.Seq, c)
		out = append(out, c)
	}
	return out, nil
}

// Feed takes records the log has just committed (audit.Log.OnCommit:
// Seq, Data and Entry set) into the cache the sinks read first, so that
// sinks following the log neither read them back from the store nor
// decode them. It only fills the cache: what the sinks export is still
// decided by the store (its checkpoints, and a read for every position
// the cache does not hold — overwritten by newer entries while a sink
// was behind, or never fed), so correctness never depends on it. Memory
// stays bounded by the cache's slots. It is cheap (no decoding) and
// never blocks on a sink: the log's writer calls it.
func (s *LogSource) Feed(recs []audit.Record) {
	for _, r := range recs {
		if r.Entry == nil || r.Data == nil || r.Entry.Seq != r.Seq {
			continue
		}
		s.cache.put(r.Seq, readEntry{e: r.Entry, data: r.Data, fed: true})
	}
}

// settled returns it with its entry in the form a store read gives
// (see settle): it is it unchanged unless the source yielded the entry
// as fed.
func (it Item) settled() (Item, error) {
	if !it.fed || it.src == nil {
		return it, nil
	}
	c, err := it.src.settle(it.Entry.Seq, readEntry{e: it.Entry, data: it.Data, fed: true})
	if err != nil {
		return Item{}, err
	}
	return Item{Entry: c.e, Data: c.data}, nil
}

// settle returns c, a cached entry at seq, in the form a store read
// gives: a fed entry is converted (Entry.Recorded, or decoded from its
// bytes when that cannot tell) and the cache updated.
func (s *LogSource) settle(seq int64, c readEntry) (readEntry, error) {
	if !c.fed {
		return c, nil
	}
	e, ok := c.e.Recorded()
	if !ok {
		var err error
		if e, err = audit.DecodeEntry(seq, c.data); err != nil {
			return readEntry{}, fmt.Errorf("export: entry %d: %w", seq, err)
		}
	}
	c = readEntry{e: e, data: c.data}
	s.cache.update(seq, c)
	return c, nil
}

// MergeNoteSignatures returns the signed note base with the signature
// lines of others that it does not hold yet (witness cosignatures of the
// same checkpoint text) appended. A note whose text differs from base's
// is ignored: it signs another checkpoint.
func MergeNoteSignatures(base []byte, others ...[]byte) []byte {
	text, sigs, ok := splitNote(base)
	if !ok {
		return base
	}
	out := append([]byte(nil), base...)
	for _, o := range others {
		t, ss, ok := splitNote(o)
		if !ok || !bytes.Equal(t, text) {
			continue
		}
		for _, line := range ss {
			if !slices.ContainsFunc(sigs, func(h []byte) bool { return bytes.Equal(h, line) }) {
				out = append(append(out, line...), '\n')
				sigs = append(sigs, line)
			}
		}
	}
	return out
}

// splitNote splits a signed note into its text (with the final newline)
// and its signature lines.
func splitNote(msg []byte) (text []byte, sigs [][]byte, ok bool) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 || len(msg) == 0 || msg[len(msg)-1] != '\n' {
		return nil, nil, false
	}
	text = msg[:i+1]
	for _, line := range bytes.Split(msg[i+2:len(msg)-1], []byte("\n")) {
		if len(line) > 0 {
			sigs = append(sigs, line)
		}
	}
	return text, sigs, true
}
