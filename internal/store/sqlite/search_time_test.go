package sqlite_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// TestSearchTimeRange: the index has no time index; a time range is
// narrowed to a seq range through the count blocks' time ranges. Over
// many chunks, with entry times out of sequence order (as TimeSkew
// allows), every window finds exactly the entries a scan of the log
// finds, ascending and descending, with and without other filters.
func TestSearchTimeRange(t *testing.T) {
	defer func(c int64) { audit.CountChunk = c }(audit.CountChunk)
	audit.CountChunk = 16
	ctx := context.Background()
	l, st := openLog(t, t.TempDir())
	defer st.Close()
	defer l.Close(ctx)
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	kinds := []string{audit.KindRequestAdmitted, audit.KindRequestCompleted}
	for i := range 200 {
		e := &audit.Entry{Kind: kinds[i%2], Time: t0.Add(time.Duration(i)*time.Minute - time.Duration(i%5)*3*time.Minute),
			RequestID: fmt.Sprintf("r%d", i), Principal: &identity.Principal{Issuer: "i", Subject: fmt.Sprintf("u%d", i%3)}}
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	size := l.Latest().Size
	recs, err := st.ReadRecords(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var entries []*audit.Entry
	for _, r := range recs {
		e, err := audit.ParseEntry(r.Seq, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, w := range [][2]time.Time{{at(-100), at(-50)}, {at(-5), at(3)}, {at(40), at(41)}, {at(37), at(95)}, {at(150), time.Time{}},
		{time.Time{}, at(20)}, {at(190), at(400)}, {at(0), time.Now().Add(time.Hour)}, {time.Now().Add(-time.Hour), time.Time{}}} {
		for _, q := range []audit.Query{{From: w[0], To: w[1], Limit: 1000}, {From: w[0], To: w[1], Limit: 7, Desc: true},
			{From: w[0], To: w[1], Kind: audit.KindRequestCompleted, Principal: "u1", Limit: 1000}} {
			var want []int64
			for _, e := range entries {
				if q.Matches(e) {
					want = append(want, e.Seq)
				}
			}
			if q.Desc {
				slices.Reverse(want)
			}
			want = want[:min(len(want), q.Limit)]
			got, err := st.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, r := range got {
				seqs = append(seqs, r.Seq)
			}
			if !slices.Equal(seqs, want) {
				t.Errorf("%v..%v %+v: found %v, want %v", w[0], w[1], q, seqs, want)
			}
		}
	}
}
