package audit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	// entries [0, Checkpoint.Size) were read, from the log itself (the
	// canonical bytes, never the search index).
	Checkpoint Checkpoint `json:"-"`
	// Scanned is the sequence range read: [Scanned[0], Scanned[1]).
	Scanned [2]int64 `json:"scanned"`
}

// Aggregate counts the log's entries in a time range, grouped by the
// query's dimensions. It reads the canonical entries covered by the
// latest checkpoint, so the result is tied to a signed tree; it never
// uses the search index.
func (l *Log) Aggregate(ctx context.Context, q AggregateQuery) (Aggregate, error) {
	return AggregateStore(ctx, l.st, q)
}

// AggregateStore is Log.Aggregate on a store (for offline use).
func AggregateStore(ctx context.Context, st Store, q AggregateQuery) (Aggregate, error) {
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
		return out, nil
	case err != nil:
		return Aggregate{}, fmt.Errorf("audit: aggregate: %w", err)
	}
	out.Checkpoint = cp
	start := int64(0)
	if !q.From.IsZero() {
		if start, err = searchTime(ctx, st, cp.Size, q.From.Add(-TimeSkew)); err != nil {
			return Aggregate{}, err
		}
	}
	var stop time.Time
	if !q.To.IsZero() {
		stop = q.To.Add(TimeSkew)
	}
	groups := map[Group]int64{}
	seq := start
scan:
	for seq < cp.Size {
		to := min(seq+verifyChunk, cp.Size)
		recs, err := st.ReadRecords(ctx, seq, to)
		if err != nil {
			return Aggregate{}, fmt.Errorf("audit: aggregate: %w", err)
		}
		for _, r := range recs {
			e, err := ParseEntry(r.Seq, r.Data)
			if err != nil {
				return Aggregate{}, fmt.Errorf("audit: aggregate: %w", err)
			}
			seq = r.Seq + 1
			if !stop.IsZero() && !e.Time.Before(stop) {
				// Every later entry is at or after To (TimeSkew).
				break scan
			}
			if (!q.From.IsZero() && e.Time.Before(q.From)) || (!q.To.IsZero() && !e.Time.Before(q.To)) {
				continue
			}
			if q.Kind != "" && e.Kind != q.Kind {
				continue
			}
			k := groupOf(e, q.By)
			if _, ok := groups[k]; !ok && len(groups) >= MaxAggregateGroups {
				return Aggregate{}, fmt.Errorf("audit: aggregate: more than %d groups; narrow the range or group by fewer dimensions", MaxAggregateGroups)
			}
			groups[k]++
			out.Total++
		}
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

// groupOf returns e's values of the dimensions by.
func groupOf(e *Entry, by []string) Group {
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
