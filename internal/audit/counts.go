package audit

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// CountChunk is how many consecutive entries one persisted count chunk
// covers (entries [k*CountChunk, (k+1)*CountChunk)). A store's index
// keeps, per chunk, the count of its entries by kind and the value of each
// aggregate dimension, so a cold Aggregate reads a few rows per chunk
// instead of decoding every entry. It must not change while an index file
// exists (tests set it before creating a store); `warden index rebuild`
// recomputes the rows.
var CountChunk int64 = 4096

// countedDims are the dimensions an index keeps counts for, each with the
// entry's kind. ByCategory is derived from the kind at query time.
var countedDims = []string{ByKind, ByDecision, ByRule, ByOutcome, ByPrincipal, ByRoute, ByModel, ByStatus}

// CountRow is one persisted count: in chunk [Start, End), Count entries
// of kind Kind have Value as their value of dimension Dim.
type CountRow struct {
	Start, End int64
	Kind       string
	Dim        string
	Value      string
	Count      int64
}

// CountSpan is what a store keeps about the entries of one chunk it has
// counted so far: how many and their time range (an Aggregate uses the
// chunk's rows only when the whole span lies inside its time range).
type CountSpan struct {
	Start, End       int64
	Count            int64
	MinTime, MaxTime time.Time
}

// CountIndex is implemented by stores whose derived index keeps per-chunk
// counts (SQLite). Log.Aggregate uses it; AggregateStore (the recount
// from the log) never does.
//
// Contract: ChunkCounts returns, for every chunk the index holds whole
// (all CountChunk entries indexed) within the records [from, to), its span
// and its count rows for dimension dim (one of the countedDims), read in
// one consistent snapshot. Chunks it does not return are counted from the
// log by the caller.
type CountIndex interface {
	ChunkCounts(ctx context.Context, dim string, from, to int64) ([]ChunkCount, error)
}

// ChunkCount is one whole chunk's persisted counts for one dimension.
type ChunkCount struct {
	Span CountSpan
	// Groups have Kind and the dimension's field set.
	Groups map[Group]int64
}

// AddCounts adds the counts of recs (Entry set) to spans and rows, keyed
// by chunk start (and kind, dimension, value). Stores call it in
// WriteIndex and add the result to what they hold (upsert: sum counts,
// widen time ranges), so a chunk written in several batches ends up with
// the same rows as one written at once.
func AddCounts(recs []Record, spans map[int64]*CountSpan, rows map[CountRow]int64) {
	for _, r := range recs {
		if r.Entry == nil {
			continue
		}
		start := r.Seq - r.Seq%CountChunk
		sp := spans[start]
		t := r.Entry.Time
		if sp == nil {
			sp = &CountSpan{Start: start, End: start + CountChunk, MinTime: t, MaxTime: t}
			spans[start] = sp
		}
		sp.Count++
		if t.Before(sp.MinTime) {
			sp.MinTime = t
		}
		if t.After(sp.MaxTime) {
			sp.MaxTime = t
		}
		a := aggOf(r.Entry)
		g := groupOf(&a, countedDims)
		for _, d := range countedDims {
			rows[CountRow{Start: start, End: start + CountChunk, Kind: a.Kind, Dim: d, Value: g.Value(d)}]++
		}
	}
}

// SortedCounts returns the rows of AddCounts in a stable order, with
// their counts set (stores insert them in this order).
func SortedCounts(rows map[CountRow]int64) []CountRow {
	out := make([]CountRow, 0, len(rows))
	for r, n := range rows {
		r.Count = n
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b CountRow) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Dim, b.Dim), cmp.Compare(a.Value, b.Value))
	})
	return out
}

// countDim returns the one persisted dimension that answers q (the kind
// alone, or the kind and one other dimension), or false when q groups by
// two dimensions besides kind and category.
func countDim(q AggregateQuery) (string, bool) {
	dim := ByKind
	for _, d := range q.By {
		if d == ByKind || d == ByCategory {
			continue
		}
		if dim != ByKind {
			return "", false
		}
		dim = d
	}
	return dim, true
}

// project turns a chunk's persisted groups (kind and dim's value) into
// q's groups, added to out.
func project(groups map[Group]int64, q AggregateQuery, dim string, out map[Group]int64) {
	for pg, n := range groups {
		if q.Kind != "" && pg.Kind != q.Kind {
			continue
		}
		a := aggEntry{Kind: pg.Kind}
		g := groupOf(&a, q.By)
		if dim != ByKind {
			g.Set(dim, pg.Value(dim))
		}
		out[g] += n
	}
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
