package audit

import (
	"cmp"
	"runtime"
	"sync"

	"context"
	"errors"
	"fmt"
	jsonv2 "github.com/go-json-experiment/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Dimensions an Aggregate can group by.
const (
	ByKind      = "kind"
	ByCategory  = "category"
	ByDecision  = "decision" // Decision.Action
	ByRule      = "rule"     // Decision.Rule
	ByOutcome   = "outcome"
	ByPrincipal = "principal" // the principal's subject
	ByRoute     = "route"
	ByModel     = "model"
	ByStatus    = "status"
)

// AggregateDimensions lists every dimension Aggregate accepts.
var AggregateDimensions = []string{ByKind, ByCategory, ByDecision, ByRule, ByOutcome, ByPrincipal, ByRoute, ByModel, ByStatus}

// MaxAggregateGroups bounds the groups of one Aggregate (grouping by
// principal over a long period could otherwise grow without limit).
const MaxAggregateGroups = 10000

// TimeSkew is the most an entry's time may precede that of an entry
// sequenced before it. Entry times are taken at Append, just before the
// group commit, so they are out of sequence order only by the commit
// queue's wait and, with replicas, by clock skew between hosts. Aggregate
// relies on it to locate a time range by binary search.
const TimeSkew = 10 * time.Minute

// AggregateQuery selects and groups entries for Aggregate.
type AggregateQuery struct {
	// From and To bound the entry time: From <= Time < To. Zero From
	// means the first entry, zero To the last.
	From, To time.Time
	// By lists the dimensions to group by (AggregateDimensions); none
	// gives one group, the total.
	By []string
	// Kind, when set, counts only entries of this kind.
	Kind string
	// Recount counts from the log's entries alone (as AggregateStore
	// does): neither the index's persisted counts nor the Log's cache.
	// Slower (every entry in the range is read and decoded); for checking
	// a count against the evidence itself.
	Recount bool
}

// Group is one row of an Aggregate: the values of the grouped dimensions
// (the others are empty) and how many entries have them.
type Group struct {
	Kind      string `json:"kind,omitempty"`
	Category  string `json:"category,omitempty"`
	Decision  string `json:"decision,omitempty"`
	Rule      string `json:"rule,omitempty"`
	Outcome   string `json:"outcome,omitempty"`
	Principal string `json:"principal,omitempty"`
	Route     string `json:"route,omitempty"`
	Model     string `json:"model,omitempty"`
	Status    string `json:"status,omitempty"`
	Count     int64  `json:"count"`
}

// Aggregate is the result of counting entries of the log.
type Aggregate struct {
	// Query is what was asked.
	Query AggregateQuery `json:"-"`
	// Total is the number of entries counted (the sum of Groups).
	Total int64 `json:"total"`
	// Groups are sorted by descending Count, then by their values.
	Groups []Group `json:"groups"`
	// Checkpoint is the signed tree the count was taken over: only
	// entries [0, Checkpoint.Size) were counted.
	Checkpoint Checkpoint `json:"-"`
	// Scanned is the sequence range read: [Scanned[0], Scanned[1]).
	Scanned [2]int64 `json:"scanned"`
}

// Aggregate counts the log's entries in a time range, grouped by the
// query's dimensions. It counts the entries covered by the latest
// checkpoint, so the result is tied to a signed tree.
//
// Indexed entries are counted from the store's count blocks when it keeps
// them (CountIndex: SQLite's search index file, derived from the entries,
// checked by warden index check): every dimension of every entry, column
// by column, one row per CountChunk entries, so any grouping, kind filter
// and time window is counted without decoding entries. The rest (entries
// not indexed yet, a store without blocks) is read and decoded from the
// log; the log keeps the counts of every whole chunk it has decoded
// (entries never change), so repeated counts over the same period read
// only the chunks at its edges. q.Recount bypasses both.
//
// The tree counted over is the log's newest signed head (signed after
// every batch), so everything acknowledged is counted.
func (l *Log) Aggregate(ctx context.Context, q AggregateQuery) (Aggregate, error) {
	if q.Recount {
		return aggregate(ctx, l.st, q, nil, nil, l.Latest())
	}
	ci, _ := l.st.(CountIndex)
	return aggregate(ctx, l.st, q, &l.agg, ci, l.Latest())
}

// AggregateStore is Log.Aggregate on a store (for offline use), without
// the cache and without the index's persisted counts: a recount from the
// log's entries alone.
func AggregateStore(ctx context.Context, st Store, q AggregateQuery) (Aggregate, error) {
	return aggregate(ctx, st, q, nil, nil, Checkpoint{})
}

// aggregate counts over head, or over the store's latest checkpoint when
// that is newer (another replica signed it, or head is zero).
func aggregate(ctx context.Context, st Store, q AggregateQuery, cache *chunkCache, ci CountIndex, head Checkpoint) (Aggregate, error) {
	for _, d := range q.By {
		if !slices.Contains(AggregateDimensions, d) {
			return Aggregate{}, fmt.Errorf("audit: aggregate: unknown dimension %q (want one of %v)", d, AggregateDimensions)
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return Aggregate{}, errors.New("audit: aggregate: from must be before to")
	}
	out := Aggregate{Query: q, Groups: []Group{}}
	cp, err := st.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Aggregate{}, fmt.Errorf("audit: aggregate: %w", err)
	}
	if head.Size > cp.Size {
		cp = head
	}
	if cp.Note == nil {
		return out, nil
	}
	out.Checkpoint = cp
	start := int64(0)
	if !q.From.IsZero() {
		if start, err = searchTime(ctx, st, cp.Size, q.From.Add(-TimeSkew)); err != nil {
			return Aggregate{}, err
		}
	}
	stop := cp.Size
	if !q.To.IsZero() {
		// Every entry from stop on is at or after To (TimeSkew).
		if stop, err = searchTime(ctx, st, cp.Size, q.To.Add(TimeSkew)); err != nil {
			return Aggregate{}, err
		}
	}
	groups, err := countRange(ctx, st, start, max(start, stop), q, cache, ci)
	if err != nil {
		return Aggregate{}, err
	}
	seq := max(start, stop)
	for _, n := range groups {
		out.Total += n
	}
	out.Scanned = [2]int64{start, seq}
	for g, n := range groups {
		g.Count = n
		out.Groups = append(out.Groups, g)
	}
	slices.SortFunc(out.Groups, func(a, b Group) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Category, b.Category), cmp.Compare(a.Decision, b.Decision),
			cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Outcome, b.Outcome), cmp.Compare(a.Principal, b.Principal),
			cmp.Compare(a.Route, b.Route), cmp.Compare(a.Model, b.Model), cmp.Compare(a.Status, b.Status))
	})
	return out, nil
}

// aggEntry holds the fields of an entry Aggregate filters and groups by.
// Decoding only these (unknown members skipped) costs a fifth of
// ParseEntry, which also checks the canonical form: that is verification's
// job, and counting reads entries a signed checkpoint covers.
type aggEntry struct {
	Kind      string    `json:"kind"`
	Time      time.Time `json:"time"`
	Route     string    `json:"route"`
	Model     string    `json:"model"`
	Outcome   string    `json:"outcome"`
	Status    int       `json:"status"`
	Principal *struct {
		Subject string `json:"sub"`
	} `json:"principal"`
	Decision *struct {
		Action string `json:"action"`
		Rule   string `json:"rule"`
	} `json:"decision"`
}

// aggregateChunk is how many records one store read returns.
var aggregateChunk int64 = 4096

// CountBlockWindow is how many chunks' count blocks Aggregate reads with
// one CountBlocks call, so its memory stays bounded however long the
// range (a variable so tests can make windows small).
var CountBlockWindow int64 = 64

// countRange counts the entries [from, to) of st that match q, grouped by
// q.By: one goroutine walks the range in order, handing out the parts the
// index's count blocks hold (CountIndex) and reading the rest from the
// log in chunks (or taking a whole chunk's counts from cache); GOMAXPROCS
// workers count them, and their counts are merged.
func countRange(ctx context.Context, st Store, from, to int64, q AggregateQuery, cache *chunkCache, ci CountIndex) (map[Group]int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	key := chunkKey{kind: q.Kind, by: strings.Join(q.By, ",")}
	type job struct {
		recs   []Record
		cached map[Group]int64 // a whole chunk's counts, from the cache
		block  *StoredBlock    // the index's block holding [lo, hi)
		lo, hi int64
		key    chunkKey
		keep   bool // a whole chunk: cache its counts
	}
	// The index's count blocks, by chunk start, read CountBlockWindow
	// chunks at a time; what they lack
	// (the tail, index lag, a chunk's entries after one a block cannot
	// hold) is counted from the log. A window bound that nanoseconds
	// cannot represent is left to the log too.
	useBlocks := ci != nil && nsExact(q.From) && nsExact(q.To)
	jobs := make(chan job, 2)
	go func() {
		defer close(jobs)
		var blocks map[int64]*StoredBlock
		winEnd := from // blocks are loaded for the chunks before winEnd
		for seq := from; seq < to; {
			if useBlocks && seq >= winEnd {
				winEnd = min(seq-seq%CountChunk+CountBlockWindow*CountChunk, to)
				bs, err := ci.CountBlocks(ctx, seq, winEnd)
				if err != nil {
					cancel(fmt.Errorf("audit: aggregate: %w", err))
					return
				}
				blocks = make(map[int64]*StoredBlock, len(bs))
				for i := range bs {
					if bs[i].N > 0 && bs[i].Start%CountChunk == 0 && bs[i].N <= CountChunk {
						blocks[bs[i].Start] = &bs[i]
					}
				}
			}
			if b := blocks[seq-seq%CountChunk]; b != nil && seq < b.Start+b.N {
				hi := min(b.Start+b.N, to)
				select {
				case jobs <- job{block: b, lo: seq, hi: hi}:
				case <-ctx.Done():
					return
				}
				seq = hi
				continue
			}
			end := min((seq/aggregateChunk+1)*aggregateChunk, to)
			if useBlocks {
				end = min(end, winEnd)
			}
			if next := seq - seq%CountChunk + CountChunk; blocks[next] != nil {
				end = min(end, next)
			}
			j := job{}
			whole := seq%aggregateChunk == 0 && end-seq == aggregateChunk
			if whole && cache != nil {
				k := key
				k.chunk = seq / aggregateChunk
				if c, ok := cache.get(k); ok && c.within(q) {
					j.cached = c.groups
				} else {
					j.key, j.keep = k, true
				}
			}
			if j.cached == nil {
				recs, err := readRecords(ctx, st, seq, end)
				if err != nil {
					cancel(err)
					return
				}
				j.recs = recs
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
			seq = end
		}
	}()
	workers := max(1, runtime.GOMAXPROCS(0))
	parts := make([]map[Group]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		parts[w] = map[Group]int64{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if j.block != nil {
					if b, err := viewCountBlock(j.block.Start, j.block.Data); err == nil && b.Len() == j.block.N {
						// count adds nothing when it fails.
						if b.count(j.lo, j.hi, q, parts[w]) == nil {
							continue
						}
					}
					// A block that does not parse (an edited index;
					// warden index check names it): count from the log.
					recs, err := readRecords(ctx, st, j.lo, j.hi)
					if err != nil {
						cancel(err)
						continue
					}
					j = job{recs: recs}
				}
				if j.cached != nil {
					for g, n := range j.cached {
						parts[w][g] += n
					}
					continue
				}
				c, err := countChunk(j.recs, q)
				if err != nil {
					cancel(err)
					continue
				}
				for g, n := range c.groups {
					parts[w][g] += n
				}
				if j.keep && !c.cut {
					cache.put(j.key, c)
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	groups := parts[0]
	for _, p := range parts[1:] {
		for g, n := range p {
			groups[g] += n
		}
	}
	if len(groups) > MaxAggregateGroups {
		return nil, fmt.Errorf("audit: aggregate: more than %d groups; narrow the range or group by fewer dimensions", MaxAggregateGroups)
	}
	return groups, nil
}

// readRecords reads records [from, to) of st, all of them.
func readRecords(ctx context.Context, st Store, from, to int64) ([]Record, error) {
	recs, err := st.ReadRecords(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("audit: aggregate: %w", err)
	}
	if int64(len(recs)) != to-from {
		return nil, fmt.Errorf("audit: aggregate: %d records from seq %d, want %d", len(recs), from, to-from)
	}
	return recs, nil
}

// nsExact reports whether t is zero or exactly representable as int64
// nanoseconds since the Unix epoch (what count blocks compare).
func nsExact(t time.Time) bool {
	return t.IsZero() || time.Unix(0, t.UnixNano()).Equal(t)
}

// chunkCounts are the counts of one run of entries for one query shape.
type chunkCounts struct {
	groups     map[Group]int64
	minT, maxT time.Time // the entries' time range
	cut        bool      // the query's time range left some entries out
}

// within reports whether every entry counted lies in q's time range, so
// the counts answer q as they are.
func (c chunkCounts) within(q AggregateQuery) bool {
	return (q.From.IsZero() || !c.minT.Before(q.From)) && (q.To.IsZero() || c.maxT.Before(q.To))
}

// countChunk counts the entries of recs that match q.
func countChunk(recs []Record, q AggregateQuery) (chunkCounts, error) {
	c := chunkCounts{groups: map[Group]int64{}}
	for i, r := range recs {
		if len(r.Data) > MaxEntrySize {
			return c, fmt.Errorf("audit: aggregate: entry %d: %d bytes, limit %d", r.Seq, len(r.Data), MaxEntrySize)
		}
		var e aggEntry
		if err := jsonv2.Unmarshal(r.Data, &e); err != nil {
			return c, fmt.Errorf("audit: aggregate: entry %d: %w", r.Seq, err)
		}
		if i == 0 || e.Time.Before(c.minT) {
			c.minT = e.Time
		}
		if i == 0 || e.Time.After(c.maxT) {
			c.maxT = e.Time
		}
		if (!q.From.IsZero() && e.Time.Before(q.From)) || (!q.To.IsZero() && !e.Time.Before(q.To)) {
			c.cut = true
			continue
		}
		if q.Kind != "" && e.Kind != q.Kind {
			continue
		}
		k := groupOf(&e, q.By)
		if _, ok := c.groups[k]; !ok && len(c.groups) >= MaxAggregateGroups {
			return c, fmt.Errorf("audit: aggregate: more than %d groups; narrow the range or group by fewer dimensions", MaxAggregateGroups)
		}
		c.groups[k]++
	}
	return c, nil
}

// chunkKey names the counts of one aligned chunk for one query shape.
type chunkKey struct {
	chunk int64
	kind  string
	by    string
}

// maxCachedChunks bounds the chunk cache (each holds at most
// MaxAggregateGroups groups; typically a few dozen).
const maxCachedChunks = 4096

// chunkCache keeps the counts of whole, aligned chunks of entries, which
// never change once written. Its zero value is ready to use.
type chunkCache struct {
	mu sync.Mutex
	m  map[chunkKey]chunkCounts
}

func (c *chunkCache) get(k chunkKey) (chunkCounts, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *chunkCache) put(k chunkKey, v chunkCounts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[chunkKey]chunkCounts{}
	}
	if len(c.m) >= maxCachedChunks {
		for old := range c.m { // evict an arbitrary eighth
			delete(c.m, old)
			if len(c.m) < maxCachedChunks*7/8 {
				break
			}
		}
	}
	c.m[k] = v
}

// groupOf returns e's values of the dimensions by.
func groupOf(e *aggEntry, by []string) Group {
	var g Group
	for _, d := range by {
		switch d {
		case ByKind:
			g.Kind = e.Kind
		case ByCategory:
			if k, ok := LookupKind(e.Kind); ok {
				g.Category = string(k.Category)
			} else {
				g.Category = "other"
			}
		case ByDecision:
			if e.Decision != nil {
				g.Decision = e.Decision.Action
			}
		case ByRule:
			if e.Decision != nil {
				g.Rule = e.Decision.Rule
			}
		case ByOutcome:
			g.Outcome = e.Outcome
		case ByPrincipal:
			if e.Principal != nil {
				g.Principal = e.Principal.Subject
			}
		case ByRoute:
			g.Route = e.Route
		case ByModel:
			g.Model = e.Model
		case ByStatus:
			if e.Status != 0 {
				g.Status = strconv.Itoa(e.Status)
			}
		}
	}
	return g
}

// searchTime returns a sequence number s such that every entry before s
// is older than t (given TimeSkew), by binary search over [0, n).
func searchTime(ctx context.Context, st Store, n int64, t time.Time) (int64, error) {
	lo, hi := int64(0), n // invariant: entries before lo are older than t
	for lo < hi {
		mid := lo + (hi-lo)/2
		recs, err := st.ReadRecords(ctx, mid, mid+1)
		if err != nil {
			return 0, fmt.Errorf("audit: aggregate: %w", err)
		}
		e, err := ParseEntry(mid, recs[0].Data)
		if err != nil {
			return 0, fmt.Errorf("audit: aggregate: %w", err)
		}
		if e.Time.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}
