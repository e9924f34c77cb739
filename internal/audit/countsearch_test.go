package audit

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// TestSelectBlock: the seqs SelectBlock yields from a block are exactly
// those of its entries Query.Matches accepts, in either order, within
// any sub-range, stopping when yield says so; a block's value list holds
// every value key of a query some entry matches; malformed data is an
// error with nothing yielded.
func TestSelectBlock(t *testing.T) {
	defer func(c int64) { CountChunk = c }(CountChunk)
	CountChunk = 64
	const start = 128
	es := blockEntries(64, -1)
	b := NewCountBlock(start)
	for i, e := range es {
		e.Seq = start + int64(i)
		if !b.Append(e.Seq, e) {
			t.Fatalf("Append %d refused", i)
		}
	}
	data := b.AppendBinary(nil)
	vals := b.AppendValues(nil)
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	queries := []Query{
		{}, {Kind: KindRequestDenied}, {Principal: "u3"}, {Principal: "nobody"}, {Route: "embed", Action: "deny"},
		{Model: "m", Principal: "u1", Kind: KindRequestAdmitted}, {Action: "allow"},
		{From: t0.Add(10 * time.Second), To: t0.Add(30 * time.Second)}, {From: t0.Add(50 * time.Second)}, {To: t0.Add(5 * time.Second)},
		{From: t0.Add(10*time.Second + time.Nanosecond/2)}, // not a whole nanosecond
		{From: t0.Add(time.Hour)}, {To: t0.Add(-time.Hour)},
		{Principal: "u2", Route: "chat", From: t0.Add(20 * time.Second)},
	}
	for _, q := range queries {
		for _, r := range [][2]int64{{0, 1000}, {start, start + 64}, {start + 10, start + 20}, {start + 63, start + 64}, {start + 70, start + 80}} {
			for _, desc := range []bool{false, true} {
				var want []int64
				for _, e := range es {
					if e.Seq >= r[0] && e.Seq < r[1] && q.Matches(e) {
						want = append(want, e.Seq)
					}
				}
				if desc {
					slices.Reverse(want)
				}
				var got []int64
				more, err := SelectBlock(start, data, q, r[0], r[1], desc, func(seq int64) bool { got = append(got, seq); return true })
				if err != nil || !more || !slices.Equal(got, want) {
					t.Errorf("SelectBlock(%+v, [%d, %d), desc %v) = %v, %v, %v; want %v", q, r[0], r[1], desc, got, more, err, want)
				}
				if len(want) > 2 {
					got = nil
					more, err := SelectBlock(start, data, q, r[0], r[1], desc, func(seq int64) bool { got = append(got, seq); return len(got) < 2 })
					if err != nil || more || !slices.Equal(got, want[:2]) {
						t.Errorf("SelectBlock(%+v) stopping after 2 = %v, %v, %v", q, got, more, err)
					}
				}
				if len(want) > 0 {
					for _, k := range q.ValueKeys() {
						if !bytes.Contains(vals, k) {
							t.Errorf("the value list lacks %q, which %d entries have", k, len(want))
						}
					}
				}
			}
		}
	}
	for _, bad := range [][]byte{nil, {1}, data[:len(data)-1], append(slices.Clone(data), 0)} {
		called := false
		if _, err := SelectBlock(start, bad, Query{Principal: "u1"}, 0, 1000, false, func(int64) bool { called = true; return true }); err == nil || called {
			t.Errorf("SelectBlock of %d malformed bytes: err %v, yielded %v", len(bad), err, called)
		}
	}
}
