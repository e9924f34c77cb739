package recordingtest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/recording"
)

// RunCatalog runs the Catalog contract.
func RunCatalog(t *testing.T, open func(t *testing.T) recording.Catalog) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c recording.Catalog)
	}{
		{"PutGet", testCatalogPutGet},
		{"Duplicate", testCatalogDuplicate},
		{"PutBatch", testCatalogPutBatch},
		{"Missing", testCatalogMissing},
		{"List", testCatalogList},
		{"Paging", testCatalogPaging},
		{"Erase", testCatalogErase},
		{"Probe", testCatalogProbe},
		{"Concurrent", testCatalogConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC)

// Entry returns a test entry; i varies its fields.
func Entry(i int) recording.Entry {
	return recording.Entry{
		ID:         fmt.Sprintf("%013x%020d", 0x19000000000+i, i),
		RequestID:  fmt.Sprintf("req-%d", i%7),
		Principal:  []string{"alice", "bob", "carol"}[i%3],
		Route:      "openai",
		Level:      recording.LevelFull,
		StartedAt:  t0.Add(time.Duration(i) * time.Minute),
		Object:     fmt.Sprintf("2026/03/04/%d.wrec", i),
		Size:       int64(1000 + i),
		Digest:     sha256.Sum256([]byte{byte(i), byte(i >> 8)}),
		KEKID:      "0123456789abcdef",
		WrappedKey: bytes.Repeat([]byte{byte(i + 1)}, 60),
		CreatedAt:  t0.Add(time.Duration(i)*time.Minute + time.Second),
	}
}

func sameEntry(a, b recording.Entry) bool {
	ea, eb := a.Erasure, b.Erasure
	a.Erasure, b.Erasure = nil, nil
	if !a.StartedAt.Equal(b.StartedAt) || !a.CreatedAt.Equal(b.CreatedAt) {
		return false
	}
	a.StartedAt, b.StartedAt, a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if (ea == nil) != (eb == nil) || (ea != nil && (!ea.At.Equal(eb.At) || ea.By != eb.By || ea.Reason != eb.Reason)) {
		return false
	}
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

func testCatalogPutGet(t *testing.T, c recording.Catalog) {
	e := Entry(1)
	e.Principal = "" // anonymous
	if err := c.Put(ctx(t), e); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := c.Get(ctx(t), e.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !sameEntry(got, e) {
		t.Errorf("Get = %+v\nwant %+v", got, e)
	}
	if got.StartedAt.Location() != time.UTC {
		t.Errorf("StartedAt in %v, want UTC", got.StartedAt.Location())
	}
}

func testCatalogDuplicate(t *testing.T, c recording.Catalog) {
	e := Entry(2)
	if err := c.Put(ctx(t), e); err != nil {
		t.Fatal(err)
	}
	e.WrappedKey = []byte("another key")
	if err := c.Put(ctx(t), e); !errors.Is(err, recording.ErrExists) {
		t.Errorf("second Put of one id: %v, want ErrExists", err)
	}
	got, _ := c.Get(ctx(t), e.ID)
	if !bytes.Equal(got.WrappedKey, Entry(2).WrappedKey) {
		t.Error("a refused Put replaced the wrapped key")
	}
}

func testCatalogPutBatch(t *testing.T, c recording.Catalog) {
	// 150 entries: more than one multi-row statement in backends that
	// split a batch (the SQLite catalogue inserts 64 rows at a time).
	var es []recording.Entry
	for i := range 150 {
		es = append(es, Entry(200+i))
	}
	if err := c.PutBatch(ctx(t), es); err != nil {
		t.Fatalf("PutBatch: %v", err)
	}
	if err := c.PutBatch(ctx(t), nil); err != nil {
		t.Errorf("empty PutBatch: %v", err)
	}
	got, err := c.List(ctx(t), recording.Filter{})
	if err != nil || len(got) != 150 || !sameEntry(got[17], es[17]) || !sameEntry(got[140], es[140]) {
		t.Fatalf("after PutBatch: %d entries, %v", len(got), err)
	}
	// All or nothing: a batch with one existing id stores none of the
	// others, also when the duplicate comes after the first statement.
	var fresh []recording.Entry
	for i := range 70 {
		fresh = append(fresh, Entry(400+i))
	}
	bad := append(append([]recording.Entry(nil), fresh...), es[3], Entry(500))
	if err := c.PutBatch(ctx(t), bad); !errors.Is(err, recording.ErrExists) {
		t.Errorf("batch with an existing id: %v, want ErrExists", err)
	}
	for _, e := range append(fresh, Entry(500)) {
		if _, err := c.Get(ctx(t), e.ID); !errors.Is(err, recording.ErrNotFound) {
			t.Errorf("entry %s of a failed batch was stored: %v", e.ID, err)
		}
	}
}

func testCatalogMissing(t *testing.T, c recording.Catalog) {
	if _, err := c.Get(ctx(t), "0190000000000nosuchrecording00"); !errors.Is(err, recording.ErrNotFound) {
		t.Errorf("Get of a missing id: %v, want ErrNotFound", err)
	}
	if _, err := c.Erase(ctx(t), "0190000000000nosuchrecording00", recording.Erasure{At: t0, By: "x", Reason: "y"}); !errors.Is(err, recording.ErrNotFound) {
		t.Errorf("Erase of a missing id: %v, want ErrNotFound", err)
	}
}

func ids(es []recording.Entry) []int {
	var out []int
	for _, e := range es {
		out = append(out, int(e.Size-1000))
	}
	return out
}

func testCatalogList(t *testing.T, c recording.Catalog) {
	for _, i := range []int{5, 3, 0, 4, 1, 2, 6, 7, 8} {
		if err := c.Put(ctx(t), Entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Erase(ctx(t), Entry(3).ID, recording.Erasure{At: t0, By: "admin", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	cases := []struct {
		name string
		f    recording.Filter
		want string
	}{
		{"all in id order", recording.Filter{}, "[0 1 2 3 4 5 6 7 8]"},
		{"principal", recording.Filter{Principal: "alice"}, "[0 3 6]"},
		{"request", recording.Filter{RequestID: "req-1"}, "[1 8]"},
		{"before", recording.Filter{Before: Entry(3).StartedAt}, "[0 1 2]"},
		{"principal and before", recording.Filter{Principal: "bob", Before: Entry(7).StartedAt}, "[1 4]"},
		{"erased", recording.Filter{Erased: &yes}, "[3]"},
		{"live", recording.Filter{Erased: &no, Principal: "alice"}, "[0 6]"},
		{"after id", recording.Filter{AfterID: Entry(5).ID}, "[6 7 8]"},
		{"before id", recording.Filter{BeforeID: Entry(3).ID}, "[0 1 2]"},
		{"request between ids", recording.Filter{RequestID: "req-1", AfterID: Entry(0).ID, BeforeID: Entry(8).ID}, "[1]"},
		{"limit", recording.Filter{Limit: 2}, "[0 1]"},
		{"nobody", recording.Filter{Principal: "mallory"}, "[]"},
	}
	for _, tc := range cases {
		es, err := c.List(ctx(t), tc.f)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := fmt.Sprint(ids(es)); got != tc.want && !(got == "[]" && tc.want == "[]") {
			t.Errorf("%s: List = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func testCatalogPaging(t *testing.T, c recording.Catalog) {
	const n = 23
	for i := range n {
		if err := c.Put(ctx(t), Entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []int
	f := recording.Filter{Limit: 5}
	for {
		es, err := c.List(ctx(t), f)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, ids(es)...)
		if len(es) < f.Limit {
			break
		}
		f.AfterID = es[len(es)-1].ID
	}
	if len(seen) != n {
		t.Fatalf("paging saw %d entries, want %d: %v", len(seen), n, seen)
	}
	for i, v := range seen {
		if v != i {
			t.Fatalf("paging order %v", seen)
		}
	}
}

func testCatalogErase(t *testing.T, c recording.Catalog) {
	e := Entry(9)
	if err := c.Put(ctx(t), e); err != nil {
		t.Fatal(err)
	}
	er := recording.Erasure{At: t0.Add(time.Hour), By: "admin:carol", Reason: "GDPR art. 17 request #42"}
	got, err := c.Erase(ctx(t), e.ID, er)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if got.WrappedKey != nil || got.Erasure == nil || got.Erasure.By != er.By || got.Erasure.Reason != er.Reason || !got.Erasure.At.Equal(er.At) {
		t.Errorf("Erase returned %+v", got)
	}
	again, err := c.Get(ctx(t), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.WrappedKey != nil {
		t.Error("the wrapped key survived Erase")
	}
	if again.Digest != e.Digest || again.Object != e.Object || again.RequestID != e.RequestID {
		t.Error("Erase changed what the recording was (digest, object, request)")
	}
	if again.Erasure == nil || again.Erasure.Reason != er.Reason {
		t.Errorf("erasure not recorded: %+v", again.Erasure)
	}
	second := recording.Erasure{At: t0.Add(2 * time.Hour), By: "someone else", Reason: "again"}
	if got, err := c.Erase(ctx(t), e.ID, second); !errors.Is(err, recording.ErrErased) || got.Erasure == nil || got.Erasure.By != er.By {
		t.Errorf("second Erase: %+v, %v; want the first erasure kept and ErrErased", got.Erasure, err)
	}
}

func testCatalogProbe(t *testing.T, c recording.Catalog) {
	if err := c.Probe(ctx(t)); err != nil {
		t.Errorf("Probe: %v", err)
	}
}

func testCatalogConcurrent(t *testing.T, c recording.Catalog) {
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Put(ctx(t), Entry(100+i)); err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	es, err := c.List(ctx(t), recording.Filter{})
	if err != nil || len(es) != 32 {
		t.Errorf("after 32 concurrent Puts: %d entries, %v", len(es), err)
	}
}
