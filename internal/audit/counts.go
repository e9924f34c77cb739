package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// CountChunk is how many consecutive entries one persisted count block
// covers at most (entries [k*CountChunk, (k+1)*CountChunk)). A store's
// index keeps, per chunk, a CountBlock: every aggregate dimension of every
// entry, column by column, so a cold Aggregate of any grouping, kind
// filter and time window reads one row per chunk instead of decoding
// every entry. It must not change while an index file exists (tests set
// it before creating a store); `warden index rebuild` recomputes the
// blocks.
var CountChunk int64 = 4096

// countCols are the columns of a CountBlock, in their encoded order: the
// dimensions an Aggregate groups and filters by, except ByCategory, which
// is derived from the kind.
var countCols = [...]string{ByKind, ByDecision, ByRule, ByOutcome, ByPrincipal, ByRoute, ByModel, ByStatus}

const numCountCols = len(countCols)

// countBlockVersion is the first byte of an encoded CountBlock.
const countBlockVersion = 1

// CountIndex is implemented by stores whose derived index keeps count
// blocks (SQLite). Log.Aggregate uses it; AggregateStore (the recount
// from the log) never does.
//
// Contract: CountBlocks returns, in order of Start, the stored count
// blocks of the chunks that hold records within [from, to), read in one
// consistent snapshot of the index; each holds only indexed entries.
// Chunks (or parts of chunks) it does not return are counted from the log
// by the caller, and so is a block whose Data does not parse.
type CountIndex interface {
	CountBlocks(ctx context.Context, from, to int64) ([]StoredBlock, error)
}

// StoredBlock is an encoded CountBlock as a store keeps it.
type StoredBlock struct {
	// Start is the chunk's first sequence number (a multiple of
	// CountChunk); N how many entries the block holds: [Start, Start+N).
	Start, N int64
	// Data is the encoding (CountBlock.AppendBinary).
	Data []byte
}

// CountBlock holds the aggregate fields of the consecutive entries
// [Start, Start+Len()) of one chunk, column by column: each column a
// dictionary of its distinct values (in order of first appearance) and
// one value number per entry, plus the entries' times. Built by Append in
// sequence order, its encoding depends only on the entries it holds, not
// on how they were batched, so an index's blocks can be compared byte for
// byte with a reference built from the log (warden index check).
type CountBlock struct {
	Start  int64
	times  []int64 // UnixNano
	ids    [numCountCols][]uint32
	dicts  [numCountCols][]string
	lookup [numCountCols]map[string]uint32 // Append only
	minNS  int64
	maxNS  int64
}

// NewCountBlock returns an empty block for the chunk starting at start.
func NewCountBlock(start int64) *CountBlock {
	return &CountBlock{Start: start}
}

// Len returns how many entries b holds.
func (b *CountBlock) Len() int64 { return int64(len(b.times)) }

// TimeRange returns the earliest and latest entry time in b, in
// nanoseconds since the Unix epoch (zero for an empty block).
func (b *CountBlock) TimeRange() (minNS, maxNS int64) { return b.minNS, b.maxNS }

// Append adds the entry at seq to b. It reports false, and leaves b as it
// was, when seq is not the block's next record or lies beyond its chunk,
// or when e cannot be represented (no entry, a time outside the range of
// int64 nanoseconds): such an entry, and every later one of the chunk,
// is counted from the log instead.
func (b *CountBlock) Append(seq int64, e *Entry) bool {
	if e == nil || seq != b.Start+b.Len() || seq >= b.Start+CountChunk {
		return false
	}
	ns := e.Time.UnixNano()
	if !time.Unix(0, ns).Equal(e.Time) {
		return false
	}
	a := aggOf(e)
	g := groupOf(&a, countCols[:])
	for c, d := range countCols {
		b.ids[c] = append(b.ids[c], b.intern(c, g.Value(d)))
	}
	if len(b.times) == 0 || ns < b.minNS {
		b.minNS = ns
	}
	if len(b.times) == 0 || ns > b.maxNS {
		b.maxNS = ns
	}
	b.times = append(b.times, ns)
	return true
}

func (b *CountBlock) intern(c int, v string) uint32 {
	if b.lookup[c] == nil {
		b.lookup[c] = make(map[string]uint32, len(b.dicts[c]))
		for i, s := range b.dicts[c] {
			b.lookup[c][s] = uint32(i)
		}
	}
	id, ok := b.lookup[c][v]
	if !ok {
		id = uint32(len(b.dicts[c]))
		b.dicts[c] = append(b.dicts[c], v)
		b.lookup[c][v] = id
	}
	return id
}

// AppendBinary appends b's encoding to dst: a version byte, the entry
// count, each column's dictionary, the times (the first, then
// differences, zigzag varints) and each column's value numbers (uvarints).
func (b *CountBlock) AppendBinary(dst []byte) []byte {
	dst = append(dst, countBlockVersion)
	dst = binary.AppendUvarint(dst, uint64(len(b.times)))
	for c := range countCols {
		dst = binary.AppendUvarint(dst, uint64(len(b.dicts[c])))
		for _, s := range b.dicts[c] {
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
	}
	prev := int64(0)
	for _, t := range b.times {
		dst = binary.AppendVarint(dst, t-prev)
		prev = t
	}
	for c := range countCols {
		for _, id := range b.ids[c] {
			dst = binary.AppendUvarint(dst, uint64(id))
		}
	}
	return dst
}

var errCountBlock = errors.New("audit: malformed count block")

// ParseCountBlock decodes a block of the chunk starting at start, as
// AppendBinary encoded it. It rejects anything else: another version,
// more entries than a chunk holds, a value number outside its
// dictionary, trailing bytes.
func ParseCountBlock(start int64, data []byte) (*CountBlock, error) {
	b := &CountBlock{Start: start}
	p := data
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	if len(p) == 0 || p[0] != countBlockVersion {
		return nil, fmt.Errorf("%w: version", errCountBlock)
	}
	p = p[1:]
	n, ok := uv()
	if !ok || n > uint64(CountChunk) || start < 0 || start%CountChunk != 0 {
		return nil, fmt.Errorf("%w: size", errCountBlock)
	}
	for c := range countCols {
		k, ok := uv()
		if !ok || k > n {
			return nil, fmt.Errorf("%w: dictionary", errCountBlock)
		}
		b.dicts[c] = make([]string, k)
		for i := range b.dicts[c] {
			l, ok := uv()
			if !ok || l > uint64(len(p)) {
				return nil, fmt.Errorf("%w: dictionary", errCountBlock)
			}
			b.dicts[c][i] = string(p[:l])
			p = p[l:]
		}
	}
	b.times = make([]int64, n)
	prev := int64(0)
	for i := range b.times {
		d, m := binary.Varint(p)
		if m <= 0 {
			return nil, fmt.Errorf("%w: times", errCountBlock)
		}
		p = p[m:]
		prev += d
		b.times[i] = prev
		if i == 0 || prev < b.minNS {
			b.minNS = prev
		}
		if i == 0 || prev > b.maxNS {
			b.maxNS = prev
		}
	}
	for c := range countCols {
		b.ids[c] = make([]uint32, n)
		k := uint64(len(b.dicts[c]))
		for i := range b.ids[c] {
			id, ok := uv()
			if !ok || id >= k {
				return nil, fmt.Errorf("%w: column %s", errCountBlock, countCols[c])
			}
			b.ids[c][i] = uint32(id)
		}
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCountBlock, len(p))
	}
	return b, nil
}

// Values returns the dictionary of dimension d (one of the dimensions a
// block keeps; nil for any other), in order of first appearance. Tests
// use it with SetValue to edit a block.
func (b *CountBlock) Values(d string) []string {
	for c, cd := range countCols {
		if cd == d {
			return b.dicts[c]
		}
	}
	return nil
}

// SetValue replaces value i of dimension d's dictionary with v (for
// tests that alter an index).
func (b *CountBlock) SetValue(d string, i int, v string) {
	for c, cd := range countCols {
		if cd == d {
			b.dicts[c][i] = v
			b.lookup[c] = nil
		}
	}
}

// countCol returns the column of dimension d (ByCategory: the kind's).
func countCol(d string) int {
	if d == ByCategory {
		d = ByKind
	}
	for c, cd := range countCols {
		if cd == d {
			return c
		}
	}
	return -1
}

// count adds to out the entries [lo, hi) of b that match q, grouped by
// q.By. The grouped columns' value numbers are combined into one number
// (mixed radix over the dictionaries' sizes), counted in a slice when the
// combinations are few and in a map otherwise, and turned back into
// groups at the end: a few nanoseconds per entry.
func (b *CountBlock) count(lo, hi int64, q AggregateQuery, out map[Group]int64) {
	i0, i1 := int(lo-b.Start), int(hi-b.Start)
	kinds := b.ids[0]
	kindID := -1
	if q.Kind != "" {
		for i, k := range b.dicts[0] {
			if k == q.Kind {
				kindID = i
			}
		}
		if kindID < 0 {
			return
		}
	}
	var fromNS, toNS int64
	cutFrom := !q.From.IsZero() && b.minNS < q.From.UnixNano()
	cutTo := !q.To.IsZero() && b.maxNS >= q.To.UnixNano()
	if cutFrom {
		fromNS = q.From.UnixNano()
	}
	if cutTo {
		toNS = q.To.UnixNano()
	}
	// The distinct columns grouped by, and the radix of each.
	var cols []int
	for _, d := range q.By {
		c := countCol(d)
		if c >= 0 && !containsInt(cols, c) {
			cols = append(cols, c)
		}
	}
	radix := make([]uint64, len(cols))
	size, fits := uint64(1), true
	for i, c := range cols {
		radix[i] = size
		k := uint64(max(len(b.dicts[c]), 1))
		if size > (1<<62)/k {
			fits = false
			break
		}
		size *= k
	}
	if !fits {
		b.countSlow(i0, i1, q, cols, kindID, cutFrom, cutTo, fromNS, toNS, out)
		return
	}
	var dense []int64
	var sparse map[uint64]int64
	if size <= uint64(max(4096, i1-i0)) {
		dense = make([]int64, size)
	} else {
		sparse = map[uint64]int64{}
	}
	for i := i0; i < i1; i++ {
		if kindID >= 0 && int(kinds[i]) != kindID {
			continue
		}
		if (cutFrom && b.times[i] < fromNS) || (cutTo && b.times[i] >= toNS) {
			continue
		}
		var key uint64
		for j, c := range cols {
			key += uint64(b.ids[c][i]) * radix[j]
		}
		if dense != nil {
			dense[key]++
		} else {
			sparse[key]++
		}
	}
	add := func(key uint64, n int64) {
		var ids [numCountCols]uint32
		for j := len(cols) - 1; j >= 0; j-- {
			ids[cols[j]] = uint32(key / radix[j])
			key %= radix[j]
		}
		out[b.group(q.By, &ids)] += n
	}
	for key, n := range dense {
		if n != 0 {
			add(uint64(key), n)
		}
	}
	for key, n := range sparse {
		add(key, n)
	}
}

// countSlow is count for groupings whose combinations overflow a number.
func (b *CountBlock) countSlow(i0, i1 int, q AggregateQuery, cols []int, kindID int, cutFrom, cutTo bool, fromNS, toNS int64, out map[Group]int64) {
	m := map[[numCountCols]uint32]int64{}
	for i := i0; i < i1; i++ {
		if kindID >= 0 && int(b.ids[0][i]) != kindID {
			continue
		}
		if (cutFrom && b.times[i] < fromNS) || (cutTo && b.times[i] >= toNS) {
			continue
		}
		var k [numCountCols]uint32
		for _, c := range cols {
			k[c] = b.ids[c][i]
		}
		m[k]++
	}
	for k, n := range m {
		out[b.group(q.By, &k)] += n
	}
}

// group returns the Group of the value numbers ids for dimensions by.
func (b *CountBlock) group(by []string, ids *[numCountCols]uint32) Group {
	var g Group
	for _, d := range by {
		c := countCol(d)
		if c < 0 {
			continue
		}
		v := ""
		if len(b.dicts[c]) > 0 {
			v = b.dicts[c][ids[c]]
		}
		if d == ByCategory {
			if k, ok := LookupKind(v); ok {
				v = string(k.Category)
			} else {
				v = "other"
			}
		}
		g.Set(d, v)
	}
	return g
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// aggOf returns the fields of e an aggregate reads.
func aggOf(e *Entry) aggEntry {
	a := aggEntry{Kind: e.Kind, Time: e.Time, Route: e.Route, Model: e.Model, Outcome: e.Outcome, Status: e.Status}
	if e.Principal != nil {
		a.Principal = &struct {
			Subject string `json:"sub"`
		}{e.Principal.Subject}
	}
	if e.Decision != nil {
		a.Decision = &struct {
			Action string `json:"action"`
			Rule   string `json:"rule"`
		}{e.Decision.Action, e.Decision.Rule}
	}
	return a
}

// Value returns g's value of dimension d (one of AggregateDimensions).
func (g *Group) Value(d string) string {
	switch d {
	case ByKind:
		return g.Kind
	case ByCategory:
		return g.Category
	case ByDecision:
		return g.Decision
	case ByRule:
		return g.Rule
	case ByOutcome:
		return g.Outcome
	case ByPrincipal:
		return g.Principal
	case ByRoute:
		return g.Route
	case ByModel:
		return g.Model
	case ByStatus:
		return g.Status
	}
	return ""
}

// Set sets g's value of dimension d (one of AggregateDimensions).
func (g *Group) Set(d, v string) {
	switch d {
	case ByKind:
		g.Kind = v
	case ByCategory:
		g.Category = v
	case ByDecision:
		g.Decision = v
	case ByRule:
		g.Rule = v
	case ByOutcome:
		g.Outcome = v
	case ByPrincipal:
		g.Principal = v
	case ByRoute:
		g.Route = v
	case ByModel:
		g.Model = v
	case ByStatus:
		g.Status = v
	}
}
