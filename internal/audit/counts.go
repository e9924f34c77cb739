package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
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
//
// A block read for counting decodes only the columns a query needs (and
// the times only when the query's window cuts the block).
type CountBlock struct {
	Start  int64
	n      int
	minNS  int64
	maxNS  int64
	dicts  [numCountCols][]string
	ids    [numCountCols][]uint32 // decoded (or appended) value numbers
	times  []int64                // decoded (or appended) UnixNano
	raw    [numCountCols][]byte   // encoded value numbers, fixed width
	width  [numCountCols]int
	rawT   []byte                          // encoded times
	lookup [numCountCols]map[string]uint32 // Append only
}

// NewCountBlock returns an empty block for the chunk starting at start.
func NewCountBlock(start int64) *CountBlock {
	return &CountBlock{Start: start}
}

// Len returns how many entries b holds.
func (b *CountBlock) Len() int64 { return int64(b.n) }

// TimeRange returns the earliest and latest entry time in b, in
// nanoseconds since the Unix epoch (zero for an empty block).
func (b *CountBlock) TimeRange() (minNS, maxNS int64) { return b.minNS, b.maxNS }

// Append adds the entry at seq to b (made by NewCountBlock or
// ParseCountBlock). It reports false, and leaves b as it was, when seq is
// not the block's next record or lies beyond its chunk, or when e cannot
// be represented (no entry, a time outside the range of int64
// nanoseconds): such an entry, and every later one of the chunk, is
// counted from the log instead.
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
	if b.n == 0 || ns < b.minNS {
		b.minNS = ns
	}
	if b.n == 0 || ns > b.maxNS {
		b.maxNS = ns
	}
	b.times = append(b.times, ns)
	b.n++
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

// idWidth is the bytes per value number of a column with k values.
func idWidth(k int) int {
	switch {
	case k <= 1<<8:
		return 1
	case k <= 1<<16:
		return 2
	}
	return 4
}

// AppendBinary appends b's encoding (b made by NewCountBlock or
// ParseCountBlock) to dst: a version byte, the entry count, the time
// range, then each column's dictionary and its value numbers (1, 2 or 4
// bytes each, little-endian, by the dictionary's size), then the times
// (their byte length, then the first and the differences, zigzag
// varints).
func (b *CountBlock) AppendBinary(dst []byte) []byte {
	// The size first, so that dst grows once (the index writer encodes a
	// block of up to CountChunk entries at every batch, decision 050).
	tsLen := 0
	prev := int64(0)
	for _, t := range b.times {
		tsLen += varintLen(t - prev)
		prev = t
	}
	size := 1 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen64 + tsLen
	for c := range countCols {
		size += binary.MaxVarintLen64 + idWidth(len(b.dicts[c]))*len(b.ids[c])
		for _, s := range b.dicts[c] {
			size += binary.MaxVarintLen64 + len(s)
		}
	}
	dst = slices.Grow(dst, size)
	dst = append(dst, countBlockVersion)
	dst = binary.AppendUvarint(dst, uint64(b.n))
	dst = binary.AppendVarint(dst, b.minNS)
	dst = binary.AppendUvarint(dst, uint64(b.maxNS-b.minNS))
	for c := range countCols {
		dst = binary.AppendUvarint(dst, uint64(len(b.dicts[c])))
		for _, s := range b.dicts[c] {
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
		w := idWidth(len(b.dicts[c]))
		for _, id := range b.ids[c] {
			switch w {
			case 1:
				dst = append(dst, byte(id))
			case 2:
				dst = binary.LittleEndian.AppendUint16(dst, uint16(id))
			default:
				dst = binary.LittleEndian.AppendUint32(dst, id)
			}
		}
	}
	dst = binary.AppendUvarint(dst, uint64(tsLen))
	prev = 0
	for _, t := range b.times {
		dst = binary.AppendVarint(dst, t-prev)
		prev = t
	}
	return dst
}

// varintLen is the length of binary.AppendVarint's encoding of x.
func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	n := 1
	for ux >= 0x80 {
		ux >>= 7
		n++
	}
	return n
}

// Reserve makes room for n more entries, so that the next n Appends
// do not grow b's columns step by step.
func (b *CountBlock) Reserve(n int) {
	n = int(min(int64(n), CountChunk-int64(b.n)))
	if n <= 0 {
		return
	}
	for c := range b.ids {
		b.ids[c] = slices.Grow(b.ids[c], n)
	}
	b.times = slices.Grow(b.times, n)
}

var errCountBlock = errors.New("audit: malformed count block")

// ParseCountBlock decodes a block of the chunk starting at start, as
// AppendBinary encoded it, ready to count or to Append to. It rejects
// anything else: another version, more entries than a chunk holds, a
// value number outside its dictionary, times that do not match the time
// range, trailing bytes.
func ParseCountBlock(start int64, data []byte) (*CountBlock, error) {
	b, err := viewCountBlock(start, data)
	if err != nil {
		return nil, err
	}
	for c := range countCols {
		if _, err := b.column(c); err != nil {
			return nil, err
		}
	}
	if _, err := b.timeColumn(); err != nil {
		return nil, err
	}
	return b, nil
}

// viewCountBlock checks the structure of an encoded block and keeps its
// columns and times encoded (over data), to be decoded as a count needs
// them (column, timeColumn).
func viewCountBlock(start int64, data []byte) (*CountBlock, error) {
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
	b.n = int(n)
	minNS, m := binary.Varint(p)
	if m <= 0 {
		return nil, fmt.Errorf("%w: time range", errCountBlock)
	}
	p = p[m:]
	span, ok := uv()
	if !ok || span > math.MaxInt64 || minNS > math.MaxInt64-int64(span) {
		return nil, fmt.Errorf("%w: time range", errCountBlock)
	}
	b.minNS, b.maxNS = minNS, minNS+int64(span)
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
		b.width[c] = idWidth(int(k))
		l := b.n * b.width[c]
		if l > len(p) {
			return nil, fmt.Errorf("%w: column %s", errCountBlock, countCols[c])
		}
		b.raw[c], p = p[:l], p[l:]
	}
	l, ok := uv()
	if !ok || l != uint64(len(p)) {
		return nil, fmt.Errorf("%w: times", errCountBlock)
	}
	b.rawT = p
	return b, nil
}

// column returns the value numbers of column c, decoding (and checking)
// them on first use.
func (b *CountBlock) column(c int) ([]uint32, error) {
	if b.ids[c] != nil || b.n == 0 {
		return b.ids[c], nil
	}
	ids := make([]uint32, b.n)
	raw, k := b.raw[c], uint32(len(b.dicts[c]))
	switch b.width[c] {
	case 1:
		for i := range ids {
			ids[i] = uint32(raw[i])
		}
	case 2:
		for i := range ids {
			ids[i] = uint32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	default:
		for i := range ids {
			ids[i] = binary.LittleEndian.Uint32(raw[4*i:])
		}
	}
	for _, id := range ids {
		if id >= k {
			return nil, fmt.Errorf("%w: column %s", errCountBlock, countCols[c])
		}
	}
	b.ids[c] = ids
	return ids, nil
}

// timeColumn returns the entries' times, decoding (and checking them
// against the time range) on first use.
func (b *CountBlock) timeColumn() ([]int64, error) {
	if b.times != nil || b.n == 0 {
		return b.times, nil
	}
	ts := make([]int64, b.n)
	p := b.rawT
	prev := int64(0)
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range ts {
		d, m := binary.Varint(p)
		if m <= 0 {
			return nil, fmt.Errorf("%w: times", errCountBlock)
		}
		p = p[m:]
		prev += d
		ts[i] = prev
		lo, hi = min(lo, prev), max(hi, prev)
	}
	if len(p) != 0 || lo != b.minNS || hi != b.maxNS {
		return nil, fmt.Errorf("%w: times", errCountBlock)
	}
	b.times = ts
	return ts, nil
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
// groups at the end: a few nanoseconds per entry. Only the columns q
// needs are decoded; an error means the block is malformed (nothing was
// added to out).
func (b *CountBlock) count(lo, hi int64, q AggregateQuery, out map[Group]int64) error {
	i0, i1 := int(lo-b.Start), int(hi-b.Start)
	var kinds []uint32
	kindID := uint32(0)
	if q.Kind != "" {
		i := slices.Index(b.dicts[0], q.Kind)
		if i < 0 {
			return nil
		}
		var err error
		if kinds, err = b.column(0); err != nil {
			return err
		}
		kindID = uint32(i)
	}
	var times []int64
	var fromNS, toNS int64
	cutFrom := !q.From.IsZero() && b.minNS < q.From.UnixNano()
	cutTo := !q.To.IsZero() && b.maxNS >= q.To.UnixNano()
	if cutFrom || cutTo {
		var err error
		if times, err = b.timeColumn(); err != nil {
			return err
		}
		fromNS, toNS = math.MinInt64, math.MaxInt64
		if cutFrom {
			fromNS = q.From.UnixNano()
		}
		if cutTo {
			toNS = q.To.UnixNano()
		}
	}
	// The distinct columns grouped by, and the radix of each.
	var cols []int
	var vals [][]uint32
	for _, d := range q.By {
		c := countCol(d)
		if c < 0 || slices.Contains(cols, c) {
			continue
		}
		ids, err := b.column(c)
		if err != nil {
			return err
		}
		cols, vals = append(cols, c), append(vals, ids)
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
	// keep reports whether entry i passes the kind filter and the window.
	keep := func(i int) bool {
		return (kinds == nil || kinds[i] == kindID) && (times == nil || (times[i] >= fromNS && times[i] < toNS))
	}
	if !fits {
		m := map[[numCountCols]uint32]int64{}
		for i := i0; i < i1; i++ {
			if keep(i) {
				var k [numCountCols]uint32
				for j, c := range cols {
					k[c] = vals[j][i]
				}
				m[k]++
			}
		}
		for k, n := range m {
			out[b.group(q.By, &k)] += n
		}
		return nil
	}
	var dense []int64
	var sparse map[uint64]int64
	if size <= uint64(max(4096, i1-i0)) {
		dense = make([]int64, size)
	} else {
		sparse = map[uint64]int64{}
	}
	filtered := kinds != nil || times != nil
	for i := i0; i < i1; i++ {
		if filtered && !keep(i) {
			continue
		}
		var key uint64
		for j, v := range vals {
			key += uint64(v[i]) * radix[j]
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
	return nil
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
