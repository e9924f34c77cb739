package export

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// countingReader counts the records a LogSource reads from the store.
type countingReader struct {
	LogReader
	records atomic.Int64
}

func (c *countingReader) ReadRecords(ctx context.Context, from, to int64) ([]audit.Record, error) {
	recs, err := c.LogReader.ReadRecords(ctx, from, to)
	c.records.Add(int64(len(recs)))
	return recs, err
}

// followAll follows src from 0 until it has yielded a checkpoint of size
// n (or fails the test).
func followAll(t *testing.T, ctx context.Context, src Source, n int64) []Item {
	t.Helper()
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	var items []Item
	for it, err := range src.Follow(fctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
		if it.Checkpoint != nil && it.Checkpoint.Size == n {
			return items
		}
	}
	t.Fatalf("the source stopped after %d items without the checkpoint of size %d", len(items), n)
	return nil
}

// TestLogSourceFeed: a source fed the log's commits (Log.OnCommit)
// yields exactly what a source reading the store yields — the same
// positions, bytes, decoded entries and mapped events, for every kind in
// the catalogue and for entries only decoding can settle (invalid
// UTF-8, numbers given as Go numbers) — while reading from the store only
// what was committed before the feed was set.
func TestLogSourceFeed(t *testing.T) {
	l, st, _ := realLog(t)
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before, err := st.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingReader{LogReader: st}
	fed := NewLogSource(counted, LogSourceOptions{Poll: 2 * time.Millisecond, Chunk: 7})
	l.OnCommit(fed.Feed)

	var entries []*audit.Entry
	kinds := make([]string, 0, len(kindTable))
	for k := range kindTable {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range append(kinds, "custom.kind") {
		entries = append(entries, sampleEntries(k)...)
	}
	odd := sampleRequest(1)
	odd.Params = map[string]any{"temperature": 0.7, "max_tokens": 256, "stop": []string{"\n"}, "big": 1e22}
	odd.Details = map[string]any{"client_ip": "192.0.2.1", "user_agent": "curl/8 \xff", "size": int64(3)}
	entries = append(entries, odd)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, e := range entries {
				c := *e
				c.ID, c.Time = "", time.Now()
				if i%4 == w {
					if _, err := l.Append(ctx, &c); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	size, err := st.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := followAll(t, ctx, fed, size)
	want := followAll(t, ctx, NewLogSource(st, LogSourceOptions{Poll: 2 * time.Millisecond}), size)
	if len(got) != len(want) {
		t.Fatalf("fed source yielded %d items, the store %d", len(got), len(want))
	}
	m := &Mapper{Origin: "warden-audit", ProductVersion: "test"}
	nFed := 0
	for i := range want {
		g, w := got[i], want[i]
		if w.Checkpoint != nil {
			if g.Checkpoint == nil || !bytes.Equal(g.Checkpoint.Note, w.Checkpoint.Note) {
				t.Fatalf("item %d: fed source yielded %+v, the store the checkpoint of size %d", i, g, w.Checkpoint.Size)
			}
			continue
		}
		if g.Entry == nil || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("item %d: fed source yielded other bytes than the store (entry %d)", i, w.Entry.Seq)
		}
		if w.fed || (g.fed && g.Entry.Seq < before) {
			t.Fatalf("entry %d: fed %v from the fed source, %v from the store", w.Entry.Seq, g.fed, w.fed)
		}
		if g.fed {
			nFed++
		}
		// The engine maps a fed entry as appended (entryFed) and
		// settles it for a filter: both must give what the store gives.
		for _, drop := range []bool{false, true} {
			m.DropParams = drop
			var ge Event
			if g.fed {
				ge, err = m.entryFed(g.Entry, g.Data)
			} else {
				ge, err = m.Entry(g.Entry, g.Data, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			we, err := m.Entry(w.Entry, w.Data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ge.JSON, we.JSON) {
				t.Fatalf("entry %d maps differently when fed (drop_params %v):\n%s\n%s", w.Entry.Seq, drop, ge.JSON, we.JSON)
			}
		}
		s, err := g.settled()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s.Entry, w.Entry) || !bytes.Equal(s.Data, w.Data) || s.fed {
			gb, _ := json.Marshal(s.Entry)
			wb, _ := json.Marshal(w.Entry)
			t.Fatalf("entry %d: fed and settled %s\nstore %s", w.Entry.Seq, gb, wb)
		}
	}
	if want := size - before; int64(nFed) != want {
		t.Fatalf("%d entries came as fed, want the %d committed after the feed was set", nFed, want)
	}
	if n := counted.records.Load(); n > before {
		t.Fatalf("the fed source read %d records from the store; only the %d committed before the feed was set need it", n, before)
	}
}
