package audit

import (
	"slices"
	"time"
)

// BlockFilter reports whether q has a filter count blocks answer: kind,
// principal, route, model, action or time. A store that keeps count
// blocks needs no other index for them (SelectBlock).
func (q Query) BlockFilter() bool {
	return q.Kind != "" || q.Principal != "" || q.Route != "" || q.Model != "" || q.Action != "" ||
		!q.From.IsZero() || !q.To.IsZero()
}

// SelectBlock calls yield with the seqs in [lo, hi) of the encoded count
// block data (of the chunk starting at start, StoredBlock) whose entries
// meet q's block filters (BlockFilter), in ascending order or, with desc,
// descending, until yield returns false; it returns what yield last
// returned (true when it was never called). A block whose dictionaries
// lack a wanted value is passed over without decoding its columns, and
// only the columns q filters on are decoded (the times only when q's
// window cuts the block).
//
// The selection is exact for the entries the block holds; entries of the
// chunk beyond it (start+N and on) are not the block's to answer. An
// error means data is malformed (nothing was yielded): the caller must
// treat the block's entries as unknown.
func SelectBlock(start int64, data []byte, q Query, lo, hi int64, desc bool, yield func(seq int64) bool) (bool, error) {
	b, err := viewCountBlock(start, data)
	if err != nil {
		return true, err
	}
	lo, hi = max(lo, start), min(hi, start+b.Len())
	if lo >= hi {
		return true, nil
	}
	// The wanted values' numbers in the block's dictionaries: a value the
	// block lacks means no entry matches, before any column is decoded.
	type want struct {
		col int
		id  uint32
		ids []uint32
	}
	var wants []want
	for j, v := range q.blockValues() {
		if v == "" {
			continue
		}
		c := countCol(searchCols[j])
		id := slices.Index(b.dicts[c], v)
		if id < 0 {
			return true, nil
		}
		wants = append(wants, want{col: c, id: uint32(id)})
	}
	if !q.From.IsZero() && b.maxNS < q.From.UnixNano() && nsExact(q.From) ||
		!q.To.IsZero() && b.minNS >= q.To.UnixNano() && nsExact(q.To) {
		return true, nil // the block lies outside the window
	}
	for k := range wants {
		if wants[k].ids, err = b.column(wants[k].col); err != nil {
			return true, err
		}
	}
	// A block's times are whole nanoseconds (Append), so a bound that is
	// one too compares as an integer; any other is compared by time.Time,
	// as Query.Matches does.
	var times []int64
	cutFrom := !q.From.IsZero() && (b.minNS < q.From.UnixNano() || !nsExact(q.From))
	cutTo := !q.To.IsZero() && (b.maxNS >= q.To.UnixNano() || !nsExact(q.To))
	if cutFrom || cutTo {
		if times, err = b.timeColumn(); err != nil {
			return true, err
		}
	}
	inWindow := func(t int64) bool {
		if cutFrom && (nsExact(q.From) && t < q.From.UnixNano() || !nsExact(q.From) && time.Unix(0, t).Before(q.From)) {
			return false
		}
		return !cutTo || nsExact(q.To) && t < q.To.UnixNano() || !nsExact(q.To) && time.Unix(0, t).Before(q.To)
	}
	keep := func(i int) bool {
		for _, w := range wants {
			if w.ids[i] != w.id {
				return false
			}
		}
		return times == nil || inWindow(times[i])
	}
	i0, i1 := int(lo-start), int(hi-start)
	if desc {
		for i := i1 - 1; i >= i0; i-- {
			if keep(i) && !yield(start+int64(i)) {
				return false, nil
			}
		}
		return true, nil
	}
	for i := i0; i < i1; i++ {
		if keep(i) && !yield(start+int64(i)) {
			return false, nil
		}
	}
	return true, nil
}

// SameCountPrefix reports whether blocks a and b (of the same chunk, made
// by ParseCountBlock) hold the same first n entries: the same value of
// every column and the same time. Both must hold at least n entries.
// warden index check compares a chunk the log has not filled yet with
// it: the live index may already hold more of the chunk than a reference
// built a moment earlier, so the encodings differ while the entries
// agree.
func SameCountPrefix(a, b *CountBlock, n int64) bool {
	if a.Start != b.Start || a.Len() < n || b.Len() < n {
		return false
	}
	for c := range countCols {
		for i := range n {
			if a.dicts[c][a.ids[c][i]] != b.dicts[c][b.ids[c][i]] {
				return false
			}
		}
	}
	for i := range n {
		if a.times[i] != b.times[i] {
			return false
		}
	}
	return true
}

// searchCols are the dimensions of a CountBlock a search filters on, in
// AppendValues' order; blockValues gives a Query's values in that order.
var searchCols = [...]string{ByKind, ByPrincipal, ByRoute, ByModel, ByDecision}

func (q Query) blockValues() [len(searchCols)]string {
	return [...]string{q.Kind, q.Principal, q.Route, q.Model, q.Action}
}

// AppendValues appends to dst the values of b's searchable dictionaries
// (kind, principal, route, model, decision action), each followed by a
// zero byte, after a zero byte. A store keeps it beside the block, ahead
// of it in the row, so that a search passes over a block lacking a
// wanted value without reading the block: ValueKeys' keys all occur in it
// if the block has an entry with those values (not only then: it may
// give false hope, never false despair).
func (b *CountBlock) AppendValues(dst []byte) []byte {
	dst = append(dst, 0)
	for _, d := range searchCols {
		for _, v := range b.dicts[countCol(d)] {
			dst = append(append(dst, v...), 0)
		}
	}
	return dst
}

// ValueKeys returns, for each of q's block filters on a value (kind,
// principal, route, model, action), the bytes AppendValues holds when a
// block has the value.
func (q Query) ValueKeys() [][]byte {
	var out [][]byte
	for _, v := range q.blockValues() {
		if v != "" {
			out = append(out, append(append([]byte{0}, v...), 0))
		}
	}
	return out
}
