// Package storetest is the conformance suite every audit.Store must pass.
// A store package calls Run from its tests with a function that opens a
// fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) audit.Store { return openTemp(t) })
//	}
//
// Run only uses the audit.Store contract; backend-specific guarantees
// (e.g. the schema refusing UPDATE and DELETE) are tested by each store.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// Run runs the conformance suite. open must return a new empty store and
// may register cleanup with t; Run closes stores it opens at the end of
// each subtest (closing twice must be harmless).
func Run(t *testing.T, open func(t *testing.T) audit.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st audit.Store)
	}{
		{"Empty", testEmpty},
		{"AppendRead", testAppendRead},
		{"Conflict", testConflict},
		{"EmptyBatch", testEmptyBatch},
		{"Checkpoints", testCheckpoints},
		{"Heads", testHeads},
		{"Search", testSearch},
		{"SearchPaging", testSearchPaging},
		{"ConcurrentReaders", testConcurrentReaders},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			defer st.Close()
			tc.fn(t, st)
		})
	}
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// entry makes a test entry; i varies its fields.
func entry(i int) *audit.Entry {
	e := &audit.Entry{
		V:         audit.SchemaVersion,
		Time:      t0.Add(time.Duration(i) * time.Second),
		Kind:      audit.KindRequestAdmitted,
		ID:        fmt.Sprintf("e-%04d", i),
		RequestID: fmt.Sprintf("r-%04d", i/2),
		Instance:  "test",
		Principal: &identity.Principal{Issuer: "https://idp", Subject: []string{"alice", "bob", "svc-batch"}[i%3], Kind: "user"},
		Route:     []string{"chat", "embed"}[i%2],
		Method:    "POST",
		Path:      "/v1/chat/completions",
		Model:     []string{"llama-3", "gpt-4o", "mistral"}[i%3],
		Params:    map[string]any{"temperature": 0.5, "prompt_words": fmt.Sprintf("word%d quarterly report", i)},
		Decision:  &audit.Decision{Action: []string{"allow", "deny", "require_approval", "allow"}[i%4], Rule: "r1", PolicyVersion: "p1"},
	}
	if i%2 == 1 {
		e.Kind = audit.KindRequestCompleted
		e.Status = 200
	}
	if i%5 == 0 {
		e.Masking = []audit.MaskAction{{Rule: "email", Entity: "EMAIL_ADDRESS", Location: "$.choices[0].message.content", Count: 2, Fingerprint: "ab12"}}
	}
	if i%7 == 0 {
		e.ApprovalID = fmt.Sprintf("ap-%d", i)
	}
	return e
}

// batch builds the batch for entries [from, from+n), computing hashes with
// tlog against the store itself (so ReadHashes is exercised too) and
// against the earlier hashes of the same batch.
func batch(t *testing.T, st audit.Store, from int64, n int) audit.Batch {
	t.Helper()
	ctx := context.Background()
	b := audit.Batch{HashStart: tlog.StoredHashCount(from)}
	local := map[int64]tlog.Hash{}
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		var miss []int64
		var missAt []int
		for i, x := range idx {
			if h, ok := local[x]; ok {
				out[i] = h
			} else {
				miss = append(miss, x)
				missAt = append(missAt, i)
			}
		}
		if len(miss) > 0 {
			hs, err := st.ReadHashes(ctx, miss)
			if err != nil {
				return nil, err
			}
			for j, h := range hs {
				out[missAt[j]] = h
			}
		}
		return out, nil
	})
	for i := 0; i < n; i++ {
		seq := from + int64(i)
		e := entry(int(seq))
		data, err := audit.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = seq
		hs, err := tlog.StoredHashes(seq, data, r)
		if err != nil {
			t.Fatalf("StoredHashes(%d): %v", seq, err)
		}
		for j, h := range hs {
			local[tlog.StoredHashCount(seq)+int64(j)] = h
		}
		b.Records = append(b.Records, audit.Record{Seq: seq, Data: data, Entry: e})
		b.Hashes = append(b.Hashes, hs...)
	}
	return b
}

func appendN(t *testing.T, st audit.Store, from int64, n int) audit.Batch {
	t.Helper()
	b := batch(t, st, from, n)
	if err := st.Append(context.Background(), b); err != nil {
		t.Fatalf("Append(%d records from %d): %v", n, from, err)
	}
	return b
}

func size(t *testing.T, st audit.Store) int64 {
	t.Helper()
	n, err := st.Size(context.Background())
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	return n
}

func testEmpty(t *testing.T, st audit.Store) {
	ctx := context.Background()
	if n := size(t, st); n != 0 {
		t.Fatalf("Size of new store = %d, want 0", n)
	}
	if _, err := st.LatestCheckpoint(ctx); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("LatestCheckpoint on empty store: err = %v, want ErrNotFound", err)
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil || len(cps) != 0 {
		t.Errorf("Checkpoints on empty store = %v, %v; want none", cps, err)
	}
	recs, err := st.ReadRecords(ctx, 0, 0)
	if err != nil || len(recs) != 0 {
		t.Errorf("ReadRecords(0,0) = %d records, %v; want 0, nil", len(recs), err)
	}
	if _, err := st.ReadRecords(ctx, 0, 1); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("ReadRecords(0,1) on empty store: err = %v, want ErrNotFound", err)
	}
	if _, err := st.ReadHashes(ctx, []int64{0}); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("ReadHashes([0]) on empty store: err = %v, want ErrNotFound", err)
	}
	if hs, err := st.ReadHashes(ctx, nil); err != nil || len(hs) != 0 {
		t.Errorf("ReadHashes(nil) = %v, %v; want empty", hs, err)
	}
}

func testAppendRead(t *testing.T, st audit.Store) {
	ctx := context.Background()
	var all []audit.Record
	var hashes []tlog.Hash
	from := int64(0)
	for _, n := range []int{1, 2, 5, 1, 17, 40} {
		b := appendN(t, st, from, n)
		all = append(all, b.Records...)
		hashes = append(hashes, b.Hashes...)
		from += int64(n)
		if got := size(t, st); got != from {
			t.Fatalf("Size after appending %d = %d", from, got)
		}
	}
	if int64(len(hashes)) != tlog.StoredHashCount(from) {
		t.Fatalf("test bug: %d hashes for %d records", len(hashes), from)
	}
	recs, err := st.ReadRecords(ctx, 0, from)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(all) {
		t.Fatalf("ReadRecords(0,%d) returned %d records", from, len(recs))
	}
	for i, r := range recs {
		if r.Seq != int64(i) || !bytes.Equal(r.Data, all[i].Data) {
			t.Fatalf("record %d: got seq %d data %q, want %q", i, r.Seq, r.Data, all[i].Data)
		}
	}
	// A middle range.
	recs, err = st.ReadRecords(ctx, 10, 13)
	if err != nil || len(recs) != 3 || recs[0].Seq != 10 || !bytes.Equal(recs[2].Data, all[12].Data) {
		t.Fatalf("ReadRecords(10,13) = %d records, %v", len(recs), err)
	}
	if _, err := st.ReadRecords(ctx, from-1, from+1); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("ReadRecords past the end: err = %v, want ErrNotFound", err)
	}
	// Every stored hash, in one call and out of order.
	idx := make([]int64, len(hashes))
	for i := range idx {
		idx[i] = int64(len(hashes) - 1 - i)
	}
	got, err := st.ReadHashes(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(idx) {
		t.Fatalf("ReadHashes returned %d hashes for %d indexes", len(got), len(idx))
	}
	for i, x := range idx {
		if got[i] != hashes[x] {
			t.Fatalf("ReadHashes: index %d: got %v want %v", x, got[i], hashes[x])
		}
	}
	// Duplicated indexes are allowed (tlog asks for them).
	got, err = st.ReadHashes(ctx, []int64{3, 3, 0})
	if err != nil || len(got) != 3 || got[0] != hashes[3] || got[1] != hashes[3] || got[2] != hashes[0] {
		t.Fatalf("ReadHashes with duplicates = %v, %v", got, err)
	}
	if _, err := st.ReadHashes(ctx, []int64{0, int64(len(hashes))}); !errors.Is(err, audit.ErrNotFound) {
		t.Errorf("ReadHashes past the end: err = %v, want ErrNotFound", err)
	}
	// The tree hash through the store equals one computed from the records.
	th, err := tlog.TreeHash(from, storeReader(st))
	if err != nil {
		t.Fatal(err)
	}
	want := treeHashOf(all)
	if th != want {
		t.Fatalf("tree hash via store = %v, want %v", th, want)
	}
}

func storeReader(st audit.Store) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return st.ReadHashes(context.Background(), idx)
	})
}

// treeHashOf computes the RFC 6962 tree hash of records directly.
func treeHashOf(recs []audit.Record) tlog.Hash {
	var rec func(lo, hi int) tlog.Hash
	rec = func(lo, hi int) tlog.Hash {
		if hi-lo == 1 {
			return tlog.RecordHash(recs[lo].Data)
		}
		k := 1
		for k*2 < hi-lo {
			k *= 2
		}
		return tlog.NodeHash(rec(lo, lo+k), rec(lo+k, hi))
	}
	return rec(0, len(recs))
}

func testConflict(t *testing.T, st audit.Store) {
	ctx := context.Background()
	appendN(t, st, 0, 3)
	stale := batch(t, st, 3, 2)
	appendN(t, st, 3, 1)
	if err := st.Append(ctx, stale); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("Append of a batch starting at 3 when size is 4: err = %v, want ErrConflict", err)
	}
	if n := size(t, st); n != 4 {
		t.Fatalf("Size after conflicting append = %d, want 4", n)
	}
	// A batch that skips ahead is a conflict too.
	gap := batch(t, st, 4, 1)
	for i := range gap.Records {
		gap.Records[i].Seq += 2
	}
	if err := st.Append(ctx, gap); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("Append with a gap: err = %v, want ErrConflict", err)
	}
	if _, err := st.ReadHashes(ctx, []int64{tlog.StoredHashCount(4)}); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("hashes of a refused batch are visible: err = %v", err)
	}
	appendN(t, st, 4, 2)
	if n := size(t, st); n != 6 {
		t.Fatalf("Size = %d, want 6", n)
	}
}

func testEmptyBatch(t *testing.T, st audit.Store) {
	if err := st.Append(context.Background(), audit.Batch{}); err != nil {
		t.Fatalf("Append(empty batch) = %v, want nil", err)
	}
	if n := size(t, st); n != 0 {
		t.Fatalf("Size after empty batch = %d", n)
	}
}

// testHeads: a HeadKeeper commits a batch's signed head with it (and,
// with HeadHistory, into the checkpoint history); a head whose size is not
// the size after the batch fails the whole batch.
func testHeads(t *testing.T, st audit.Store) {
	hk, ok := st.(audit.HeadKeeper)
	if !ok {
		t.Skip("not a HeadKeeper")
	}
	ctx := context.Background()
	if h, err := hk.Head(ctx); err != nil || h != nil {
		t.Fatalf("Head of an empty store = %q, %v; want nil, nil", h, err)
	}
	head := func(b audit.Batch, n int64) *audit.Checkpoint {
		return &audit.Checkpoint{Size: n, Hash: treeHashOf(b.Records), Time: t0.Add(time.Duration(n) * time.Minute),
			Note: []byte(fmt.Sprintf("test\n%d\nhash\n\n— sig %d\n", n, n))}
	}
	b := batch(t, st, 0, 4)
	b.Head = head(b, 4)
	if err := st.Append(ctx, b); err != nil {
		t.Fatal(err)
	}
	if h, err := hk.Head(ctx); err != nil || !bytes.Equal(h, b.Head.Note) {
		t.Fatalf("Head after a batch = %q, %v; want %q", h, err, b.Head.Note)
	}
	if _, err := st.LatestCheckpoint(ctx); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("a head without HeadHistory joined the history: LatestCheckpoint err = %v", err)
	}

	bad := batch(t, st, 4, 2)
	bad.Head = head(bad, 5)
	if err := st.Append(ctx, bad); err == nil {
		t.Fatal("a head of the wrong size was accepted")
	}
	if n, err := st.Size(ctx); err != nil || n != 4 {
		t.Fatalf("after a refused head: size %d, %v; want 4 (nothing of the batch written)", n, err)
	}

	b2 := batch(t, st, 4, 2)
	all := append(append([]audit.Record(nil), b.Records...), b2.Records...)
	b2.Head = head(audit.Batch{Records: all}, 6)
	b2.HeadHistory = true
	if err := st.Append(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if h, err := hk.Head(ctx); err != nil || !bytes.Equal(h, b2.Head.Note) {
		t.Fatalf("Head = %q, %v; want the newer %q", h, err, b2.Head.Note)
	}
	c, err := st.LatestCheckpoint(ctx)
	if err != nil || c.Size != 6 || c.Hash != b2.Head.Hash || !bytes.Equal(c.Note, b2.Head.Note) || !c.Time.Equal(b2.Head.Time) {
		t.Fatalf("LatestCheckpoint = %d %q, %v; want the batch's head of size 6", c.Size, c.Note, err)
	}
}

func testCheckpoints(t *testing.T, st audit.Store) {
	ctx := context.Background()
	b := appendN(t, st, 0, 10)
	mk := func(n int64) audit.Checkpoint {
		return audit.Checkpoint{
			Size: n,
			Hash: treeHashOf(b.Records[:n]),
			Time: t0.Add(time.Duration(n) * time.Minute),
			Note: []byte(fmt.Sprintf("test\n%d\nhash\n\n— sig %d\n", n, n)),
		}
	}
	for _, n := range []int64{3, 10, 7} {
		if err := st.PutCheckpoint(ctx, mk(n)); err != nil {
			t.Fatalf("PutCheckpoint(%d): %v", n, err)
		}
	}
	if err := st.PutCheckpoint(ctx, mk(7)); err != nil {
		t.Fatalf("PutCheckpoint of an identical checkpoint again: %v, want nil", err)
	}
	other := mk(7)
	other.Note = []byte("forged\n")
	if err := st.PutCheckpoint(ctx, other); !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("PutCheckpoint of a different checkpoint at the same size: err = %v, want ErrConflict", err)
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 3 {
		t.Fatalf("Checkpoints returned %d, want 3", len(cps))
	}
	for i, n := range []int64{3, 7, 10} {
		w := mk(n)
		c := cps[i]
		if c.Size != n || c.Hash != w.Hash || !bytes.Equal(c.Note, w.Note) || !c.Time.Equal(w.Time) {
			t.Errorf("checkpoint %d = {%d %v %v %q}, want {%d %v %v %q}", i, c.Size, c.Hash, c.Time, c.Note, w.Size, w.Hash, w.Time, w.Note)
		}
	}
	latest, err := st.LatestCheckpoint(ctx)
	if err != nil || latest.Size != 10 || !bytes.Equal(latest.Note, mk(10).Note) {
		t.Fatalf("LatestCheckpoint = %d %q, %v; want size 10", latest.Size, latest.Note, err)
	}
}

func seqs(recs []audit.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func testSearch(t *testing.T, st audit.Store) {
	ctx := context.Background()
	const n = 60
	b := appendN(t, st, 0, n)
	match := func(f func(e *audit.Entry) bool) []int64 {
		var out []int64
		for _, r := range b.Records {
			if f(r.Entry) {
				out = append(out, r.Seq)
			}
		}
		return out
	}
	tests := []struct {
		name string
		q    audit.Query
		want []int64
	}{
		{"all", audit.Query{Limit: 1000}, match(func(*audit.Entry) bool { return true })},
		{"principal", audit.Query{Principal: "bob"}, match(func(e *audit.Entry) bool { return e.Principal.Subject == "bob" })},
		{"route", audit.Query{Route: "embed"}, match(func(e *audit.Entry) bool { return e.Route == "embed" })},
		{"model", audit.Query{Model: "mistral"}, match(func(e *audit.Entry) bool { return e.Model == "mistral" })},
		{"kind", audit.Query{Kind: audit.KindRequestCompleted}, match(func(e *audit.Entry) bool { return e.Kind == audit.KindRequestCompleted })},
		{"action", audit.Query{Action: "deny"}, match(func(e *audit.Entry) bool { return e.Decision.Action == "deny" })},
		{"request id", audit.Query{RequestID: "r-0012"}, []int64{24, 25}},
		{"approval id", audit.Query{ApprovalID: "ap-14"}, []int64{14}},
		{"mask rule", audit.Query{MaskRule: "email"}, match(func(e *audit.Entry) bool { return len(e.Masking) > 0 })},
		{"mask rule absent", audit.Query{MaskRule: "iban"}, nil},
		{"time range", audit.Query{From: t0.Add(10 * time.Second), To: t0.Add(13 * time.Second)}, []int64{10, 11, 12}},
		{"combined", audit.Query{Principal: "alice", Route: "chat", Kind: audit.KindRequestAdmitted}, match(func(e *audit.Entry) bool {
			return e.Principal.Subject == "alice" && e.Route == "chat" && e.Kind == audit.KindRequestAdmitted
		})},
		{"text", audit.Query{Text: "word42"}, []int64{42}},
		{"text case-insensitive, ANDed", audit.Query{Text: "QUARTERLY word7"}, []int64{7}},
		{"text no match", audit.Query{Text: "nothinglikethis"}, nil},
		{"text and filter", audit.Query{Text: "quarterly", Model: "gpt-4o", Limit: 1000}, match(func(e *audit.Entry) bool { return e.Model == "gpt-4o" })},
		{"seq range", audit.Query{Start: 5, End: 8}, []int64{5, 6, 7}},
		{"desc", audit.Query{Desc: true, Limit: 3}, []int64{59, 58, 57}},
		{"desc with end", audit.Query{Desc: true, End: 10, Limit: 2}, []int64{9, 8}},
		{"limit", audit.Query{Limit: 4}, []int64{0, 1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := st.Search(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			got := seqs(recs)
			want := tc.want
			if tc.q.Limit == 0 && len(want) > 100 {
				want = want[:100]
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Search(%+v) = %v, want %v", tc.q, got, want)
			}
			for _, r := range recs {
				if !bytes.Equal(r.Data, b.Records[r.Seq].Data) {
					t.Fatalf("Search returned record %d with wrong data", r.Seq)
				}
			}
		})
	}
}

func testSearchPaging(t *testing.T, st audit.Store) {
	ctx := context.Background()
	appendN(t, st, 0, 25)
	for _, desc := range []bool{false, true} {
		var got []int64
		q := audit.Query{Limit: 4, Desc: desc, Principal: "alice"}
		for page := 0; page < 20; page++ {
			recs, err := st.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) == 0 {
				break
			}
			got = append(got, seqs(recs)...)
			last := recs[len(recs)-1].Seq
			if desc {
				if last == 0 {
					break
				}
				q.End = last
			} else {
				q.Start = last + 1
			}
		}
		var want []int64
		for i := int64(0); i < 25; i++ {
			if i%3 == 0 {
				want = append(want, i)
			}
		}
		if desc {
			for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
				want[i], want[j] = want[j], want[i]
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("paging desc=%v: got %v, want %v", desc, got, want)
		}
	}
}

func testConcurrentReaders(t *testing.T, st audit.Store) {
	ctx := context.Background()
	appendN(t, st, 0, 1)
	var wg sync.WaitGroup
	errc := make(chan error, 100)
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, err := st.Size(ctx)
				if err != nil {
					errc <- err
					return
				}
				// Whatever size a reader sees, that prefix is complete.
				if _, err := tlog.TreeHash(n, storeReader(st)); err != nil {
					errc <- fmt.Errorf("tree hash at size %d: %w", n, err)
					return
				}
				if _, err := st.ReadRecords(ctx, 0, n); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for from := int64(1); from < 40; from += 3 {
		appendN(t, st, from, 3)
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func testClosed(t *testing.T, st audit.Store) {
	ctx := context.Background()
	appendN(t, st, 0, 2)
	b := batch(t, st, 2, 1)
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := st.Append(ctx, b); err == nil {
		t.Fatal("Append after Close succeeded")
	}
	if _, err := st.Size(ctx); err == nil {
		t.Fatal("Size after Close succeeded")
	}
}

// FollowUntil ranges over a follower (Log.Follow or audit.Follow) that
// starts at seq from, until every key in want has been yielded (key gives
// an entry's key, e.g. its ID or request id). It returns an error unless
// the entries came in sequence order with no gap (from, from+1, …) and
// each wanted key exactly once; it may be called from any goroutine. A
// follower that stalls ends when its context does.
func FollowUntil(it iter.Seq2[*audit.Entry, error], from int64, want map[string]bool, key func(*audit.Entry) string) ([]*audit.Entry, error) {
	seen := make(map[string]bool, len(want))
	next := from
	var got []*audit.Entry
	for e, err := range it {
		if err != nil {
			return got, fmt.Errorf("follower ended at seq %d with %d wanted entries missing: %w", next, len(want)-len(seen), err)
		}
		if e.Seq != next {
			return got, fmt.Errorf("follower yielded seq %d, want %d (a gap or a repeat)", e.Seq, next)
		}
		next++
		got = append(got, e)
		if k := key(e); want[k] {
			if seen[k] {
				return got, fmt.Errorf("follower yielded %s twice (seq %d)", k, e.Seq)
			}
			seen[k] = true
		}
		if len(seen) == len(want) {
			return got, nil
		}
	}
	return got, fmt.Errorf("follower stopped with %d wanted entries missing", len(want)-len(seen))
}

// IndexEntry is entry i of the search-index tests: subjects alternate
// (alice, bob), request ids are "req-%03d", every fifth entry has an
// "email" masking action, and each has a word of its own ("word<i>") in
// its parameters.
func IndexEntry(i int) *audit.Entry {
	e := &audit.Entry{
		V: audit.SchemaVersion, Kind: audit.KindRequestAdmitted, ID: fmt.Sprintf("ix-%03d", i),
		Time:      time.Date(2026, 11, 30, 12, 0, i, 0, time.UTC),
		RequestID: fmt.Sprintf("req-%03d", i), Route: "chat", Model: "llama-3",
		Principal: &identity.Principal{Issuer: "https://idp", Subject: []string{"alice", "bob"}[i%2], Kind: "user"},
		Params:    map[string]any{"note": fmt.Sprintf("word%d quarterly", i)},
		Decision:  &audit.Decision{Action: "allow", Rule: "r"},
	}
	if i%5 == 0 {
		e.Masking = []audit.MaskAction{{Rule: "email", Entity: "EMAIL_ADDRESS", Location: "$.x", Count: 1, Fingerprint: "ab"}}
	}
	return e
}

// AppendEach appends entry(0) … entry(n-1) to an empty store, one batch
// each, with Record.Entry set as the Log sets it.
func AppendEach(t testing.TB, st audit.Store, n int, entry func(int) *audit.Entry) {
	t.Helper()
	ctx := context.Background()
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) })
	for i := 0; i < n; i++ {
		e := entry(i)
		data, err := audit.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(i), data, hr)
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = int64(i)
		if err := st.Append(ctx, audit.Batch{Records: []audit.Record{{Seq: int64(i), Data: data, Entry: e}},
			HashStart: tlog.StoredHashCount(int64(i)), Hashes: hs}); err != nil {
			t.Fatal(err)
		}
	}
}
